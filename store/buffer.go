package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/event"
)

// The event buffer. Events are numbered in order of receipt (seq, from 1) and stored in
// segments: one nested bucket of bucketEvents per run of seqs, keyed by its first seq, so events
// leave the buffer a whole segment at a time with one DeleteBucket. A segment is closed when it
// reaches SegmentMaxEvents or SegmentMaxAge. Dedup uses an in-memory index of the buffered ids,
// rebuilt at Open; only the appends themselves touch the file, sequentially.

// ErrBufferFull means the batch does not fit in the buffer's limits; nothing of it was stored.
var ErrBufferFull = errors.New("the event buffer is full")

// ErrClosed means the store is closed.
var ErrClosed = errors.New("store is closed")

// BufferConfig bounds the event buffer. Zero fields take the defaults shown.
type BufferConfig struct {
	// MaxEvents and MaxBytes bound what the buffer holds; a batch that would pass either is
	// refused whole. Defaults 5,000,000 events and 4 GiB of encoded events.
	MaxEvents int64
	MaxBytes  int64
	// SegmentMaxEvents and SegmentMaxAge close a segment. Defaults 65,536 and 1h.
	SegmentMaxEvents int64
	SegmentMaxAge    time.Duration
	// MinRetention keeps exported events at least this long after receipt. Default 1h.
	MinRetention time.Duration
	// MaxAge drops events this long after receipt even when not every enabled configuration has
	// exported them; they are counted, logged and shown as dropped. Default 30 days (720h).
	MaxAge time.Duration
	// TrimInterval is how often the buffer looks for segments to remove. Default 1m.
	TrimInterval time.Duration
	// MaxGroupEvents bounds the events one group commit gathers. Default 50,000.
	MaxGroupEvents int
}

// DefaultBufferConfig returns the values BufferConfig's zero fields take.
func DefaultBufferConfig() BufferConfig {
	var c BufferConfig
	c.fillDefaults()
	return c
}

// fillDefaults replaces zero (and negative) fields by their defaults.
func (c *BufferConfig) fillDefaults() {
	c.MaxEvents = cmp.Or(max(c.MaxEvents, 0), 5_000_000)
	c.MaxBytes = cmp.Or(max(c.MaxBytes, 0), 4<<30)
	c.SegmentMaxEvents = cmp.Or(max(c.SegmentMaxEvents, 0), 65_536)
	c.SegmentMaxAge = cmp.Or(max(c.SegmentMaxAge, 0), time.Hour)
	c.MinRetention = cmp.Or(max(c.MinRetention, 0), time.Hour)
	c.MaxAge = cmp.Or(max(c.MaxAge, 0), 30*24*time.Hour)
	c.TrimInterval = cmp.Or(max(c.TrimInterval, 0), time.Minute)
	c.MaxGroupEvents = cmp.Or(max(c.MaxGroupEvents, 0), 50_000)
}

// segment describes one segment bucket; it is also stored, as JSON, in bucketSegments.
type segment struct {
	First      uint64    `json:"first"`
	Last       uint64    `json:"last"`
	Count      int64     `json:"count"`
	Bytes      int64     `json:"bytes"`
	OpenedAt   time.Time `json:"openedAt"`
	LastAppend time.Time `json:"lastAppend"`
}

func (g segment) key() []byte { return seqKey(g.First) }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// buffer is the in-memory state of the event buffer. Writers change it only through apply,
// after their transaction committed, under Store.writeMu.
type buffer struct {
	cfg BufferConfig

	mu       sync.RWMutex
	next     uint64 // seq of the next accepted event
	segments []segment
	ids      map[uuid.UUID]uint64
	count    int64
	bytes    int64
	dropped  uint64 // events removed by MaxAge before every enabled configuration exported them
}

// loadBuffer reads the buffer's state from the file.
func loadBuffer(tx *bolt.Tx, cfg BufferConfig) (*buffer, error) {
	b := &buffer{cfg: cfg, next: 1, ids: map[uuid.UUID]uint64{}}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyNextSeq); len(v) == 8 {
		b.next = binary.BigEndian.Uint64(v)
	}
	if v := meta.Get(keyDroppedEvents); len(v) == 8 {
		b.dropped = binary.BigEndian.Uint64(v)
	}
	events := tx.Bucket(bucketEvents)
	err := tx.Bucket(bucketSegments).ForEach(func(k, v []byte) error {
		var g segment
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("decode segment %x: %w", k, err)
		}
		seg := events.Bucket(k)
		if seg == nil {
			return fmt.Errorf("segment %d has no bucket", g.First)
		}
		if err := seg.ForEach(func(k, v []byte) error {
			id, err := event.IDOf(v)
			if err != nil {
				return fmt.Errorf("event %x: %w", k, err)
			}
			b.ids[id] = binary.BigEndian.Uint64(k)
			return nil
		}); err != nil {
			return err
		}
		b.segments = append(b.segments, g)
		b.count += g.Count
		b.bytes += g.Bytes
		return nil
	})
	return b, err
}

