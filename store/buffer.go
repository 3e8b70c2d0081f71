package store

import (
	"cmp"
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event"
)

// The event buffer's rules: batches are appended all or nothing within the buffer's limits,
// several at once in one transaction (group commit), and read back in seq order in chunks.
// Engines store the events, number them and deduplicate their ids (engine.go).

// ErrBufferFull means the batch does not fit in the buffer's limits; nothing of it was stored.
var ErrBufferFull = errors.New("the event buffer is full")

// BufferConfig bounds the event buffer. Zero fields take the defaults shown.
type BufferConfig struct {
	// MaxEvents and MaxBytes bound what the buffer holds; a batch that would pass either is
	// refused whole. Defaults 5,000,000 events and 4 GiB of encoded events.
	MaxEvents int64
	MaxBytes  int64
	// MinRetention keeps exported events at least this long after receipt; ids stay
	// deduplicated as long as their event is buffered. Default 1h.
	MinRetention time.Duration
	// MaxAge drops events this long after receipt even when not every enabled configuration has
	// exported them; they are counted, logged and shown as dropped. Default 30 days (720h).
	MaxAge time.Duration
	// TrimInterval is how often the buffer looks for events to remove. Default 1m.
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
	c.MinRetention = cmp.Or(max(c.MinRetention, 0), time.Hour)
	c.MaxAge = cmp.Or(max(c.MaxAge, 0), 30*24*time.Hour)
	c.TrimInterval = cmp.Or(max(c.TrimInterval, 0), time.Minute)
	c.MaxGroupEvents = cmp.Or(max(c.MaxGroupEvents, 0), 50_000)
}

// AppendResult is the outcome of one batch.
type AppendResult struct {
	Accepted   int
	Duplicates int
	// First and Last are the seqs given to the accepted events (0 when none was).
	First, Last uint64
}

type appendRequest struct {
	ctx   context.Context
	batch *event.Batch
	done  chan appendReply
}

type appendReply struct {
	result AppendResult
	err    error
}

