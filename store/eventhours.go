package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/auditexport/auditexport/event"
)

// One read transaction of ReadEventHours gathers at most hourRunsPerRead runs, and reads at
// most hourEventsPerRead events when the engine reads events for them.
const (
	hourRunsPerRead   = 4096
	hourEventsPerRead = 65_536
)

// ReadEventHours calls fn with runs covering the buffered events after seq after up to seq to,
// in seq order, until fn returns false: what a job's first pass needs to lay its files out. An
// engine that keeps each chunk's hour answers from that (EventHourReader); otherwise the events
// are scanned in the read transaction, each one's event time decoded (no record copied out).
// fn runs with no transaction open.
func (s *Store) ReadEventHours(ctx context.Context, after, to uint64, fn func(HourRun) bool) error {
	runs := make([]HourRun, 0, 64)
	for after < to {
		err := s.view(ctx, func(tx ReadTx) error {
			runs = runs[:0] // a view may run fn again (a database's retry)
			if r, ok := tx.(EventHourReader); ok {
				return r.ScanEventHours(after, to, func(run HourRun) bool {
					runs = append(runs, run)
					return len(runs) < hourRunsPerRead
				})
			}
			return scanEventHours(tx, after, to, &runs)
		})
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

// HourRunOf is the run of one event.
func HourRunOf(seq uint64, record []byte) (HourRun, error) {
	micros, err := event.EventMicrosOf(record)
	if err != nil {
		return HourRun{}, fmt.Errorf("event %d: %w", seq, err)
	}
	return HourRun{Hour: event.UnixHour(micros), First: seq, Last: seq, Bytes: int64(len(record))}, nil
}

// scanEventHours appends to runs the runs of the events after seq after up to seq to, reading at
// most hourEventsPerRead events and making at most hourRunsPerRead runs.
func scanEventHours(tx ReadTx, after, to uint64, runs *[]HourRun) error {
	var failed error
	events := 0
	err := tx.ScanEvents(after, func(seq uint64, record []byte) bool {
		if seq > to {
			return false
		}
		run, err := HourRunOf(seq, record)
		if err != nil {
			failed = err
			return false
		}
		if n := len(*runs); n > 0 && (*runs)[n-1].Hour == run.Hour && (*runs)[n-1].Last+1 == seq {
			(*runs)[n-1].Last = seq
			(*runs)[n-1].Bytes += run.Bytes
		} else {
			*runs = append(*runs, run)
		}
		events++
		return events < hourEventsPerRead && len(*runs) < hourRunsPerRead
	})
	return errors.Join(err, failed)
}
