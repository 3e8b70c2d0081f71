package store

import (
	"context"
	"fmt"
	"time"
)

// Attempts at a job: started, renewed, ended, each fenced by the attempt number and owner
// (see Jobs in contract.go).

// updateAttempt applies change to the attempt's job, provided the attempt still holds it.
func (s *Store) updateAttempt(ctx context.Context, a Attempt, change func(tx Tx, j *ExportJob) error) (ExportJob, error) {
	return s.updateJob(ctx, a.JobID, func(tx Tx, j *ExportJob) error {
		if j.Status != JobRunning || j.Attempts != a.Number || j.Owner != a.Owner {
			return ErrLeaseLost
		}
		return change(tx, j)
	})
}

// StartAttempt starts an attempt at a job for owner, leased for ttl; see the contract.
func (s *Store) StartAttempt(ctx context.Context, id, owner string, ttl time.Duration) (ExportJob, error) {
	return s.updateJob(ctx, id, func(tx Tx, j *ExportJob) error {
		if j.Finished() {
			return fmt.Errorf("export job %s already succeeded", id)
		}
		now := s.txNow(tx).UTC()
		if j.Status == JobRunning && j.Owner != owner && now.Before(j.LeaseUntil) {
			return ErrLeaseHeld
		}
		j.Status, j.Attempts, j.StartedAt, j.EndedAt = JobRunning, j.Attempts+1, now, time.Time{}
		j.NextAttemptAt, j.Owner, j.LeaseUntil = time.Time{}, owner, now.Add(ttl)
		return nil
	})
}

// RenewLease extends the attempt's lease to ttl from now.
func (s *Store) RenewLease(ctx context.Context, a Attempt, ttl time.Duration) (ExportJob, error) {
	return s.updateAttempt(ctx, a, func(tx Tx, j *ExportJob) error {
		j.LeaseUntil = s.txNow(tx).UTC().Add(ttl)
		return nil
	})
}

// FailAttempt records a failed attempt: the reason, and when to try again.
func (s *Store) FailAttempt(ctx context.Context, a Attempt, reason string, next time.Time) (ExportJob, error) {
	return s.updateAttempt(ctx, a, func(tx Tx, j *ExportJob) error {
		j.Status, j.FailureReason, j.NextAttemptAt, j.EndedAt = JobFailed, reason, next.UTC(), s.txNow(tx).UTC()
		j.Owner, j.LeaseUntil = "", time.Time{}
		return nil
	})
}

// InterruptAttempt puts a job back to PENDING after its attempt was cut short by a shutdown;
// it resumes at the next start and the interruption does not count as a failure.
func (s *Store) InterruptAttempt(ctx context.Context, a Attempt) (ExportJob, error) {
	return s.updateAttempt(ctx, a, func(_ Tx, j *ExportJob) error {
		j.Status, j.Attempts, j.Owner, j.LeaseUntil = JobPending, max(j.Attempts-1, 0), "", time.Time{}
		return nil
	})
}

// releaseLeases puts RUNNING jobs back to PENDING: an exclusive engine's running jobs belonged
// to an earlier run of this process, which is gone.
func (s *Store) releaseLeases(ctx context.Context) error {
	return s.update(ctx, func(tx Tx) error {
		var running []ExportJob
		if err := tx.UnfinishedJobs(func(j ExportJob) bool {
			if j.Status == JobRunning {
				running = append(running, j)
			}
			return true
		}); err != nil {
			return err
		}
		for _, j := range running {
			j.Status, j.Owner, j.LeaseUntil = JobPending, "", time.Time{}
			if err := tx.PutJob(j); err != nil {
				return err
			}
		}
		return nil
	})
}

// CompleteJob marks a job SUCCEEDED and, in the same transaction, moves the configuration's
// cursor to the end of the job's range and records the destination as reachable. Only this
// transaction advances a cursor, so a job that fails or is cut short is simply done again.
//
// Events of the range that had left the buffer (ExportJob.Skipped) are counted on the job and
// the configuration, never passed over silently. digest, when the job wrote one, becomes the
// configuration's LastDigest, to which the next job's digest links.
func (s *Store) CompleteJob(ctx context.Context, a Attempt, events, objects, bytes int64, digest DigestRef) (ExportJob, error) {
	return s.updateAttempt(ctx, a, func(tx Tx, j *ExportJob) error {
		now := s.txNow(tx).UTC()
		j.Status, j.EndedAt, j.FailureReason, j.NextAttemptAt = JobSucceeded, now, "", time.Time{}
		j.Owner, j.LeaseUntil = "", time.Time{}
		j.EventCount, j.ObjectCount, j.Bytes = events, objects, bytes
		j.SkippedEvents = j.Skipped(events)
		c, err := getConfig(tx, j.ConfigID)
		if err != nil {
			return err
		}
		c.Cursor = max(c.Cursor, j.To)
		c.SkippedEvents += j.SkippedEvents
		if digest.Key != "" {
			c.LastDigest = digest
		}
		c.ConnectionStatus, c.ConnectionCheckedAt, c.CheckFailures = ConnectionSuccess, now, 0
		if err := putConfig(tx, &c); err != nil {
			return err
		}
		return pruneJobs(tx, j.ConfigID)
	})
}

// pruneJobs deletes a configuration's jobs beyond the newest JobsKept, and their tasks; those
// are all finished (only the newest can be unfinished).
func pruneJobs(tx Tx, configID string) error {
	kept := 0
	var stale []string
	if err := tx.JobsOf(configID, func(j ExportJob) bool {
		if kept++; kept > JobsKept && j.Finished() {
			stale = append(stale, j.ID)
		}
		return true
	}); err != nil {
		return err
	}
	for _, id := range stale {
		if err := tx.DeleteJob(id); err != nil {
			return err
		}
	}
	return nil
}
