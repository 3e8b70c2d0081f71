// Package event is the audit event: Immuta's Universal Audit Model envelope, its validation from
// JSON, and the compact binary record the buffer stores and the exporter reads.
package event

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Event is one audit event as read back from the buffer.
type Event struct {
	// Seq is the event's position in the buffer, in order of receipt; set by the buffer.
	Seq               uint64
	ID                uuid.UUID
	TenantID          string
	Action            string
	ActionStatus      string
	EventTimestamp    time.Time
	ReceivedTimestamp time.Time
	Actor             Actor
	ActorIP           string
	TargetType        string
	RequestID         string
	SessionID         string
	// Targets, RelatedResources and AuditPayload are kept as the JSON they arrived as (compacted).
	Targets          json.RawMessage
	RelatedResources json.RawMessage
	AuditPayload     json.RawMessage
	// Additional holds the envelope's unknown top-level fields as one JSON object, so nothing a
	// client sent is lost; nil when there were none.
	Additional json.RawMessage
}

// Actor is who did what the event records.
type Actor struct {
	ID               string
	Name             string
	Type             string
	IdentityProvider string
	ProfileID        string
}

// Field indexes the variable-length fields of a record, in their stored order.
type Field int

const (
	FieldTenantID Field = iota
	FieldAction
	FieldActionStatus
	FieldActorID
	FieldActorName
	FieldActorType
	FieldActorIdentityProvider
	FieldActorProfileID
	FieldActorIP
	FieldTargetType
	FieldRequestID
	FieldSessionID
	FieldTargets
	FieldRelatedResources
	FieldAuditPayload
	FieldAdditional
	numFields
)

// The binary record: a format byte, the 16-byte id, event and received time as varint unix
// microseconds, then each Field as a uvarint length and its bytes (empty = absent or null).
const (
	formatV1   byte = 1
	headerSize      = 1 + 16
)

// Record is a view of one stored event without copying: its fields are sub-slices of the record.
type Record struct {
	ID                      uuid.UUID
	EventMicros, RecvMicros int64
	Fields                  [numFields][]byte
}

// ErrCorrupt means a stored record cannot be decoded.
var ErrCorrupt = errors.New("corrupt event record")

// IDOf returns the id of an encoded record without decoding the rest.
func IDOf(record []byte) (uuid.UUID, error) {
	if len(record) < headerSize || record[0] != formatV1 {
		return uuid.UUID{}, ErrCorrupt
	}
	return uuid.UUID(record[1:headerSize]), nil
}

// EventMicrosOf returns the event time of an encoded record, in unix microseconds, without
// decoding the rest.
func EventMicrosOf(record []byte) (int64, error) {
	if _, err := IDOf(record); err != nil {
		return 0, err
	}
	micros, n := binary.Varint(record[headerSize:])
	if n <= 0 {
		return 0, ErrCorrupt
	}
	return micros, nil
}

// UnixHour is the hour of a time in unix microseconds, counted from the epoch (floored).
func UnixHour(micros int64) int64 {
	const perHour = int64(time.Hour / time.Microsecond)
	q := micros / perHour
	if micros%perHour != 0 && micros < 0 {
		q--
	}
	return q
}

// Parse decodes a record into r, whose fields then point into record.
func (r *Record) Parse(record []byte) error {
	id, err := IDOf(record)
	if err != nil {
		return err
	}
	r.ID = id
	b := record[headerSize:]
	var n int
	if r.EventMicros, n = binary.Varint(b); n <= 0 {
		return ErrCorrupt
	}
	b = b[n:]
	if r.RecvMicros, n = binary.Varint(b); n <= 0 {
		return ErrCorrupt
	}
	b = b[n:]
	for i := range r.Fields {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return ErrCorrupt
		}
		r.Fields[i] = b[n : n+int(l) : n+int(l)]
		b = b[n+int(l):]
	}
	if len(b) != 0 {
		return ErrCorrupt
	}
	return nil
}

// Decode returns the event a record holds, with its own copies of every field.
func Decode(seq uint64, record []byte) (Event, error) {
	var r Record
	if err := r.Parse(record); err != nil {
		return Event{}, fmt.Errorf("event %d: %w", seq, err)
	}
	return r.Event(seq), nil
}

// Event is the parsed record as an Event at seq, with its own copies of every field.
func (r *Record) Event(seq uint64) Event {
	s := func(f Field) string { return string(r.Fields[f]) }
	raw := func(f Field) json.RawMessage {
		if len(r.Fields[f]) == 0 {
			return nil
		}
		return append(json.RawMessage(nil), r.Fields[f]...)
	}
	return Event{
		Seq: seq, ID: r.ID,
		TenantID: s(FieldTenantID), Action: s(FieldAction), ActionStatus: s(FieldActionStatus),
		EventTimestamp:    time.UnixMicro(r.EventMicros).UTC(),
		ReceivedTimestamp: time.UnixMicro(r.RecvMicros).UTC(),
		Actor: Actor{
			ID: s(FieldActorID), Name: s(FieldActorName), Type: s(FieldActorType),
			IdentityProvider: s(FieldActorIdentityProvider), ProfileID: s(FieldActorProfileID),
		},
		ActorIP: s(FieldActorIP), TargetType: s(FieldTargetType), RequestID: s(FieldRequestID), SessionID: s(FieldSessionID),
		Targets: raw(FieldTargets), RelatedResources: raw(FieldRelatedResources), AuditPayload: raw(FieldAuditPayload),
		Additional: raw(FieldAdditional),
	}
}

// appendRecord encodes one event.
func appendRecord(dst []byte, id uuid.UUID, eventMicros, recvMicros int64, fields *[numFields][]byte) []byte {
	dst = append(dst, formatV1)
	dst = append(dst, id[:]...)
	dst = binary.AppendVarint(dst, eventMicros)
	dst = binary.AppendVarint(dst, recvMicros)
	for _, f := range fields {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// Encode is the binary record of e, for events the service makes itself (its own audit trail).
func Encode(e Event) []byte {
	var f [numFields][]byte
	f[FieldTenantID], f[FieldAction], f[FieldActionStatus] = []byte(e.TenantID), []byte(e.Action), []byte(e.ActionStatus)
	f[FieldActorID], f[FieldActorName], f[FieldActorType] = []byte(e.Actor.ID), []byte(e.Actor.Name), []byte(e.Actor.Type)
	f[FieldActorIdentityProvider], f[FieldActorProfileID] = []byte(e.Actor.IdentityProvider), []byte(e.Actor.ProfileID)
	f[FieldActorIP], f[FieldTargetType], f[FieldRequestID], f[FieldSessionID] = []byte(e.ActorIP), []byte(e.TargetType), []byte(e.RequestID), []byte(e.SessionID)
	f[FieldTargets], f[FieldRelatedResources], f[FieldAuditPayload], f[FieldAdditional] = e.Targets, e.RelatedResources, e.AuditPayload, e.Additional
	return appendRecord(nil, e.ID, e.EventTimestamp.UnixMicro(), e.ReceivedTimestamp.UnixMicro(), &f)
}
