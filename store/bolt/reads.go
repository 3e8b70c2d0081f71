package bolt

import (
	"encoding/binary"
	"errors"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/store"
)

// Reading the buffer: its events, and the runs of their event hours, segment by segment.

// ScanEvents calls fn with each event after seq after, within the transaction, until fn returns false.
func (r *readTx) ScanEvents(after uint64, fn func(seq uint64, record []byte) bool) error {
	return r.eachSegment(after, func(seg *bbolt.Bucket, holds bool) (bool, error) {
		return eachEvent(seg, after+1, holds, fn)
	})
}

// eachSegment calls visit with each segment from the one holding seq after+1 on, in order,
// until visit reports no more; holds says the segment must hold after+1 (a later one follows).
func (r *readTx) eachSegment(after uint64, visit func(seg *bbolt.Bucket, holds bool) (bool, error)) error {
	if r.events != nil { // a write transaction sees its own appends
		if err := r.events.writePending(); err != nil {
			return err
		}
	}
	events := r.tx.Bucket(bucketEvents)
	segs := events.Cursor()
	// The segment holding after+1 is the last one whose first seq is <= after+1; it must hold
	// it when a later segment follows (segments have no gaps between them).
	k, _ := segs.Seek(seqKey(after + 1))
	holds := false
	if k == nil || binary.BigEndian.Uint64(k) > after+1 {
		if k == nil {
			k, _ = segs.Last()
		} else {
			k, _ = segs.Prev()
			holds = k != nil
		}
		if k == nil {
			k, _ = segs.First()
		}
	}
	for ; k != nil; k, _ = segs.Next() {
		more, err := visit(events.Bucket(k), holds)
		holds = false
		if err != nil || !more {
			return damaged(err)
		}
	}
	return nil
}

// damaged makes a chunk that fails its checksum damage of the file, as bbolt's own panics on a
// damaged page are (guard turns either into a DamagedError).
func damaged(err error) error {
	if errors.Is(err, errChunkDamaged) {
		panic(err.Error())
	}
	return err
}

// ScanEventHours reads the runs of events of one hour from the chunks' headers, decoding only
// the chunks that span hours, were written before schema 4, or hold a bound; see
// store.EventHourReader. It stops after about hourScanEvents events, so that one read
// transaction stays short (a long one holds up a commit that grows the file); the caller goes
// on from the last run.
func (r *readTx) ScanEventHours(after, to uint64, fn func(store.HourRun) bool) error {
	buf := decodeBuffers.Get().(*[]byte)
	defer decodeBuffers.Put(buf)
	runs := hourRuns{fn: fn, budget: hourScanEvents}
	err := r.eachSegment(after, func(seg *bbolt.Bucket, holds bool) (bool, error) {
		return eachValue(seg, after+1, holds, func(seq uint64, v []byte) (uint64, bool, error) {
			if seq > to {
				return 0, false, nil
			}
			if isChunk(v) {
				h, err := parseChunk(v)
				if err != nil {
					return 0, false, err
				}
				if last := seq + h.count - 1; h.sharedHour && seq > after && last <= to {
					return h.count, runs.add(store.HourRun{Hour: h.hour, First: seq, Last: last, Bytes: h.bytes}), nil
				}
			}
			return eachEventOf(seq, v, after+1, buf, func(seq uint64, rec []byte) bool {
				if seq > to {
					return false
				}
				run, err := store.HourRunOf(seq, rec)
				if err != nil {
					runs.err = err
					return false
				}
				return runs.add(run)
			})
		})
	})
	if err = errors.Join(err, runs.err); err == nil {
		runs.flush()
	}
	return err
}

// hourScanEvents is about how many events one ScanEventHours covers.
const hourScanEvents = 1 << 16

// hourRuns hands runs on, joining each to the one before when they are of one hour.
type hourRuns struct {
	fn      func(store.HourRun) bool
	pending store.HourRun // not handed on yet; Last 0: none
	budget  uint64        // events left to cover before stopping
	stopped bool          // fn wants no more, or the budget is spent
	err     error         // an event's time that does not decode
}

// add takes run and reports whether more are wanted.
func (h *hourRuns) add(run store.HourRun) bool {
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

// flush hands the pending run on, if fn still wants runs.
func (h *hourRuns) flush() {
	if h.pending.Last != 0 && !h.stopped {
		h.stopped = !h.fn(h.pending)
	}
	h.pending = store.HourRun{}
}
