package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/valyala/fastjson"
)

// MaxEventBytes bounds one event's JSON, a line of NDJSON or an element of an array alike.
const MaxEventBytes = 1 << 20

// maxListedErrors bounds how many problems one answer names.
const maxListedErrors = 100

// Decoder validates JSON events and encodes them as records. It is not safe for concurrent use;
// reuse one per goroutine (its buffers are kept between calls).
type Decoder struct {
	parser   fastjson.Parser
	scratch  []byte // compacted JSON of the raw fields and of unknown top-level fields
	record   []byte
	problems []error    // of the event being decoded
	unknown  [][]byte   // the fast path's unknown top-level fields: key, value, key, value…
	keys     []knownKey // the top-level keys of the event before, by position (nextKey)

	// generalOnly turns the fast path off (tests compare the paths).
	generalOnly bool
	// ids replaces uuid.NewV7 for events without an id (tests).
	ids func() (uuid.UUID, error)
}

// newID is the id of an event that came without one.
func (d *Decoder) newID() (uuid.UUID, error) {
	if d.ids != nil {
		return d.ids()
	}
	return uuid.NewV7()
}

// errTooLarge is the one answer to an event over MaxEventBytes, whatever the body's form.
var errTooLarge = fmt.Errorf("event exceeds %d bytes", MaxEventBytes)

// NDJSON decodes one event per non-blank line.
func (d *Decoder) NDJSON(body []byte, received time.Time) (*Batch, error) {
	return into(new(Batch), d.NDJSONInto, body, received)
}

// NDJSONInto is NDJSON decoding into batch, emptied first: a caller decoding request after
// request reuses one batch's memory. On an error, batch holds nothing of use.
func (d *Decoder) NDJSONInto(batch *Batch, body []byte, received time.Time) error {
	// A record is smaller than its JSON but for tiny events: one allocation at most, most often.
	batch.reset(len(body) + len(body)/8)
	bad := &BatchError{Unit: "line"}
	for line := 1; len(body) > 0; line++ {
		text := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			text, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		text = bytes.TrimSpace(text)
		if len(text) == 0 {
			continue
		}
		if len(text) > MaxEventBytes {
			bad.add(line, errTooLarge)
			continue
		}
		if !d.generalOnly && d.fastAppend(batch, text, received) {
			continue
		}
		v, err := d.parse(text)
		if err != nil {
			bad.add(line, err)
			continue
		}
		bad.add(line, d.append(batch, v, received)...)
	}
	return finish(batch, bad)
}

// Array decodes a JSON array of events (or a single event object).
func (d *Decoder) Array(body []byte, received time.Time) (*Batch, error) {
	return into(new(Batch), d.ArrayInto, body, received)
}

// ArrayInto is Array decoding into batch, as NDJSONInto.
func (d *Decoder) ArrayInto(batch *Batch, body []byte, received time.Time) error {
	batch.reset(len(body) / 2)
	bad := &BatchError{Unit: "event"}
	if len(bytes.TrimSpace(body)) == 0 {
		return finish(batch, bad)
	}
	v, err := d.parse(body)
	if err != nil {
		bad.add(1, err)
		return bad
	}
	items := []*fastjson.Value{v}
	if v.Type() == fastjson.TypeArray {
		items, _ = v.Array()
	}
	for i, item := range items {
		// An element is measured as compact JSON; only a body over the limit can hold one too large.
		if len(body) > MaxEventBytes {
			if d.scratch = item.MarshalTo(d.scratch[:0]); len(d.scratch) > MaxEventBytes {
				bad.add(i+1, errTooLarge)
				continue
			}
		}
		bad.add(i+1, d.append(batch, item, received)...)
	}
	return finish(batch, bad)
}

// into decodes with decode into batch, returned unless there was an error.
func into(batch *Batch, decode func(*Batch, []byte, time.Time) error, body []byte, received time.Time) (*Batch, error) {
	if err := decode(batch, body, received); err != nil {
		return nil, err
	}
	return batch, nil
}

