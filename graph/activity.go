package graph

import (
	"context"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/graph/model"
	"github.com/auditexport/auditexport/store"
)

// maxHistoryHours bounds exportHistory: a week, already more than 100 jobs of a frequent interval span.
const maxHistoryHours = 168

// exportHistory counts the events of a configuration's succeeded jobs per hour of their end, over
// the hours hours ending with the current one. Jobs are the record: the store keeps the newest
// store.JobsKept of them, so when some were removed the answer says from when it is complete.
func exportHistory(ctx context.Context, st store.Jobs, configID string, hours int, now time.Time) (*model.ExportHistory, error) {
	if hours < 1 || hours > maxHistoryHours {
		return nil, inputError("hours", "must be between 1 and 168")
	}
	jobs, err := st.Jobs(ctx, configID, 0)
	if err != nil {
		return nil, err
	}
	end := now.UTC().Truncate(time.Hour).Add(time.Hour)
	start := end.Add(-time.Duration(hours) * time.Hour)
	h := &model.ExportHistory{Hours: make([]*model.ExportHour, hours)}
	for i := range h.Hours {
		h.Hours[i] = &model.ExportHour{Start: start.Add(time.Duration(i) * time.Hour)}
	}
	for _, j := range jobs {
		if j.Status != store.JobSucceeded || j.EndedAt.Before(start) || !j.EndedAt.Before(end) {
			continue
		}
		hour := h.Hours[j.EndedAt.Sub(start)/time.Hour]
		hour.Events += int(j.EventCount)
		hour.Jobs++
	}
	// Jobs run one at a time per configuration, so every removed job ended before the oldest
	// kept one was created.
	if len(jobs) >= store.JobsKept {
		if oldest := jobs[len(jobs)-1].CreatedAt.UTC(); oldest.After(start) {
			h.IncompleteBefore = &oldest
		}
	}
	return h, nil
}

// exportLag is the age of the first event after cursor: the oldest a configuration has yet to export.
func exportLag(ctx context.Context, st store.EventBuffer, cursor uint64, now time.Time) (*model.ExportLag, error) {
	var (
		received time.Time
		parseErr error
	)
	err := st.ReadEvents(ctx, cursor, 1, func(_ uint64, record []byte) bool {
		var r event.Record
		if parseErr = r.Parse(record); parseErr == nil {
			received = time.UnixMicro(r.RecvMicros).UTC()
		}
		return false
	})
	if err == nil {
		err = parseErr
	}
	if err != nil {
		return nil, err
	}
	lag := &model.ExportLag{}
	if !received.IsZero() {
		lag.OldestPendingEventReceivedAt = &received
		lag.Seconds = int(max(now.Sub(received), 0) / time.Second)
	}
	return lag, nil
}

// viewer is the caller as the API shows it.
func viewer(p store.Principal) *model.Viewer {
	return &model.Viewer{Name: p.Name, Permissions: fromPermissions(p.Permissions)}
}
