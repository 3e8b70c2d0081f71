package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/auditexport/auditexport/event"
)

// hourRunsPerRead bounds the runs one read transaction of ReadEventHours gathers.
const hourRunsPerRead = 4096

// errNoHours is an engine without EventHourReader.
var errNoHours = errors.New("the engine does not keep event hours")

// ReadEventHours calls fn with runs covering the buffered events after seq after up to seq to,
// in seq order, until fn returns false: what a job's first pass needs to lay its files out. An
// engine that keeps each chunk's hour answers from that (EventHourReader), without reading the
// events; otherwise the events are read and each one's event time decoded. fn runs with no
// transaction open.
func (s *Store) ReadEventHours(ctx context.Context, after, to uint64, fn func(HourRun) bool) error {
	runs := make([]HourRun, 0, 64)
	for after < to {
		runs = runs[:0]
		err := s.view(ctx, func(tx ReadTx) error {
			r, ok := tx.(EventHourReader)
			if !ok {
				return errNoHours
			}
			return r.ScanEventHours(after, to, func(run HourRun) bool {
				runs = append(runs, run)
				return len(runs) < hourRunsPerRead
			})
		})
		if errors.Is(err, errNoHours) {
			return s.decodeEventHours(ctx, after, to, fn)
		}
		if err != nil || len(runs) == 0 {
			return err
		}
		for _, run := range runs {
			if !fn(run) {
				return nil
			}
		}
		after = runs[len(runs)-1].Last
	}
	return nil
}

// decodeEventHours is ReadEventHours reading the events: runs of events of one hour.
func (s *Store) decodeEventHours(ctx context.Context, after, to uint64, fn func(HourRun) bool) error {
	var run HourRun
	var failed error
	err := s.ReadEvents(ctx, after, 0, func(seq uint64, record []byte) bool {
		if seq > to {
			return false
		}
		micros, err := event.EventMicrosOf(record)
		if err != nil {
			failed = fmt.Errorf("event %d: %w", seq, err)
			return false
		}
		hour := event.UnixHour(micros)
		if run.Last != 0 && (hour != run.Hour || seq != run.Last+1) {
			if !fn(run) {
				run = HourRun{}
				return false
			}
			run = HourRun{}
		}
		if run.Last == 0 {
			run = HourRun{Hour: hour, First: seq}
		}
		run.Last = seq
		run.Bytes += int64(len(record))
		return true
	})
	if err == nil && failed == nil && run.Last != 0 {
		fn(run)
	}
	return errors.Join(err, failed)
}
