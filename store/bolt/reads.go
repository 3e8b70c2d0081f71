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
	runs := store.NewHourRunJoiner(fn, hourScanEvents)
	addEvent := func(seq uint64, rec []byte) bool { return seq <= to && runs.AddEvent(seq, rec) }
	return runs.Finish(r.eachSegment(after, func(seg *bbolt.Bucket, holds bool) (bool, error) {
		return eachValue(seg, after+1, holds, func(seq uint64, v []byte) (uint64, bool, error) {
			if seq > to {
				return 0, false, nil
			}
			if !isChunk(v) {
				return eachEventOf(seq, v, after+1, buf, addEvent)
			}
			h, err := parseChunk(v)
			if err != nil {
				return 0, false, err
			}
			if last := seq + h.count - 1; h.sharedHour && seq > after && last <= to {
				return h.count, runs.Add(store.HourRun{Hour: h.hour, First: seq, Last: last, Bytes: h.bytes}), nil
			}
			return eachEventOfChunk(seq, h, after+1, buf, addEvent)
		})
	}))
}

// hourScanEvents is about how many events one ScanEventHours covers.
const hourScanEvents = 1 << 16
