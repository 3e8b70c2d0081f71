package exporter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/store"
)

// Each attempt holds its job through a lease in the store, renewed while it runs, so that on a
// store shared by replicas one process exports a configuration at a time and a process that
// died is replaced once its lease runs out. The store fences: an attempt that lost its lease can
// change nothing, and keepLease stops its work.

// errLeaseLost ends an attempt whose job another process took over.
var errLeaseLost = fmt.Errorf("export attempt stopped: %w", store.ErrLeaseLost)

// processOwner names this process in leases: host, pid and a random part, so a restarted
// process with the same pid is another owner.
func processOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8])
}

// keepLease renews the attempt's lease every third of its TTL until the returned stop is
// called. When a renewal finds the lease lost, the returned context is cancelled with
// errLeaseLost as its cause.
func (x *Exporter) keepLease(ctx context.Context, a store.Attempt) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		ticker := time.NewTicker(x.cfg.LeaseTTL / 3)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			_, err := x.store.RenewLease(ctx, a, x.cfg.LeaseTTL)
			switch {
			case errors.Is(err, store.ErrLeaseLost):
				x.log.Warn("export attempt lost its lease to another process; stopping it", "job_id", a.JobID, "attempt", a.Number)
				cancel(errLeaseLost)
				return
			case err != nil && ctx.Err() == nil:
				// The store is unreachable: keep trying; if the lease runs out meanwhile, the
				// fencing refuses this attempt's writes.
				x.log.Warn("renew export lease", "job_id", a.JobID, "error", err)
			}
		}
	}()
	return ctx, func() {
		close(done)
		cancel(nil)
	}
}
