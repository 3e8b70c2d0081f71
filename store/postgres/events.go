package postgres

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/auditexport/auditexport/store"
)

// The event buffer: chunks of events and their ids (chunks.go; the ids are deduplicated in
// each replica's memory, idindex.go), the event_log row (head, counts) and event_blocks, the trim
// units. Seqs are given in commit order because every write transaction holds the writers' lock
// from its start until its commit is durable (postgres.go): a transaction reads the head only
// once the one before it has committed, and no transaction can commit a seq at or below the head
// a later one read. So a reader that has exported up to seq N never later finds an event
// committed below N.
//
// Appends are gathered in the transaction and written when it ends (or before it reads events):
// one pipelined batch holds the chunks, the blocks and the counters, however many events the
// group commit holds.

// trimMaxEvents bounds the events one TrimEvents deletes, so that the writers' lock is never
// held for long: the next trim goes on where it stopped.
const trimMaxEvents = 262_144

// block is one row of event_blocks: a run of seqs, the buffer's trim unit.
type block struct {
	First, Last          uint64
	Events, Bytes        int64
	OpenedAt, LastAppend time.Time
}

// eventState is the buffer as one query reads it.
type eventState struct {
	now           time.Time // the database's clock
	head          uint64
	events, bytes int64
	blocks        int
	oldestFirst   uint64 // 0 when there is no block
	oldestOpened  time.Time
	newest        *block // nil when there is no block
}

// stateQuery reads the counters, the oldest block and the newest one in one round trip.
const stateQuery = `SELECT clock_timestamp(), l.head, l.events, l.bytes, (SELECT count(*) FROM event_blocks),
	o.first_seq, o.opened_at, n.first_seq, n.last_seq, n.events, n.bytes, n.opened_at, n.last_append_at
FROM event_log l
LEFT JOIN LATERAL (SELECT first_seq, opened_at FROM event_blocks ORDER BY first_seq LIMIT 1) o ON true
LEFT JOIN LATERAL (SELECT * FROM event_blocks ORDER BY first_seq DESC LIMIT 1) n ON true`

func readEventState(r *readTx) (eventState, error) {
	return scanEventState(r.tx.QueryRow(r.ctx, stateQuery))
}

// scanEventState reads the row of stateQuery.
func scanEventState(row pgx.Row) (eventState, error) {
	var st eventState
	var head, blocks int64
	var oFirst, nFirst, nLast, nEvents, nBytes *int64
	var oOpened, nOpened, nLastAppend *time.Time
	err := row.Scan(&st.now, &head, &st.events, &st.bytes, &blocks,
		&oFirst, &oOpened, &nFirst, &nLast, &nEvents, &nBytes, &nOpened, &nLastAppend)
	if err != nil {
		return st, fmt.Errorf("read the event buffer's state: %w", err)
	}
	st.head, st.blocks = uint64(head), int(blocks)
	if oFirst != nil {
		st.oldestFirst, st.oldestOpened = uint64(*oFirst), *oOpened
	}
	if nFirst != nil {
		st.newest = &block{First: uint64(*nFirst), Last: uint64(*nLast), Events: *nEvents, Bytes: *nBytes, OpenedAt: *nOpened, LastAppend: *nLastAppend}
	}
	return st, nil
}

// stats is the state as store.EventStats.
func (st *eventState) stats() store.EventStats {
	return store.EventStats{Head: st.head, Oldest: st.oldestFirst, Events: st.events, Bytes: st.bytes, Units: st.blocks, OldestAppendedAt: st.oldestOpened}
}

// eventWriter holds a write transaction's view of the buffer and its appends until the flush.
type eventWriter struct {
	w      *writeTx
	loaded bool
	eventState
	// tail holds, in order, the blocks this transaction changed since its last flush: the
	// newest committed one when appended to, then those it opened.
	tail       []block
	tailIsNext bool // tail[0] is a block opened here, not the newest committed one
	// ids and records are the appends not yet flushed, seqs head-len(ids)+1 … head.
	ids     []pgtype.UUID // binary on the wire: a uuid.UUID would go as its string
	records [][]byte
	chunks  chunkEncoder
	// appended holds the ids this transaction appended; known what lookUp found (true:
	// buffered).
	appended map[uuid.UUID]struct{}
	known    map[uuid.UUID]bool
	// encoded holds the chunks lookUp encoded, nil when none.
	encoded *encodedAhead
	// startHead and startOldest are the head and the oldest buffered seq (0: none) when the
	// transaction began, before its own appends and trims; written the chunks it wrote, for the
	// replica's id index once committed.
	startHead, startOldest uint64
	written                []idChunk
}

func newEventWriter(w *writeTx) *eventWriter {
	return &eventWriter{w: w, appended: map[uuid.UUID]struct{}{}}
}

// load reads the buffer's state once per transaction.
func (ew *eventWriter) load() error {
	if ew.loaded {
		return nil
	}
	st, err := readEventState(&ew.w.readTx)
	if err != nil {
		return err
	}
	ew.setState(st)
	return nil
}

