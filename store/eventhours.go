package store

import (
	"context"
	"errors"
	"fmt"
	"math"

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

// ChunkHour is the event hour records share, if they share one (each a record whose time
// decodes), and their bytes: what an engine keeps of a chunk of events for EventHourReader.
func ChunkHour(records [][]byte) (hour int64, shared bool, bytes int64) {
	shared = len(records) > 0
	for i, r := range records {
		bytes += int64(len(r))
		micros, err := event.EventMicrosOf(r)
		if err != nil {
			shared = false // read as events, where the record's fault shows
			continue
		}
		if h := event.UnixHour(micros); i == 0 {
			hour = h
		} else if h != hour {
			shared = false
		}
	}
	return hour, shared, bytes
}

// scanEventHours appends to runs the runs of the events after seq after up to seq to, reading at
// most hourEventsPerRead events and making at most hourRunsPerRead runs.
func scanEventHours(tx ReadTx, after, to uint64, runs *[]HourRun) error {
	j := NewHourRunJoiner(func(run HourRun) bool {
		*runs = append(*runs, run)
		return len(*runs) < hourRunsPerRead
	}, hourEventsPerRead)
	return j.Finish(tx.ScanEvents(after, func(seq uint64, record []byte) bool {
		return seq <= to && j.AddEvent(seq, record)
	}))
}

// HourRunJoiner hands runs on to fn, joining each to the one before when both are of one hour
// and follow each other, until fn wants no more or about budget events are covered (0: no
// bound). An engine's EventHourReader and ReadEventHours's scan of events share it.
type HourRunJoiner struct {
	fn      func(HourRun) bool
	budget  uint64
	pending HourRun // not handed on yet; Last 0: none
	stopped bool    // fn wants no more, or the budget is spent
	err     error   // an event's time that does not decode
}

// NewHourRunJoiner returns a joiner handing runs to fn, covering about budget events (0: no
// bound).
func NewHourRunJoiner(fn func(HourRun) bool, budget uint64) *HourRunJoiner {
	if budget == 0 {
		budget = math.MaxUint64
	}
	return &HourRunJoiner{fn: fn, budget: budget}
}

// Add takes run and reports whether more are wanted.
func (h *HourRunJoiner) Add(run HourRun) bool {
	if h.pending.Last != 0 && h.pending.Hour == run.Hour && h.pending.Last+1 == run.First {
		h.pending.Last, h.pending.Bytes = run.Last, h.pending.Bytes+run.Bytes
	} else {
		h.flush()
		h.pending = run
	}
	if events := run.Last - run.First + 1; events >= h.budget {
		h.flush()
		h.stopped = true
	} else {
		h.budget -= events
	}
	return !h.stopped
}

// AddEvent takes the run of one event (HourRunOf) and reports whether more are wanted; an event
// whose time does not decode stops the joiner, and Finish returns why.
func (h *HourRunJoiner) AddEvent(seq uint64, record []byte) bool {
	run, err := HourRunOf(seq, record)
	if err != nil {
		h.err = err
		return false
	}
	return h.Add(run)
}

// Finish ends a scan that failed with err, or hands the last run on: it returns err, or why an
// event stopped the joiner.
func (h *HourRunJoiner) Finish(err error) error {
	if err = errors.Join(err, h.err); err == nil {
		h.flush()
	}
	return err
}

// flush hands the pending run on, if fn still wants runs.
func (h *HourRunJoiner) flush() {
	if h.pending.Last != 0 && !h.stopped {
		h.stopped = !h.fn(h.pending)
	}
	h.pending = HourRun{}
}
