package postgres

import (
	"bytes"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Group commits in a pipeline. A group commit's largest share of the database's work is
// inserting its ids into event_ids (one index entry each), and of the replica's, compressing its
// chunks; neither needs the writers' lock. So an optimistic group commit (dedup.go) begins READ
// COMMITTED and sends, in one round trip, the insert of its ids, LOCK TABLE and the buffer's
// state: the server inserts the ids while another group commit holds the lock (the engine runs
// two at once, store.GroupCommitPipeliner), and the replica compresses the group's chunks while it
// waits for the answer. Under the lock it then numbers the events, writes the chunks and
// commits. The statements after LOCK see every commit before it (READ COMMITTED takes a snapshot
// per statement), so seqs are given in commit order as in any write transaction.
//
// An id inserted ahead that is already buffered, or being inserted by another group commit,
// makes the insert fail (or wait for the other to end, then fail): the transaction is rolled back
// and runs again looking its ids up first, as dedup.go says. Group commits insert their ids in
// one order (sorted), so two of them never deadlock; a transaction that looks its ids up holds
// the lock while it inserts them, so should one of its ids be in another's insert ahead, that
// other waiting for the lock, they deadlock: PostgreSQL ends one after deadlock_timeout (1 s),
// and it runs again. That takes a client resending a batch while a replica still commits it.

// insertIDs adds ids to the dedup index.
const insertIDs = "INSERT INTO event_ids (id) SELECT * FROM unnest($1::uuid[])"

// insertAhead inserts ids into event_ids, then takes the writers' lock, then sends batch (the
// buffer's state, when queued), in one round trip, when the transaction has not begun (it then
// begins it with beginGroupCommit), and meanwhile compresses records (ids[i]'s in records[i]) as
// the chunks they will be; it reports whether it did. Ids that end up not appended (a batch
// refused as over the buffer's limits) are deleted again before COMMIT (commitBatch).
func (ew *eventWriter) insertAhead(batch *pgx.Batch, ids []uuid.UUID, records [][]byte) (bool, error) {
	if !ew.w.tx.beginInstead(beginGroupCommit) {
		return false, nil
	}
	ew.ahead = make(map[uuid.UUID]struct{}, len(ids))
	wire := make([]pgtype.UUID, 0, len(ids))
	for _, id := range ids {
		if _, dup := ew.ahead[id]; !dup {
			ew.ahead[id] = struct{}{}
			wire = append(wire, pgtype.UUID{Bytes: id, Valid: true})
		}
	}
	// In one order for every group commit, so that two inserting some of the same ids wait for
	// one another instead of deadlocking.
	slices.SortFunc(wire, func(a, b pgtype.UUID) int { return bytes.Compare(a.Bytes[:], b.Bytes[:]) })
	ahead := &pgx.Batch{}
	ahead.Queue(insertIDs, wire)
	ahead.Queue(lockWriters)
	ahead.QueuedQueries = append(ahead.QueuedQueries, batch.QueuedQueries...)
	br := ew.w.tx.SendBatch(ew.w.ctx, ahead)
	if len(wire) == len(records) { // no id twice: every record is appended, unless refused
		ew.encoded = ew.encodeAhead(records)
	}
	return true, br.Close()
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

// notAhead returns the pending appends' ids that insertAhead did not insert.
func (ew *eventWriter) notAhead() []pgtype.UUID {
	if len(ew.ahead) == 0 {
		return ew.ids
	}
	var fresh []pgtype.UUID
	for _, id := range ew.ids {
		if _, ok := ew.ahead[id.Bytes]; !ok {
			fresh = append(fresh, id)
		}
	}
	return fresh
}

// commitBatch is flushBatch, with the deletion of the ids inserted ahead but never appended.
func (ew *eventWriter) commitBatch() *pgx.Batch {
	batch := ew.flushBatch()
	var unused []pgtype.UUID
	for id := range ew.ahead {
		if _, ok := ew.appended[id]; !ok {
			unused = append(unused, pgtype.UUID{Bytes: id, Valid: true})
		}
	}
	if len(unused) > 0 {
		if batch == nil {
			batch = &pgx.Batch{}
		}
		batch.Queue("DELETE FROM event_ids WHERE id = ANY($1)", unused)
	}
	return batch
}