// eventWriter appends events inside one write transaction; its changes to the buffer's state
// are applied only if the transaction commits.
type eventWriter struct {
	b    *buffer
	tx   *bolt.Tx
	now  time.Time
	next uint64
	// prev is the buffer's open segment before this transaction; tail holds, in order, the
	// segments this transaction changed: prev when appended to, then any it opened.
	prev  *segment
	tail  []segment
	ids   map[uuid.UUID]uint64
	count int64
	bytes int64
	// afterCommit runs, under the write lock, once the transaction committed.
	afterCommit []func()
}

func (b *buffer) writer(tx *bolt.Tx, now time.Time) *eventWriter {
	b.mu.RLock()
	defer b.mu.RUnlock()
	w := &eventWriter{b: b, tx: tx, now: now, next: b.next}
	if n := len(b.segments); n > 0 {
		prev := b.segments[n-1]
		w.prev = &prev
	}
	return w
}

func (w *eventWriter) isDuplicate(id uuid.UUID) bool {
	if _, ok := w.ids[id]; ok {
		return true
	}
	w.b.mu.RLock()
	_, ok := w.b.ids[id]
	w.b.mu.RUnlock()
	return ok
}

// fits reports whether events more events of size bytes stay within the buffer's limits.
func (w *eventWriter) fits(events, bytes int64) bool {
	w.b.mu.RLock()
	defer w.b.mu.RUnlock()
	return w.b.count+w.count+events <= w.b.cfg.MaxEvents && w.b.bytes+w.bytes+bytes <= w.b.cfg.MaxBytes
}

func (w *eventWriter) closed(g *segment) bool {
	return g.Count >= w.b.cfg.SegmentMaxEvents || w.now.Sub(g.OpenedAt) >= w.b.cfg.SegmentMaxAge
}

// openSegment returns the segment the next event goes to, opening a new one when needed.
func (w *eventWriter) openSegment() (*segment, error) {
	if len(w.tail) == 0 && w.prev != nil && !w.closed(w.prev) {
		w.tail = append(w.tail, *w.prev)
	}
	if n := len(w.tail); n > 0 && !w.closed(&w.tail[n-1]) {
		return &w.tail[n-1], nil
	}
	g := segment{First: w.next, Last: w.next - 1, OpenedAt: w.now}
	if _, err := w.tx.Bucket(bucketEvents).CreateBucket(g.key()); err != nil {
		return nil, fmt.Errorf("open segment %d: %w", g.First, err)
	}
	w.tail = append(w.tail, g)
	return &w.tail[len(w.tail)-1], nil
}

// append stores one record unless its id is already buffered; it returns the seq given.
func (w *eventWriter) append(record []byte) (seq uint64, duplicate bool, err error) {
	id, err := event.IDOf(record)
	if err != nil {
		return 0, false, err
	}
	if w.isDuplicate(id) {
		return 0, true, nil
	}
	g, err := w.openSegment()
	if err != nil {
		return 0, false, err
	}
	bucket := w.tx.Bucket(bucketEvents).Bucket(g.key())
	bucket.FillPercent = 1 // append-only: fill pages completely
	seq = w.next
	if err := bucket.Put(seqKey(seq), record); err != nil {
		return 0, false, fmt.Errorf("append event %d: %w", seq, err)
	}
	w.next++
	g.Last, g.Count, g.Bytes, g.LastAppend = seq, g.Count+1, g.Bytes+int64(len(record)), w.now
	if w.ids == nil {
		w.ids = map[uuid.UUID]uint64{}
	}
	w.ids[id] = seq
	w.count++
	w.bytes += int64(len(record))
	return seq, false, nil
}

// flush writes the changed segment records and the next seq: the last step of the transaction.
func (w *eventWriter) flush() error {
	if w.count == 0 {
		return nil
	}
	for _, g := range w.tail {
		if err := putJSON(w.tx.Bucket(bucketSegments), string(g.key()), g); err != nil {
			return err
		}
	}
	return w.tx.Bucket(bucketMeta).Put(keyNextSeq, seqKey(w.next))
}