func finish(batch *Batch, bad *BatchError) error {
	if len(bad.Lines) > 0 {
		return bad
	}
	if batch.Len() == 0 {
		return &BatchError{Unit: "event", Lines: []LineError{{Line: 0, Reason: "the body holds no events"}}}
	}
	return nil
}

// parse checks that data is strict JSON in UTF-8 and parses it. fastjson's parser alone lets raw
// control characters through inside strings, which would store JSON other readers refuse; its
// validator does not, and neither checks UTF-8, which Parquet strings must be.
func (d *Decoder) parse(data []byte) (*fastjson.Value, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("invalid JSON: not valid UTF-8")
	}
	if err := fastjson.ValidateBytes(data); err != nil {
		return nil, parseError(err)
	}
	v, err := d.parser.ParseBytes(data)
	if err != nil {
		return nil, parseError(err)
	}
	return v, nil
}

// parseError shortens fastjson's message, which quotes the rest of the input.
func parseError(err error) error {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return fmt.Errorf("invalid JSON: %s", msg)
}

// append validates one event and adds its record to batch; else it returns every problem of the
// event (valid until the next call).
func (d *Decoder) append(batch *Batch, v *fastjson.Value, received time.Time) []error {
	d.problems = d.problems[:0]
	obj, err := v.Object()
	if err != nil {
		return append(d.problems, fmt.Errorf("an event must be a JSON object, not %s", v.Type()))
	}
	var (
		fields                 [numFields][]byte
		rawSpans               [numFields][2]int // spans of scratch for raw fields
		id                     uuid.UUID
		haveID, eventTimeGiven bool
		eventMicros            int64
		recvMicros             = received.UnixMicro()
		additional             []additionalField
	)
	d.scratch = d.scratch[:0]
	keepRaw := func(f Field, v *fastjson.Value) {
		start := len(d.scratch)
		d.scratch = v.MarshalTo(d.scratch)
		rawSpans[f] = [2]int{start, len(d.scratch)}
	}
	fail := func(err error) {
		if err != nil {
			d.problems = append(d.problems, err)
		}
	}
	obj.Visit(func(key []byte, v *fastjson.Value) {
		switch string(key) {
		case "id":
			s, err := stringValue("id", v)
			if err != nil || s == nil { // null: generate one, as when absent
				fail(err)
				return
			}
			parsed, err := uuid.ParseBytes(s)
			if err != nil {
				fail(fmt.Errorf("id must be a UUID, got %q", truncate(s)))
				return
			}
			id, haveID = parsed, true
		case "eventTimestamp":
			eventTimeGiven = true
			t, err := timestamp("eventTimestamp", v)
			fail(err)
			eventMicros = t
		case "receivedTimestamp":
			if v.Type() == fastjson.TypeNull {
				return
			}
			t, err := timestamp("receivedTimestamp", v)
			if err != nil {
				fail(err)
				return
			}
			recvMicros = t
		case "actor":
			if unknown := setActor(&fields, v, fail); unknown {
				// Keep what we do not model rather than drop it: the whole actor, as sent.
				additional = append(additional, additionalField{key, v})
			}
		case "targets":
			fail(rawOf(keepRaw, FieldTargets, "targets", v, fastjson.TypeArray))
		case "relatedResources":
			fail(rawOf(keepRaw, FieldRelatedResources, "relatedResources", v, fastjson.TypeArray))
		case "auditPayload":
			if v.Type() == fastjson.TypeObject {
				if t := v.Get("type"); t != nil && t.Type() != fastjson.TypeString && t.Type() != fastjson.TypeNull {
					fail(fmt.Errorf("auditPayload.type must be a string, not %s", t.Type()))
					return
				}
			}
			fail(rawOf(keepRaw, FieldAuditPayload, "auditPayload", v, fastjson.TypeObject))
		default:
			if f, name, ok := stringField(key); ok {
				fail(setString(&fields[f], name, v))
				return
			}
			additional = append(additional, additionalField{key, v})
		}
	})
	if !eventTimeGiven {
		fail(fmt.Errorf("eventTimestamp is required"))
	}
	if len(d.problems) > 0 {
		return d.problems
	}
	if !haveID {
		if id, err = d.newID(); err != nil {
			return append(d.problems, fmt.Errorf("generate id: %w", err))
		}
	}
	if len(additional) > 0 {
		start := len(d.scratch)
		d.scratch = appendObject(d.scratch, additional)
		rawSpans[FieldAdditional] = [2]int{start, len(d.scratch)}
	}
	for f, span := range rawSpans {
		if span[1] > span[0] {
			fields[f] = d.scratch[span[0]:span[1]]
		}
	}
	d.record = appendRecord(d.record[:0], id, eventMicros, recvMicros, &fields)
	batch.add(d.record)
	return nil
}

