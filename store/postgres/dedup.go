package postgres

import (
	"errors"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
)

// Optimistic deduplication. A group commit of ingested batches looked its ids up before
// appending them (one index probe each), then inserted them (another): profiled, the lookup was a
// fifth of the database's work for a group, and almost always found nothing, since clients resend
// a batch only after a failure. So a group commit first runs optimistically: it takes every id as
// new, and event_ids' unique index checks them as they are inserted (before the writers' lock:
// ahead.go). Should one be buffered after all, the insert fails, the whole transaction with it
// (its appends, its seqs, its answers), and it runs again at once looking its ids up first, as
// do the next lookupsAfterConflict group commits: clients resending after an outage resend
// several batches. What is stored and answered is exactly what a transaction that looked up
// first would have stored and answered.

// lookupsAfterConflict is how many group commits look their ids up after an optimistic one met
// a duplicate.
const lookupsAfterConflict = 64

// dedupMode chooses between optimistic group commits and those that look their ids up first.
type dedupMode struct {
	lookups atomic.Int64 // group commits still to look up first
}

// optimistic reports whether a group commit may run optimistically.
func (d *dedupMode) optimistic() bool {
	if d.lookups.Load() <= 0 {
		return true
	}
	d.lookups.Add(-1)
	return false
}

// conflict records that an optimistic group commit met a buffered id.
func (d *dedupMode) conflict() { d.lookups.Store(lookupsAfterConflict) }

// idConflict reports whether err is event_ids' unique index refusing an id already buffered.
func idConflict(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505" && pg.ConstraintName == "event_ids_pkey"
}