// apply makes a committed writer's appends visible.
func (b *buffer) apply(w *eventWriter) {
	for _, fn := range w.afterCommit {
		fn()
	}
	if w.count == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next = w.next
	for _, g := range w.tail {
		if n := len(b.segments); n > 0 && b.segments[n-1].First == g.First {
			b.segments[n-1] = g
		} else {
			b.segments = append(b.segments, g)
		}
	}
	for id, seq := range w.ids {
		b.ids[id] = seq
	}
	b.count += w.count
	b.bytes += w.bytes
}

// AppendResult is the outcome of one batch.
type AppendResult struct {
	Accepted   int
	Duplicates int
	// First and Last are the seqs given to the accepted events (0 when none was).
	First, Last uint64
}

type appendRequest struct {
	batch *event.Batch
	done  chan appendReply
}

type appendReply struct {
	result AppendResult
	err    error
}

// AppendEvents stores a batch durably: it returns once the transaction holding it is synced to
// disk. Batches arriving meanwhile share one transaction (group commit). A batch is stored whole
// or not at all; ErrBufferFull when it does not fit. Events whose id is already buffered, or
// repeated within the batch, are counted as duplicates and not stored again.
func (s *Store) AppendEvents(ctx context.Context, batch *event.Batch) (AppendResult, error) {
	req := appendRequest{batch: batch, done: make(chan appendReply, 1)}
	select {
	case s.appends <- req:
	case <-s.closing:
		return AppendResult{}, ErrClosed
	case <-ctx.Done():
		return AppendResult{}, ctx.Err()
	}
	// Once queued, the batch is committed or refused: wait for the answer even if the caller
	// has gone, so what was stored is never reported as failed.
	r := <-req.done
	return r.result, r.err
}

// commitLoop is the group committer: it takes one waiting batch, gathers every other batch
// already waiting, and commits them in one transaction.
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	for {
		var first appendRequest
		select {
		case first = <-s.appends:
		case <-s.closing:
			return
		}
		group := []appendRequest{first}
		events := first.batch.Len()
	gather:
		for events < s.buf.cfg.MaxGroupEvents {
			select {
			case req := <-s.appends:
				group = append(group, req)
				events += req.batch.Len()
			default:
				break gather
			}
		}
		s.commitGroup(group)
	}
}

func (s *Store) commitGroup(group []appendRequest) {
	replies := make([]appendReply, len(group))
	err := s.update(func(tx *bolt.Tx, w *eventWriter) error {
		for i, req := range group {
			replies[i].result, replies[i].err = w.appendBatch(req.batch)
		}
		return nil
	})
	for i, req := range group {
		if err != nil {
			replies[i] = appendReply{err: err}
		}
		if replies[i].err == nil {
			s.metrics.accepted.Add(float64(replies[i].result.Accepted))
			s.metrics.duplicates.Add(float64(replies[i].result.Duplicates))
		}
		req.done <- replies[i]
	}
	s.metrics.groupSize.Observe(float64(len(group)))
}

// appendBatch appends a batch all or nothing within the writer's transaction.
func (w *eventWriter) appendBatch(batch *event.Batch) (AppendResult, error) {
	if !w.fits(int64(batch.Len()), int64(len(batch.Data))) {
		return AppendResult{}, ErrBufferFull
	}
	var r AppendResult
	for i := range batch.Len() {
		seq, dup, err := w.append(batch.Record(i))
		if err != nil {
			return AppendResult{}, err // fails the whole transaction: nothing is stored
		}
		if dup {
			r.Duplicates++
			continue
		}
		if r.First == 0 {
			r.First = seq
		}
		r.Last = seq
		r.Accepted++
	}
	return r, nil
}

// Head is the seq of the newest buffered event (0 when none was ever accepted).
func (s *Store) Head() uint64 {
	s.buf.mu.RLock()
	defer s.buf.mu.RUnlock()
	return s.buf.next - 1
}

// seqBeforeReceived is the seq before the first buffered event received at or after t, or head
// when there is none. Segments are in order of receipt: the first one whose last append is not
// before t is searched event by event, by receivedTimestamp; when a client set timestamps
// earlier than that, the search ends with the segment rather than read the whole buffer.
func (s *Store) seqBeforeReceived(tx *bolt.Tx, t time.Time, head uint64) (uint64, error) {
	s.buf.mu.RLock()
	var g segment
	found := false
	for _, seg := range s.buf.segments {
		if !seg.LastAppend.Before(t) {
			g, found = seg, true
			break
		}
	}
	s.buf.mu.RUnlock()
	if !found {
		return head, nil
	}
	seq, micros := min(g.Last, head), t.UnixMicro()
	var parseErr error
	err := scanEvents(tx, g.First-1, func(at uint64, rec []byte) bool {
		if at > g.Last {
			return false
		}
		var r event.Record
		if parseErr = r.Parse(rec); parseErr != nil {
			return false
		}
		if r.RecvMicros >= micros {
			seq = at - 1
			return false
		}
		return true
	})
	return seq, errors.Join(err, parseErr)
}