type additionalField struct {
	key   []byte
	value *fastjson.Value
}

// appendObject writes fields as one JSON object.
func appendObject(dst []byte, fields []additionalField) []byte {
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		key, _ := json.Marshal(string(f.key)) // escapes exactly as JSON requires
		dst = append(dst, key...)
		dst = append(dst, ':')
		dst = f.value.MarshalTo(dst)
	}
	return append(dst, '}')
}

// stringValue returns a string's bytes, nil for null, or an error for any other type.
func stringValue(name string, v *fastjson.Value) ([]byte, error) {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil, nil
	case fastjson.TypeString:
		return v.StringBytes()
	}
	return nil, fmt.Errorf("%s must be a string, not %s", name, v.Type())
}

func setString(dst *[]byte, name string, v *fastjson.Value) error {
	s, err := stringValue(name, v)
	*dst = s
	return err
}

// timestamp parses an RFC 3339 string into unix microseconds.
func timestamp(name string, v *fastjson.Value) (int64, error) {
	s, err := stringValue(name, v)
	if err != nil || s == nil {
		return 0, fmt.Errorf("%s must be an RFC 3339 timestamp string such as 2026-11-21T12:00:00Z", name)
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return 0, fmt.Errorf("%s must be an RFC 3339 timestamp such as 2026-11-21T12:00:00Z, got %q", name, truncate(s))
	}
	return t.UnixMicro(), nil
}

// setActor fills the actor fields, passing each problem to fail, and reports whether the actor
// had fields it does not model.
func setActor(fields *[numFields][]byte, v *fastjson.Value, fail func(error)) (unknown bool) {
	if v.Type() == fastjson.TypeNull {
		return false
	}
	obj, err := v.Object()
	if err != nil {
		fail(fmt.Errorf("actor must be an object, not %s", v.Type()))
		return false
	}
	obj.Visit(func(key []byte, v *fastjson.Value) {
		f, known := actorField(key)
		if !known {
			unknown = true
			return
		}
		fail(setString(&fields[f], "actor."+string(key), v))
	})
	return unknown
}

// stringField is the record's field for a top-level key whose value is a string, and the key's
// name, if it keeps that key.
func stringField(key []byte) (Field, string, bool) {
	switch string(key) {
	case "tenantId":
		return FieldTenantID, "tenantId", true
	case "action":
		return FieldAction, "action", true
	case "actionStatus":
		return FieldActionStatus, "actionStatus", true
	case "actorIp":
		return FieldActorIP, "actorIp", true
	case "targetType":
		return FieldTargetType, "targetType", true
	case "requestId":
		return FieldRequestID, "requestId", true
	case "sessionId":
		return FieldSessionID, "sessionId", true
	}
	return 0, "", false
}

// actorField is the record's field for a key of the actor object, if it keeps that key.
func actorField(key []byte) (Field, bool) {
	switch string(key) {
	case "id":
		return FieldActorID, true
	case "name":
		return FieldActorName, true
	case "type":
		return FieldActorType, true
	case "identityProvider":
		return FieldActorIdentityProvider, true
	case "profileId":
		return FieldActorProfileID, true
	}
	return 0, false
}

// rawOf keeps v's compacted JSON when it has type want; null means absent.
func rawOf(keep func(Field, *fastjson.Value), f Field, name string, v *fastjson.Value, want fastjson.Type) error {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil
	case want:
		keep(f, v)
		return nil
	}
	return fmt.Errorf("%s must be %s, not %s", name, article(want), v.Type())
}

func article(t fastjson.Type) string {
	if t == fastjson.TypeArray {
		return "an array"
	}
	return "an object"
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}
