package postgres

import (
	"cmp"
	"math"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// A group commit's look-up of its ids (idindex.go) is one round trip: the writers' lock (with
// BEGIN, when the transaction has not begun), the buffer's state, the candidates' chunks read
// back, the event at the seq the index synced through (has the database gone back?), and the
// chunks other replicas committed since this one last looked. Meanwhile the
// replica compresses the group's records as the chunks they will be, so that under the lock only
// the chunks' writes and COMMIT are left; the engine runs two group commits at once
// (store.GroupCommitPipeliner), one of them waiting for the lock while the other holds it.

// idAtSeq is the id of the event at seq $1, if buffered.
const idAtSeq = `SELECT ids[$1 - first_seq + 1] FROM
	(SELECT first_seq, ids FROM event_chunks WHERE last_seq >= $1::bigint ORDER BY last_seq LIMIT 1) c WHERE first_seq <= $1::bigint`

// candidateChunks reads the chunks $1 (last seqs), as syncChunks does.
const candidateChunks = "SELECT last_seq, ids FROM event_chunks WHERE last_seq = ANY($1::bigint[])"

// lookUp finds which of ids are buffered, into known; records (nil: none) are the events
// of ids, compressed while the answer comes.
func (ew *eventWriter) lookUp(ids []uuid.UUID, records [][]byte) error {
	index := &ew.w.e.ids
	if ew.known == nil {
		ew.known = make(map[uuid.UUID]bool, len(ids))
	}
	for _, id := range ids {
		if _, ok := ew.known[id]; !ok {
			ew.known[id] = false
		}
	}
	if index.stale(ew.w.e.opts.IDCatchUpAfter) {
		if err := ew.catchUp(index); err != nil {
			return err
		}
	}
	at, chunks := index.candidates(ids)
	batch := &pgx.Batch{}
	if !ew.loaded {
		batch.Queue(stateQuery).QueryRow(func(row pgx.Row) error {
			st, err := scanEventState(row)
			if err == nil {
				ew.setState(st)
			}
			return err
		})
	}
	var candidates []idChunk
	if len(chunks) > 0 {
		batch.Queue(candidateChunks, chunks).Query(func(rows pgx.Rows) (err error) {
			candidates, err = scanIDChunks(rows)
			return err
		})
	}
	// Up to the head before this transaction's appends: later chunks are its own, not committed.
	upTo := int64(ew.startHead)
	if !ew.loaded {
		upTo = math.MaxInt64 // nothing appended yet: every chunk it sees is committed
	}
	var atSynced pgtype.UUID // the event at seq at.seq, if buffered
	if at.anchored {
		batch.Queue(idAtSeq, int64(at.seq)).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				if err := rows.Scan(&atSynced); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	}
	var committed []idChunk
	batch.Queue(syncChunks, int64(at.seq), upTo).Query(func(rows pgx.Rows) (err error) {
		committed, err = scanIDChunks(rows)
		return err
	})
	br := ew.w.tx.SendBatch(ew.w.ctx, batch)
	if records != nil {
		ew.encoded = ew.encodeAhead(records)
	}
	if err := br.Close(); err != nil {
		return err
	}
	if wentBack(at, ew.startHead, ew.startOldest, atSynced) {
		// The database went back (idindex.go): read every buffered chunk's ids again.
		index.forget()
		return ew.lookUp(ids, nil)
	}
	for _, c := range slices.Concat(candidates, committed) {
		for _, id := range c.ids {
			if _, ok := ew.known[id]; ok {
				ew.known[id] = true
			}
		}
	}
	index.add(at.seq, committed, ew.startHead)
	// What was committed, not this transaction's trims, which may yet roll back.
	index.expire(cmp.Or(ew.startOldest, ew.startHead+1), ew.startHead)
	return nil
}

// wentBack reports whether the database is not the one the index synced with, given its head,
// its oldest buffered seq (0: none) and the event at the seq the index synced through: its head is
// below the index's, or that event is another id, or is missing though not trimmed.
func wentBack(at syncPoint, head, oldest uint64, atSynced pgtype.UUID) bool {
	switch {
	case head < at.seq:
		return true
	case !at.anchored:
		return false
	case atSynced.Valid:
		return atSynced.Bytes != at.anchor
	default:
		return oldest != 0 && at.seq >= oldest
	}
}

// standing reads the head, the oldest buffered seq and the event at seq $1 in one statement.
const standing = `SELECT l.head, coalesce((SELECT first_seq FROM event_blocks ORDER BY first_seq LIMIT 1), 0), (` + idAtSeq + `)
	FROM event_log l`

// catchUp reads the chunks committed since the index last looked, a page at a time, each page
// a statement of its own outside the transaction (which must not have begun: it would hold the
// writers' lock meanwhile); first, should the database have gone back, it empties the index, to
// read every buffered chunk so. A transaction that has begun skips it.
func (ew *eventWriter) catchUp(index *idIndex) error {
	at := index.position()
	rows, begun, err := ew.w.tx.queryBeforeBegin(ew.w.ctx, standing, int64(at.seq))
	if begun || err != nil {
		return err
	}
	var head, oldest int64
	var atSynced pgtype.UUID
	if _, err := pgx.ForEachRow(rows, []any{&head, &oldest, &atSynced}, func() error { return nil }); err != nil {
		return err
	}
	if wentBack(at, uint64(head), uint64(oldest), atSynced) {
		index.forget()
	}
	return index.syncPages(math.MaxInt64, func(sql string, args ...any) (pgx.Rows, error) {
		rows, _, err := ew.w.tx.queryBeforeBegin(ew.w.ctx, sql, args...)
		return rows, err
	})
}

// encodedAhead is chunks compressed before the transaction numbered their events.
type encodedAhead struct {
	records [][]byte
	bounds  []span
	data    [][]byte
}

// encodeAhead compresses records as the chunks they will be if they are all appended, none
// opening a block.
func (ew *eventWriter) encodeAhead(records [][]byte) *encodedAhead {
	bounds := cutChunks(records, func(int) bool { return false })
	return &encodedAhead{records: records, bounds: bounds, data: ew.chunks.encodeAll(records, bounds)}
}

// take returns the chunks encoded ahead when records, cut at bounds, are exactly those (the
// same records in the same order, cut the same), and forgets them; nil otherwise.
func (e *encodedAhead) take(records [][]byte, bounds []span) [][]byte {
	if e == nil || len(records) != len(e.records) || !slices.Equal(bounds, e.bounds) {
		return nil
	}
	for i, r := range records {
		if len(r) != len(e.records[i]) || (len(r) > 0 && &r[0] != &e.records[i][0]) {
			return nil
		}
	}
	data := e.data
	*e = encodedAhead{}
	return data
}