// setState takes st as the buffer's state when the transaction began.
func (ew *eventWriter) setState(st eventState) {
	ew.eventState, ew.loaded, ew.startHead, ew.startOldest = st, true, st.head, st.oldestFirst
}

// EventStats describes the buffer as this transaction sees it.
func (r *readTx) EventStats() (store.EventStats, error) {
	if r.events == nil {
		st, err := readEventState(r)
		return st.stats(), err
	}
	ew := r.events
	if err := ew.load(); err != nil {
		return store.EventStats{}, err
	}
	st := ew.stats()
	for i, b := range ew.tail {
		if i > 0 || ew.tailIsNext {
			st.Units++
		}
		if st.Oldest == 0 {
			st.Oldest, st.OldestAppendedAt = b.First, b.OpenedAt
		}
	}
	return st, nil
}

// PrefetchEventIDs looks up which of ids are buffered in one round trip (lookup.go), for
// AppendEvent to answer from (see store.EventIDPrefetcher), and compresses records meanwhile.
func (w *writeTx) PrefetchEventIDs(ids []uuid.UUID, records [][]byte) error {
	if len(w.events.appended) == 0 {
		w.events.appended = make(map[uuid.UUID]struct{}, len(ids))
	}
	return w.events.lookUp(ids, records)
}

// buffered reports whether an event with id is buffered (committed before this transaction).
func (ew *eventWriter) buffered(id uuid.UUID) (bool, error) {
	if known, ok := ew.known[id]; ok {
		return known, nil
	}
	if err := ew.lookUp([]uuid.UUID{id}, nil); err != nil {
		return false, err
	}
	return ew.known[id], nil
}

// AppendEvent appends a record under the next seq unless its id is buffered or was appended in
// this transaction; see store.Tx.
func (w *writeTx) AppendEvent(id uuid.UUID, record []byte, at time.Time) (uint64, bool, error) {
	ew := w.events
	if err := ew.load(); err != nil {
		return 0, false, err
	}
	if _, dup := ew.appended[id]; dup {
		return 0, true, nil
	}
	if dup, err := ew.buffered(id); err != nil || dup {
		return 0, dup, err
	}
	b := ew.openBlock(at)
	ew.head++
	seq := ew.head
	b.Last, b.Events, b.Bytes, b.LastAppend = seq, b.Events+1, b.Bytes+int64(len(record)), at
	ew.ids, ew.records = append(ew.ids, pgtype.UUID{Bytes: id, Valid: true}), append(ew.records, record)
	ew.appended[id] = struct{}{}
	ew.events++
	ew.bytes += int64(len(record))
	return seq, false, nil
}

// openBlock returns the block the next event goes to, opening one when the newest is closed.
func (ew *eventWriter) openBlock(at time.Time) *block {
	if len(ew.tail) == 0 && ew.newest != nil {
		ew.tail, ew.tailIsNext = append(ew.tail, *ew.newest), false
	}
	if n := len(ew.tail); n > 0 {
		last := &ew.tail[n-1]
		if last.Events < ew.w.e.opts.BlockMaxEvents && at.Sub(last.OpenedAt) < ew.w.e.opts.BlockMaxAge {
			return last
		}
	} else {
		ew.tailIsNext = true
	}
	ew.tail = append(ew.tail, block{First: ew.head + 1, Last: ew.head, OpenedAt: at})
	return &ew.tail[len(ew.tail)-1]
}

// flush writes the appends gathered so far, in one round trip.
func (ew *eventWriter) flush() error {
	batch := ew.flushBatch()
	if batch == nil {
		return nil
	}
	if err := ew.w.tx.SendBatch(ew.w.ctx, batch).Close(); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	return nil
}