// PendingEvents is how many buffered events come after cursor: those a configuration at that
// cursor has still to export (events already removed from the buffer are not pending).
func (s *Store) PendingEvents(cursor uint64) int64 {
	s.buf.mu.RLock()
	defer s.buf.mu.RUnlock()
	if len(s.buf.segments) == 0 {
		return 0
	}
	head := s.buf.next - 1
	return int64(head - min(max(cursor, s.buf.segments[0].First-1), head))
}

// readChunk bounds what one read transaction of ReadEvents copies out.
const (
	readChunkEvents = 4096
	readChunkBytes  = 8 << 20
)

// ReadEvents calls fn with each buffered event after seq after, in order, until fn returns
// false or limit events were read (limit <= 0: no limit). The record is valid only during fn.
//
// Events are copied out in chunks, each in a short read transaction, and fn runs with no
// transaction open: fn may take as long as it likes, and may wait on work that writes to the
// store. (A read transaction held across such a wait deadlocks: a write that grows the file
// waits for every open read transaction to end.)
func (s *Store) ReadEvents(after uint64, limit int, fn func(seq uint64, record []byte) bool) error {
	var (
		seqs []uint64
		ends []int
		data []byte
		read int
	)
	for {
		seqs, ends, data = seqs[:0], ends[:0], data[:0]
		err := s.db.View(func(tx *bolt.Tx) error {
			return scanEvents(tx, after, func(seq uint64, rec []byte) bool {
				seqs = append(seqs, seq)
				data = append(data, rec...)
				ends = append(ends, len(data))
				return len(seqs) < readChunkEvents && len(data) < readChunkBytes && (limit <= 0 || read+len(seqs) < limit)
			})
		})
		if err != nil {
			return err
		}
		start := 0
		for i, seq := range seqs {
			if !fn(seq, data[start:ends[i]:ends[i]]) {
				return nil
			}
			start = ends[i]
			if read++; limit > 0 && read >= limit {
				return nil
			}
		}
		if len(seqs) == 0 {
			return nil
		}
		after = seqs[len(seqs)-1]
	}
}

// scanEvents calls fn with each event after seq after, within tx, until fn returns false.
func scanEvents(tx *bolt.Tx, after uint64, fn func(seq uint64, record []byte) bool) error {
	events := tx.Bucket(bucketEvents)
	segs := events.Cursor()
	// The segment holding after+1 is the last one whose first seq is <= after+1.
	k, _ := segs.Seek(seqKey(after + 1))
	if k == nil || binary.BigEndian.Uint64(k) > after+1 {
		if k == nil {
			k, _ = segs.Last()
		} else {
			k, _ = segs.Prev()
		}
		if k == nil {
			k, _ = segs.First()
		}
	}
	for ; k != nil; k, _ = segs.Next() {
		c := events.Bucket(k).Cursor()
		for ek, v := c.Seek(seqKey(after + 1)); ek != nil; ek, v = c.Next() {
			if !fn(binary.BigEndian.Uint64(ek), v) {
				return nil
			}
		}
	}
	return nil
}

// BufferStatus describes the event buffer.
type BufferStatus struct {
	Events, Bytes       int64
	MaxEvents, MaxBytes int64
	Segments            int
	// OldestSeq and Head bound the buffered seqs (0 when empty).
	OldestSeq, Head uint64
	// OldestReceivedAt is when the oldest segment was opened (zero when empty).
	OldestReceivedAt time.Time
	// Dropped counts events removed by the age limit before every enabled configuration had
	// exported them, since the buffer was created.
	Dropped uint64
}

// BufferStatus reports the buffer's state.
func (s *Store) BufferStatus() BufferStatus {
	b := s.buf
	b.mu.RLock()
	defer b.mu.RUnlock()
	st := BufferStatus{
		Events: b.count, Bytes: b.bytes, MaxEvents: b.cfg.MaxEvents, MaxBytes: b.cfg.MaxBytes,
		Segments: len(b.segments), Head: b.next - 1, Dropped: b.dropped,
	}
	if len(b.segments) > 0 {
		st.OldestSeq, st.OldestReceivedAt = b.segments[0].First, b.segments[0].OpenedAt
	}
	return st
}
