package exporter

import (
	"context"
	"os"

	"golang.org/x/sync/semaphore"
)

// A turn is one job's claim on one of the exporter's Workers slots, held while the job uses the
// CPU. Why not a slot for the whole attempt: an attempt also waits on its destination, for as
// long as the destination takes, and a slot held meanwhile is one a healthy configuration waits
// for; two hung destinations once stopped every export. So a job gives its turn back whenever it
// waits on an upload, and asks for it again (in line behind the jobs already waiting) before it
// encodes on; it gives it back for good once encoding is over. The time a job holds a turn is
// thus bounded by the CPU work of its events, never by a destination.
//
// A turn is used by one goroutine at a time: the job's writer while encoding goes on, its own
// goroutine after.
type turn struct {
	slots *semaphore.Weighted
	held  bool
}

// acquire waits for a slot, unless the turn holds one already.
func (t *turn) acquire(ctx context.Context) error {
	if t.held {
		return nil
	}
	if err := t.slots.Acquire(ctx, 1); err != nil {
		return err
	}
	t.held = true
	return nil
}

// release gives the slot back, if the turn holds one.
func (t *turn) release() {
	if t.held {
		t.held = false
		t.slots.Release(1)
	}
}

// handOn passes a finished file to the job's uploader. When the uploader is still busy with the
// files before, the job is waiting on its destination: it does so without its turn, and takes
// it back before encoding on. The file is removed if ctx ends first.
func handOn(ctx context.Context, t *turn, uploads chan<- EncodedFile, f EncodedFile) error {
	select {
	case uploads <- f:
		return nil
	default:
	}
	t.release()
	select {
	case uploads <- f:
	case <-ctx.Done():
		os.Remove(f.Path)
		return ctx.Err()
	}
	return t.acquire(ctx)
}
