package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/graph/model"
	"github.com/auditexport/auditexport/store"
)

// Paging bounds of auditEvents. maxScan and maxScanBytes bound the events one page reads while
// filtering, so a narrow time range over a large buffer answers promptly (hasNextPage then says
// to go on); maxPageBytes bounds the stored bytes of the events one page holds in memory (events
// may be 1 MiB each), ending the page early the same way.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
	maxScan         = 100_000
	maxScanBytes    = 64 << 20
	maxPageBytes    = 8 << 20
	cursorPrefix    = "seq:"
)

// Bounds of getAllExportJobs' limit.
const (
	defaultJobsLimit = 20
	maxJobsLimit     = 100
)

func encodeCursor(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatUint(seq, 10)))
}

func decodeCursor(cursor string) (uint64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err == nil {
		if digits, ok := strings.CutPrefix(string(raw), cursorPrefix); ok {
			if seq, err := strconv.ParseUint(digits, 10, 64); err == nil {
				return seq, nil
			}
		}
	}
	return 0, inputError("after", "is not a cursor from this API")
}

// jobsLimit is getAllExportJobs' limit: 20 unless given, at most 100.
func jobsLimit(limit *int) (int, error) {
	if limit == nil {
		return defaultJobsLimit, nil
	}
	if *limit < 1 || *limit > maxJobsLimit {
		return 0, inputError("limit", fmt.Sprintf("must be between 1 and %d", maxJobsLimit))
	}
	return *limit, nil
}

func inputError(field, message string) error {
	return &store.ValidationError{Fields: []store.FieldError{{Field: field, Message: message}}}
}

// eventFilter selects auditEvents: eventTimestamp in [from, to), targets naming targetID.
type eventFilter struct {
	from, to *time.Time
	targetID string
}

func (f eventFilter) matches(r *event.Record) bool {
	micros := r.EventMicros
	return (f.from == nil || micros >= f.from.UnixMicro()) && (f.to == nil || micros < f.to.UnixMicro()) &&
		(f.targetID == "" || targetsName(r.Fields[event.FieldTargets], f.targetID))
}

// targetsName reports whether an event's targets (an array of objects, or one object) name id.
func targetsName(targets []byte, id string) bool {
	if !bytes.Contains(targets, []byte(id)) { // most events do not mention it at all
		return false
	}
	var list []struct{ ID any }
	if err := json.Unmarshal(targets, &list); err != nil {
		var one struct{ ID any }
		if json.Unmarshal(targets, &one) != nil {
			return false
		}
		list = append(list, one)
	}
	for _, t := range list {
		if fmt.Sprint(t.ID) == id {
			return true
		}
	}
	return false
}

// auditEventsPage reads one page of buffered events in order of receipt.
func auditEventsPage(ctx context.Context, st Store, filter eventFilter, first *int, after *string) (*model.AuditEventConnection, error) {
	size := defaultPageSize
	if first != nil {
		if *first < 1 || *first > maxPageSize {
			return nil, inputError("first", fmt.Sprintf("must be between 1 and %d", maxPageSize))
		}
		size = *first
	}
	var position uint64
	if after != nil {
		var err error
		if position, err = decodeCursor(*after); err != nil {
			return nil, err
		}
	}
	conn := &model.AuditEventConnection{Edges: []*model.AuditEventEdge{}, PageInfo: &model.PageInfo{}}
	var (
		scanned, scannedBytes, pageBytes int
		decodeErr                        error
		r                                event.Record
	)
	err := st.ReadEvents(ctx, position, 0, func(seq uint64, rec []byte) bool {
		if decodeErr = r.Parse(rec); decodeErr != nil {
			return false
		}
		if filter.matches(&r) {
			if len(conn.Edges) == size {
				conn.PageInfo.HasNextPage = true
				return false
			}
			conn.Edges = append(conn.Edges, &model.AuditEventEdge{Node: toAuditEvent(r.Event(seq)), Cursor: encodeCursor(seq)})
			pageBytes += len(rec)
		}
		position, scannedBytes = seq, scannedBytes+len(rec)
		if scanned++; scanned >= maxScan || scannedBytes >= maxScanBytes || pageBytes >= maxPageBytes {
			conn.PageInfo.HasNextPage = true
			return false
		}
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, err
	}
	if position > 0 {
		end := encodeCursor(position)
		conn.PageInfo.EndCursor = &end
	}
	return conn, nil
}

func toAuditEvent(e event.Event) *model.AuditEvent {
	a := &model.AuditEvent{
		ID: e.ID.String(), TenantID: optional(e.TenantID), Action: optional(e.Action), ActionStatus: optional(e.ActionStatus),
		EventTimestamp: e.EventTimestamp, ReceivedTimestamp: e.ReceivedTimestamp,
		ActorIP: optional(e.ActorIP), TargetType: optional(e.TargetType), RequestID: optional(e.RequestID), SessionID: optional(e.SessionID),
		Targets: e.Targets, RelatedResources: e.RelatedResources, AuditPayload: e.AuditPayload, AdditionalFields: e.Additional,
	}
	if e.Actor != (event.Actor{}) {
		a.Actor = &model.AuditActor{
			ID: optional(e.Actor.ID), Name: optional(e.Actor.Name), Type: optional(e.Actor.Type),
			IdentityProvider: optional(e.Actor.IdentityProvider), ProfileID: optional(e.Actor.ProfileID),
		}
	}
	return a
}

func toBufferStatus(s store.BufferStatus) *model.EventBufferStatus {
	return &model.EventBufferStatus{
		Events: int(s.Events), Bytes: int(s.Bytes), MaxEvents: int(s.MaxEvents), MaxBytes: int(s.MaxBytes),
		Segments: s.Segments, DroppedEvents: int(s.Dropped), OldestReceivedAt: optionalTime(s.OldestReceivedAt),
	}
}
