package store

import "context"

// writeRequest is the work of a write transaction, waiting for the next group commit.
type writeRequest struct {
	ctx  context.Context
	fn   func(Tx) error
	done chan error
}

// updateInGroup is update, but done in the next group commit's transaction, beside the batches
// appended, when the engine runs one group commit at a time (bbolt). In a transaction of its own
// a write waits for the group commit under way, syncs the file twice itself, and holds the next
// group meanwhile: an export's bookkeeping (its job, attempt and tasks) is a few writes per job,
// 110 commits beside 779 group commits in the end-to-end benchmark, each costing ingestion
// as much as a group commit.
//
// fn may run more than once, as in an engine that retries its transactions: it must start from
// what it reads in tx, whatever it was left with by a run before.
func (s *Store) updateInGroup(ctx context.Context, fn func(Tx) error) error {
	if s.writes == nil {
		return s.update(ctx, fn)
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	w := writeRequest{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- w:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once taken, the write is committed or refused: wait for the answer even if the caller has
	// gone, so that what was stored is never reported as failed.
	return <-w.done
}

// dropEnded answers the writes whose caller has gone before their group began, as update
// would have, and returns the others.
func (s *Store) dropEnded(writes []writeRequest) []writeRequest {
	kept := writes[:0]
	for _, w := range writes {
		if err := w.ctx.Err(); err != nil {
			w.done <- err
			continue
		}
		kept = append(kept, w)
	}
	return kept
}
