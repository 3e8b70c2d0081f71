package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/store"
)

// The event buffer. Events are numbered in order of receipt (seq, from 1) and stored in
// segments: one nested bucket of bucketEvents per run of seqs, keyed by its first seq, so events
// leave the buffer a whole segment at a time with one DeleteBucket. A segment is closed when it
// reaches SegmentMaxEvents or SegmentMaxAge; the next append seals it (writes its sorted ids,
// dedup.go) and opens another. Seqs are given under the write lock, so in commit order.

// segment describes one segment bucket; it is also stored, as JSON, in bucketSegments.
type segment struct {
	First      uint64    `json:"first"`
	Last       uint64    `json:"last"`
	Count      int64     `json:"count"`
	Bytes      int64     `json:"bytes"`
	OpenedAt   time.Time `json:"openedAt"`
	LastAppend time.Time `json:"lastAppend"`
	// Sealed: its ids are in bucketEventIDs and in the fingerprints, not in the open map.
	Sealed bool `json:"sealed,omitempty"`
}

func (g segment) key() []byte { return seqKey(g.First) }

// buffer is the committed in-memory state of the event buffer. Readers hold Engine.mu for
// reading; a writer changes it only in apply, holding Engine.writeMu and Engine.mu.
type buffer struct {
	next     uint64 // seq of the next accepted event
	segments []segment
	count    int64
	bytes    int64
	// open maps the ids of the unsealed segments' events to their seqs. A write transaction adds
	// the ids it appends at once (writers are serialized and readers never look), and removes
	// them again when it does not commit.
	open   idTable
	sealed fingerprints // the ids of sealed segments
}

// loadBuffer reads the buffer's state: segment descriptions, the fingerprints of sealed
// segments' ids, and the ids of the open segment (at most SegmentMaxEvents events).
func loadBuffer(tx *bbolt.Tx, opts Options) (*buffer, error) {
	b := &buffer{next: 1}
	if v := tx.Bucket(bucketMeta).Get(keyNextSeq); len(v) == 8 {
		b.next = binary.BigEndian.Uint64(v)
	}
	err := eachJSON(tx.Bucket(bucketSegments), func(g segment) bool {
		b.segments = append(b.segments, g)
		b.count += g.Count
		b.bytes += g.Bytes
		return true
	})
	if err != nil {
		return nil, err
	}
	b.sealed.resize(int(b.count))
	for _, g := range b.segments {
		if g.Sealed {
			eachID(segmentIDs(tx, g.key()), func(id uuid.UUID) { b.sealed.add(fingerprintOf(id)) })
			continue
		}
		if err := eachEventID(tx, g, func(seq uint64, id uuid.UUID) { b.open.put(id, seq) }); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// eachEventID calls fn with the seq and id of each event of a segment.
func eachEventID(tx *bbolt.Tx, g segment, fn func(seq uint64, id uuid.UUID)) error {
	seg := tx.Bucket(bucketEvents).Bucket(g.key())
	if seg == nil {
		return fmt.Errorf("segment %d has no bucket", g.First)
	}
	var idErr error
	_, err := eachEvent(seg, g.First, false, func(seq uint64, rec []byte) bool {
		id, err := event.IDOf(rec)
		if err != nil {
			idErr = fmt.Errorf("event %d: %w", seq, err)
			return false
		}
		fn(seq, id)
		return true
	})
	return errors.Join(damaged(err), idErr)
}

// eventWriter holds a write transaction's changes to the buffer until it commits.
type eventWriter struct {
	e    *Engine
	b    *buffer
	tx   *bbolt.Tx
	next uint64
	// tail holds, in order, the segments this transaction changed: the open one when appended
	// to, then any it opened.
	tail []segment
	// added lists the ids this transaction appended (and put in the buffer's open table).
	added []uuid.UUID
	// pending are the events appended and not yet written, by segment (chunks.go); chunks counts
	// the chunk values written.
	pending []pendingChunk
	chunks  int
	count   int64
	bytes   int64
	// sealed lists the ids of the segments this transaction sealed; trimmed those it removed.
	sealed  []sealedSegment
	trimmed []sealedSegment
	// warmed keeps what PrefetchEventIDs read, so that its reads are not optimized away.
	warmed uint64
}

type sealedSegment struct {
	segment segment
	ids     []uuid.UUID
}

func newEventWriter(e *Engine, tx *bbolt.Tx) *eventWriter {
	return &eventWriter{e: e, b: e.buf, tx: tx, next: e.buf.next, added: e.added[:0]}
}

// segments is the buffer's segment list as this transaction sees it.
func (w *eventWriter) segments() []segment {
	segs := w.b.segments[len(w.trimmed):]
	if len(w.tail) == 0 {
		return segs
	}
	out := append([]segment(nil), segs...)
	for _, g := range w.tail {
		if n := len(out); n > 0 && out[n-1].First == g.First {
			out[n-1] = g
		} else {
			out = append(out, g)
		}
	}
	return out
}

func (w *eventWriter) closed(g *segment, now time.Time) bool {
	return g.Count >= w.e.opts.SegmentMaxEvents || now.Sub(g.OpenedAt) >= w.e.opts.SegmentMaxAge
}

// isDuplicate reports whether an event with this id is buffered or was appended earlier in
// this transaction.
func (w *eventWriter) isDuplicate(id uuid.UUID) bool {
	if _, ok := w.b.open.get(id); ok {
		return true
	}
	if !w.b.sealed.mayContain(fingerprintOf(id)) {
		return false
	}
	segs := w.b.segments[len(w.trimmed):]
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].Sealed && containsID(segmentIDs(w.tx, segs[i].key()), id) {
			return true
		}
	}
	return false
}