// AppendEvents stores a batch durably; see EventBuffer. Batches arriving meanwhile share one
// transaction (group commit).
func (s *Store) AppendEvents(ctx context.Context, batch *event.Batch) (AppendResult, error) {
	req := appendRequest{ctx: ctx, batch: batch, done: make(chan appendReply, 1)}
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

// startCommitters starts the group committers: one, or as many as the engine runs at once
// (GroupCommitPipeliner); committerDone is closed once all have stopped. A lone committer also
// takes the writes of updateInGroup.
func (s *Store) startCommitters() {
	n := 1
	if p, ok := s.engine.(GroupCommitPipeliner); ok {
		n = max(n, p.ConcurrentGroupCommits())
	}
	if n == 1 { // otherwise updateInGroup writes in transactions of its own
		s.writes = make(chan writeRequest)
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(s.commitLoop)
	}
	go func() {
		wg.Wait()
		close(s.committerDone)
	}()
}

// commitLoop is a group committer: it takes one waiting batch or write, gathers every other
// one already waiting, and commits them in one transaction.
func (s *Store) commitLoop() {
	for {
		var g group
		select {
		case req := <-s.appends:
			g.addAppend(req)
		case w := <-s.writes:
			g.writes = append(g.writes, w)
		case <-s.closing:
			return
		}
		// The goroutines ready to run go first: the requests about to hand their batches over
		// (decoded meanwhile) join this group instead of waiting for the next one, each commit
		// of which syncs the file twice. In the end-to-end benchmark (in process) this cut the group
		// commits from about 800 to 480 for 1,000 batches; when nothing else is ready it returns
		// at once.
		runtime.Gosched()
	gather:
		for g.events < s.buffer.MaxGroupEvents {
			select {
			case req := <-s.appends:
				g.addAppend(req)
			case w := <-s.writes:
				g.writes = append(g.writes, w)
			default:
				break gather
			}
		}
		s.commitGroup(g)
	}
}

// group is what one group commit writes: batches to append, and other writes.
type group struct {
	appends []appendRequest
	writes  []writeRequest
	events  int
}

func (g *group) addAppend(req appendRequest) {
	g.appends = append(g.appends, req)
	g.events += req.batch.Len()
}

// commitGroup commits g in one transaction. The writes run first, each as it would alone; one
// that fails is answered with its error and the transaction is done again without it, and
// batches that fail it leave the writes to be done again alone, so that nothing fails another.
func (s *Store) commitGroup(g group) {
	g.writes = s.dropEnded(g.writes)
	if len(g.appends) == 0 && len(g.writes) == 0 {
		return
	}
	replies := make([]appendReply, len(g.appends))
	var ctx context.Context // the transaction is not tied to any one caller: it commits for all
	if len(g.appends) > 0 {
		ctx = g.appends[0].ctx
	} else {
		ctx = g.writes[0].ctx
	}
	for {
		failed, failure := -1, error(nil)
		err := s.engine.Update(context.WithoutCancel(ctx), func(tx Tx) error {
			failed = -1 // an engine may run this again after a failure of its own
			for i, w := range g.writes {
				if err := w.fn(tx); err != nil {
					failed, failure = i, err
					return err
				}
			}
			return s.appendGroup(tx, g.appends, replies)
		})
		if failed >= 0 {
			g.writes[failed].done <- failure
			g.writes = slices.Delete(g.writes, failed, failed+1)
			if len(g.appends) > 0 || len(g.writes) > 0 {
				continue
			}
			return
		}
		if err != nil && len(g.appends) > 0 && len(g.writes) > 0 {
			// The batches failed the transaction: the writes are done again alone, so that a
			// client's batch fails no export.
			s.replyAppends(g.appends, replies, err)
			g.appends, replies = nil, nil
			continue
		}
		for _, w := range g.writes {
			w.done <- err
		}
		s.replyAppends(g.appends, replies, err)
		return
	}
}

// appendGroup appends the group's batches in tx, each one's outcome in replies.
func (s *Store) appendGroup(tx Tx, appends []appendRequest, replies []appendReply) error {
	if len(appends) == 0 {
		return nil
	}
	if p, ok := tx.(EventIDPrefetcher); ok {
		if err := p.PrefetchEventIDs(groupEvents(appends)); err != nil {
			return err
		}
	}
	stats, err := tx.EventStats()
	if err != nil {
		return err
	}
	now := s.txNow(tx)
	clear(replies)
	for i, req := range appends {
		if replies[i].result, replies[i].err = s.appendBatch(tx, &stats, now, req.batch); replies[i].err != nil && !errors.Is(replies[i].err, ErrBufferFull) {
			return replies[i].err // fails the whole transaction: nothing is stored
		}
	}
	return nil
}

// replyAppends answers each batch of a group commit that ended with err.
func (s *Store) replyAppends(appends []appendRequest, replies []appendReply, err error) {
	for i, req := range appends {
		if err != nil {
			replies[i] = appendReply{err: err}
		}
		if replies[i].err == nil {
			s.metrics.accepted.Add(float64(replies[i].result.Accepted))
			s.metrics.duplicates.Add(float64(replies[i].result.Duplicates))
		}
		req.done <- replies[i]
	}
	if len(appends) > 0 {
		s.metrics.groupSize.Observe(float64(len(appends)))
	}
}

// groupEvents lists the ids and records of a group's events (a corrupt record is left out:
// appendBatch refuses it).
func groupEvents(group []appendRequest) ([]uuid.UUID, [][]byte) {
	n := 0
	for _, req := range group {
		n += req.batch.Len()
	}
	ids, records := make([]uuid.UUID, 0, n), make([][]byte, 0, n)
	for _, req := range group {
		for i := range req.batch.Len() {
			record := req.batch.Record(i)
			if id, err := event.IDOf(record); err == nil {
				ids, records = append(ids, id), append(records, record)
			}
		}
	}
	return ids, records
}

// appendBatch appends a batch all or nothing within tx; stats counts what tx holds so far.
func (s *Store) appendBatch(tx Tx, stats *EventStats, now time.Time, batch *event.Batch) (AppendResult, error) {
	if stats.Events+int64(batch.Len()) > s.buffer.MaxEvents || stats.Bytes+int64(len(batch.Data)) > s.buffer.MaxBytes {
		return AppendResult{}, ErrBufferFull
	}
	var r AppendResult
	for i := range batch.Len() {
		record := batch.Record(i)
		id, err := event.IDOf(record)
		if err != nil {
			return AppendResult{}, err
		}
		seq, dup, err := tx.AppendEvent(id, record, now)
		if err != nil {
			return AppendResult{}, err
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
		stats.Events++
		stats.Bytes += int64(len(record))
	}
	return r, nil
}

// seqBeforeSearchLimit bounds the events seqBeforeReceived reads.
const seqBeforeSearchLimit = 1 << 16

// seqBeforeReceived is the seq before the first buffered event received at or after t, or head
// when there is none. The engine says from where events were appended at or after t; from
// there events are searched by receivedTimestamp, for at most seqBeforeSearchLimit of them
// (when clients set timestamps earlier than receipt, the search ends there rather than read the
// whole buffer).
func seqBeforeReceived(tx ReadTx, t time.Time, head uint64) (uint64, error) {
	from, found, err := tx.EventsAppendedSince(t)
	if err != nil || !found {
		return head, err
	}
	seq, micros, read := head, t.UnixMicro(), 0
	var parseErr error
	err = tx.ScanEvents(from-1, func(at uint64, rec []byte) bool {
		var r event.Record
		if parseErr = r.Parse(rec); parseErr != nil {
			return false
		}
		if r.RecvMicros >= micros {
			seq = at - 1
			return false
		}
		seq = at
		read++
		return read < seqBeforeSearchLimit
	})
	return seq, errors.Join(err, parseErr)
}

// BufferStatus describes the event buffer.
type BufferStatus struct {
	Events, Bytes       int64
	MaxEvents, MaxBytes int64
	// Segments are the engine's trim units (0 for an engine without them).
	Segments int
	// OldestSeq and Head bound the buffered seqs (0 when empty).
	OldestSeq, Head uint64
	// OldestReceivedAt is when the oldest buffered event was appended (zero when empty).
	OldestReceivedAt time.Time
	// Dropped counts events removed by the age limit before every enabled configuration had
	// exported them, since the buffer was created.
	Dropped uint64
}

// Pending is how many buffered events come after cursor: those a configuration at that cursor
// has still to export (events already removed from the buffer are not pending).
func (b BufferStatus) Pending(cursor uint64) int64 {
	if b.Events == 0 {
		return 0
	}
	return int64(b.Head - min(max(cursor, b.OldestSeq-1), b.Head))
}

// BufferStatus reports the buffer's state.
func (s *Store) BufferStatus(ctx context.Context) (BufferStatus, error) {
	var st BufferStatus
	err := s.view(ctx, func(tx ReadTx) error {
		stats, err := tx.EventStats()
		if err != nil {
			return err
		}
		dropped, err := metaCounter(tx, metaDroppedEvents)
		st = BufferStatus{
			Events: stats.Events, Bytes: stats.Bytes, MaxEvents: s.buffer.MaxEvents, MaxBytes: s.buffer.MaxBytes,
			Segments: stats.Units, OldestSeq: stats.Oldest, Head: stats.Head, OldestReceivedAt: stats.OldestAppendedAt,
			Dropped: dropped,
		}
		return err
	})
	return st, err
}

// PendingEvents is how many buffered events come after cursor.
func (s *Store) PendingEvents(ctx context.Context, cursor uint64) (int64, error) {
	st, err := s.BufferStatus(ctx)
	return st.Pending(cursor), err
}