// flushBatch returns the statements that write the appends gathered so far (the chunks, the
// ids, the blocks changed and the counters), nil when there are none, and takes them as written:
// the batch must succeed, or the transaction fail.
func (ew *eventWriter) flushBatch() *pgx.Batch {
	if len(ew.tail) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	if n := len(ew.ids); n > 0 {
		first := ew.head - uint64(n) + 1
		var firsts, lasts, sizes []int64
		var hours []pgtype.Int8
		bounds := ew.chunkBounds(first)
		data := ew.encoded.take(ew.records, bounds)
		if data == nil {
			data = ew.chunks.encodeAll(ew.records, bounds)
		}
		for _, c := range bounds {
			firsts, lasts = append(firsts, int64(first+uint64(c.from))), append(lasts, int64(first+uint64(c.to)-1))
			ids := make([][16]byte, c.to-c.from)
			for i, id := range ew.ids[c.from:c.to] {
				ids[i] = id.Bytes
			}
			ew.written = append(ew.written, idChunk{last: first + uint64(c.to) - 1, ids: ids})
			hour, shared, size := store.ChunkHour(ew.records[c.from:c.to])
			hours, sizes = append(hours, pgtype.Int8{Int64: hour, Valid: shared}), append(sizes, size)
		}
		// Each chunk's ids are its slice of the group's, cut by the server.
		batch.Queue(`INSERT INTO event_chunks (first_seq, last_seq, data, ids, event_hour, bytes)
			SELECT f, l, d, ($4::uuid[])[f - $5 + 1 : l - $5 + 1], h, b
			FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $6::bigint[], $7::bigint[]) AS c (f, l, d, h, b)`,
			firsts, lasts, data, ew.ids, int64(first), hours, sizes)
	}
	for _, b := range ew.tail {
		batch.Queue(`INSERT INTO event_blocks (first_seq, last_seq, events, bytes, opened_at, last_append_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (first_seq) DO UPDATE SET last_seq = EXCLUDED.last_seq, events = EXCLUDED.events, bytes = EXCLUDED.bytes,
				last_append_at = EXCLUDED.last_append_at`,
			int64(b.First), int64(b.Last), b.Events, b.Bytes, b.OpenedAt, b.LastAppend)
	}
	batch.Queue("UPDATE event_log SET head = $1, events = $2, bytes = $3", int64(ew.head), ew.events, ew.bytes)
	// What is flushed is now the transaction's committed-to-be state.
	for i := range ew.tail {
		if i > 0 || ew.tailIsNext {
			ew.blocks++
		}
	}
	if ew.oldestFirst == 0 {
		ew.oldestFirst, ew.oldestOpened = ew.tail[0].First, ew.tail[0].OpenedAt
	}
	newest := ew.tail[len(ew.tail)-1]
	ew.newest, ew.tail, ew.tailIsNext = &newest, nil, false
	ew.ids, ew.records = nil, nil // the batch holds them
	return batch
}

// TrimEvents removes whole blocks from the oldest on; see store.Tx. A transaction that appended
// trims nothing, and one trim removes at most trimMaxEvents events (whole blocks, at least one).
func (w *writeTx) TrimEvents(p store.TrimPolicy) (store.TrimResult, error) {
	ew := w.events
	var res store.TrimResult
	if len(ew.tail) > 0 || len(ew.appended) > 0 {
		return res, nil
	}
	if err := ew.load(); err != nil {
		return res, err
	}
	rows, err := w.tx.Query(w.ctx, "SELECT first_seq, last_seq, events, bytes, opened_at, last_append_at FROM event_blocks ORDER BY first_seq")
	if err != nil {
		return res, err
	}
	blocks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[block])
	if err != nil {
		return res, err
	}
	var removed []block
	var bytes int64
	for _, b := range blocks {
		exported := b.Last <= p.ExportedThrough
		if !(exported && !b.LastAppend.After(p.ExportedBefore)) && b.LastAppend.After(p.DropBefore) {
			break
		}
		if len(removed) > 0 && res.Events+b.Events > trimMaxEvents {
			break
		}
		if !exported {
			res.Dropped += int64(b.Last - max(p.ExportedThrough, b.First-1))
		}
		removed = append(removed, b)
		res.Events += b.Events
		bytes += b.Bytes
	}
	if len(removed) == 0 {
		return res, nil
	}
	last := removed[len(removed)-1]
	batch := &pgx.Batch{}
	batch.Queue("DELETE FROM event_chunks WHERE last_seq <= $1", int64(last.Last))
	batch.Queue("DELETE FROM event_blocks WHERE first_seq <= $1", int64(last.First))
	batch.Queue("UPDATE event_log SET events = events - $1, bytes = bytes - $2", res.Events, bytes)
	if err := w.tx.SendBatch(w.ctx, batch).Close(); err != nil {
		return store.TrimResult{}, fmt.Errorf("trim the event buffer: %w", err)
	}
	res.Segments = len(removed)
	ew.events, ew.bytes, ew.blocks = ew.events-res.Events, ew.bytes-bytes, ew.blocks-len(removed)
	ew.oldestFirst, ew.oldestOpened = 0, time.Time{}
	if len(removed) < len(blocks) {
		next := blocks[len(removed)]
		ew.oldestFirst, ew.oldestOpened = next.First, next.OpenedAt
	} else {
		ew.newest = nil
	}
	ew.known = nil // ids it knew as buffered may be gone
	return res, nil
}

// EventsAppendedSince returns the first seq of the oldest block last appended to at or after t.
func (r *readTx) EventsAppendedSince(t time.Time) (uint64, bool, error) {
	if err := r.flushEvents(); err != nil {
		return 0, false, err
	}
	var first int64
	err := r.tx.QueryRow(r.ctx, "SELECT first_seq FROM event_blocks WHERE last_append_at >= $1 ORDER BY first_seq LIMIT 1", t).Scan(&first)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return uint64(first), err == nil, err
}

// flushEvents writes a write transaction's pending appends, so its reads of events see them.
func (r *readTx) flushEvents() error {
	if r.events == nil {
		return nil
	}
	return r.events.flush()
}