// openSegment returns the segment the next event goes to, sealing a closed one and opening a
// new one when needed.
func (w *eventWriter) openSegment(now time.Time) (*segment, error) {
	if len(w.tail) == 0 && len(w.b.segments) > len(w.trimmed) {
		w.tail = append(w.tail, w.b.segments[len(w.b.segments)-1])
	}
	if n := len(w.tail); n > 0 {
		last := &w.tail[n-1]
		if !w.closed(last, now) {
			return last, nil
		}
		if !last.Sealed {
			if err := w.seal(last); err != nil {
				return nil, err
			}
		}
	}
	g := segment{First: w.next, Last: w.next - 1, OpenedAt: now}
	if _, err := w.tx.Bucket(bucketEvents).CreateBucket(g.key()); err != nil {
		return nil, fmt.Errorf("open segment %d: %w", g.First, err)
	}
	w.tail = append(w.tail, g)
	return &w.tail[len(w.tail)-1], nil
}

// seal writes the sorted ids of a closed segment.
func (w *eventWriter) seal(g *segment) error {
	ids := w.b.open.between(g.First, g.Last)
	if err := putSegmentIDs(w.tx, g.key(), sortedIDs(ids)); err != nil {
		return fmt.Errorf("seal segment %d: %w", g.First, err)
	}
	g.Sealed = true
	w.sealed = append(w.sealed, sealedSegment{*g, ids})
	return nil
}

// PrefetchEventIDs reads the dedup tables' slots of the ids a group commit is about to append
// (store.EventIDPrefetcher), all at once: reads independent of one another, which the
// processor overlaps, where each look-up amid the appends waited for its own cache miss (the
// tables outgrow the cache the exporter and the requests' decoding share: idTable.get was 4% of
// the server's CPU end to end, all of it on the commit's serial path).
func (w *writeTx) PrefetchEventIDs(ids []uuid.UUID, _ [][]byte) error {
	b := w.events.b
	w.events.warmed = b.open.warm(ids) + b.sealed.warm(ids)
	return nil
}

// AppendEvent appends a record unless its id is buffered; see store.Tx.
func (w *writeTx) AppendEvent(id uuid.UUID, record []byte, at time.Time) (uint64, bool, error) {
	ew := w.events
	if ew.isDuplicate(id) {
		return 0, true, nil
	}
	g, err := ew.openSegment(at)
	if err != nil {
		return 0, false, err
	}
	seq := ew.next
	if n := len(ew.pending); n == 0 || ew.pending[n-1].segment != g.First || ew.pending[n-1].bytes+len(record) > chunkMaxBytes {
		ew.pending = append(ew.pending, pendingChunk{segment: g.First, first: seq})
	}
	p := &ew.pending[len(ew.pending)-1]
	p.records, p.bytes = append(p.records, record), p.bytes+len(record)
	ew.next++
	g.Last, g.Count, g.Bytes, g.LastAppend = seq, g.Count+1, g.Bytes+int64(len(record)), at
	ew.b.open.put(id, seq)
	ew.added = append(ew.added, id)
	ew.count++
	ew.bytes += int64(len(record))
	return seq, false, nil
}

// flush writes the changed segment descriptions and the next seq: the transaction's last step.
func (w *eventWriter) flush() error {
	if err := w.writePending(); err != nil {
		return err
	}
	if w.count == 0 && len(w.trimmed) == 0 && len(w.sealed) == 0 {
		return nil
	}
	for _, g := range w.tail {
		if err := putJSON(w.tx.Bucket(bucketSegments), g.key(), g); err != nil {
			return err
		}
	}
	return w.tx.Bucket(bucketMeta).Put(keyNextSeq, seqKey(w.next))
}

// apply makes a committed transaction's changes visible; the caller holds Engine.mu.
func (w *eventWriter) apply() {
	b := w.b
	for _, t := range w.trimmed {
		for _, id := range t.ids {
			if t.segment.Sealed {
				b.sealed.remove(fingerprintOf(id))
			} else {
				b.open.remove(id)
			}
		}
		b.count -= t.segment.Count
		b.bytes -= t.segment.Bytes
	}
	b.segments = b.segments[len(w.trimmed):]
	for _, g := range w.tail {
		if n := len(b.segments); n > 0 && b.segments[n-1].First == g.First {
			b.segments[n-1] = g
		} else {
			b.segments = append(b.segments, g)
		}
	}
	for _, s := range w.sealed {
		b.sealed.addAll(s.ids)
		b.open.dropBetween(s.segment.First, s.segment.Last)
	}
	b.next = w.next
	b.count += w.count
	b.bytes += w.bytes
}

// rollback forgets the ids a transaction that did not commit had appended.
func (w *eventWriter) rollback() {
	for _, id := range w.added {
		w.b.open.remove(id)
	}
}

// TrimEvents removes whole segments from the oldest on; see store.Tx.
func (w *writeTx) TrimEvents(p store.TrimPolicy) (store.TrimResult, error) {
	ew := w.events
	var res store.TrimResult
	for len(ew.tail) == 0 && len(ew.trimmed) < len(ew.b.segments) {
		g := ew.b.segments[len(ew.trimmed)]
		exported := g.Last <= p.ExportedThrough
		if !(exported && !g.LastAppend.After(p.ExportedBefore)) && g.LastAppend.After(p.DropBefore) {
			break
		}
		if !exported {
			res.Dropped += int64(g.Last - max(p.ExportedThrough, g.First-1))
		}
		ids, err := ew.idsOf(g)
		if err != nil {
			return store.TrimResult{}, err
		}
		if err := w.tx.Bucket(bucketEvents).DeleteBucket(g.key()); err != nil {
			return store.TrimResult{}, fmt.Errorf("delete segment %d: %w", g.First, err)
		}
		if err := w.tx.Bucket(bucketSegments).Delete(g.key()); err != nil {
			return store.TrimResult{}, err
		}
		if err := deleteSegmentIDs(w.tx, g.key()); err != nil {
			return store.TrimResult{}, err
		}
		ew.trimmed = append(ew.trimmed, sealedSegment{g, ids})
		res.Segments++
		res.Events += g.Count
	}
	return res, nil
}

// idsOf lists the ids of a committed segment.
func (w *eventWriter) idsOf(g segment) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, 0, g.Count)
	if g.Sealed {
		eachID(segmentIDs(w.tx, g.key()), func(id uuid.UUID) { ids = append(ids, id) })
		return ids, nil
	}
	err := eachEventID(w.tx, g, func(_ uint64, id uuid.UUID) { ids = append(ids, id) })
	return ids, err
}

// EventStats describes the buffer as this transaction sees it.
func (r *readTx) EventStats() (store.EventStats, error) {
	var segs []segment
	var st store.EventStats
	if r.events != nil {
		segs = r.events.segments()
		st.Head = r.events.next - 1
	} else {
		r.e.mu.RLock()
		defer r.e.mu.RUnlock()
		segs = r.e.buf.segments
		st.Head = r.e.buf.next - 1
	}
	for _, g := range segs {
		st.Events += g.Count
		st.Bytes += g.Bytes
	}
	st.Units = len(segs)
	if len(segs) > 0 {
		st.Oldest, st.OldestAppendedAt = segs[0].First, segs[0].OpenedAt
	}
	return st, nil
}

// EventsAppendedSince returns the first seq of the oldest segment last appended to at or after t.
func (r *readTx) EventsAppendedSince(t time.Time) (uint64, bool, error) {
	var segs []segment
	if r.events != nil {
		segs = r.events.segments()
	} else {
		r.e.mu.RLock()
		defer r.e.mu.RUnlock()
		segs = r.e.buf.segments
	}
	for _, g := range segs {
		if !g.LastAppend.Before(t) {
			return g.First, true, nil
		}
	}
	return 0, false, nil
}

// segmentJSON decodes a segment description (migrations).
func segmentJSON(v []byte) (segment, error) {
	var g segment
	err := json.Unmarshal(bytes.Clone(v), &g)
	return g, err
}
