package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// JobStatus is the state of an export job or task, as Immuta names them.
type JobStatus string

const (
	JobPending   JobStatus = "PENDING"
	JobRunning   JobStatus = "RUNNING"
	JobSucceeded JobStatus = "SUCCEEDED"
	JobFailed    JobStatus = "FAILED" // the last attempt failed; another follows after a backoff
)

// ExportPlan fixes how a job's events are cut into files. It is stored with the job, so a retry
// cuts them identically and writes the same object keys, whatever the flags say by then.
type ExportPlan struct {
	// MaxFileEventBytes closes a file once the encoded events in it reach this size.
	MaxFileEventBytes int64 `json:"maxFileEventBytes"`
	// MaxOpenFiles bounds the hour partitions written at once; the least recently used file is
	// closed when another partition needs one. With MaxOpenBytes, it bounds only the large ones.
	MaxOpenFiles int `json:"maxOpenFiles"`
	// MaxOpenBytes, when set, has each hour partition written whole into one file (more only past
	// MaxFileEventBytes), whatever the order of the events: a first pass notes each hour's first
	// and last event and its size, and the hours are grouped into passes over the job so that
	// the files open at once hold at most about this many bytes of events. Zero, as in the jobs
	// created before it existed: cut by MaxOpenFiles alone, as they were.
	MaxOpenBytes int64 `json:"maxOpenBytes,omitempty"`
}

// ExportJob exports the events (From, To] of one configuration. Its range is fixed when it is
// created, before anything is uploaded; attempts repeat it until it succeeds.
type ExportJob struct {
	ID            string     `json:"id"`
	ConfigID      string     `json:"configId"`
	Status        JobStatus  `json:"status"`
	From          uint64     `json:"from"`
	To            uint64     `json:"to"`
	Plan          ExportPlan `json:"plan"`
	Manual        bool       `json:"manual,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	StartedAt     time.Time  `json:"startedAt,omitzero"`
	EndedAt       time.Time  `json:"endedAt,omitzero"`
	Attempts      int        `json:"attempts"`
	FailureReason string     `json:"failureReason,omitempty"`
	NextAttemptAt time.Time  `json:"nextAttemptAt,omitzero"`
	EventCount    int64      `json:"eventCount"`
	ObjectCount   int64      `json:"objectCount"`
	Bytes         int64      `json:"bytes"`
	// SkippedEvents are the events of the range that were no longer buffered when the job ran.
	SkippedEvents int64 `json:"skippedEvents,omitempty"`
	// Owner and LeaseUntil: the process running the current attempt holds the job until
	// LeaseUntil, renewing as it goes; after that another may take it over (StartAttempt).
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
}

// Attempt names one attempt at a job: its fencing token. Only the holder of the job's current
// attempt can record tasks, renew the lease, or end the attempt; an attempt taken over by
// another process (a later StartAttempt) gets ErrLeaseLost.
type Attempt struct {
	JobID  string
	Number int
	Owner  string
}

// Attempt is the job's current attempt.
func (j ExportJob) Attempt() Attempt { return Attempt{JobID: j.ID, Number: j.Attempts, Owner: j.Owner} }

// Finished reports whether the job will not run again.
func (j ExportJob) Finished() bool { return j.Status == JobSucceeded }

// Skipped is how many events of the job's range were no longer buffered when it exported the
// given number: every seq of a range was an event, so any shortfall left the buffer first.
func (j ExportJob) Skipped(exported int64) int64 { return max(int64(j.To-j.From)-exported, 0) }

// ExportTask is one object of a job.
type ExportTask struct {
	ID            string    `json:"id"`
	JobID         string    `json:"jobId"`
	Index         int       `json:"index"`
	Key           string    `json:"key"`
	Offset        uint64    `json:"offset"` // the first seq in the object
	Limit         int64     `json:"limit"`  // how many events it holds
	Bytes         int64     `json:"bytes"`
	Status        JobStatus `json:"status"`
	Attempts      int       `json:"attempts"`
	StartedAt     time.Time `json:"startedAt,omitzero"`
	EndedAt       time.Time `json:"endedAt,omitzero"`
	FailureReason string    `json:"failureReason,omitempty"`
	// SHA256 is the hex SHA-256 of the uploaded object, as the job's digest lists it.
	SHA256 string `json:"sha256,omitempty"`
}

// ErrNothingToExport means a configuration's cursor is at the buffer's head.
var ErrNothingToExport = errors.New("no events are waiting to be exported")

// ErrDisabled means the configuration is disabled.
var ErrDisabled = errors.New("the export configuration is disabled")

func jobNotFound(id string) error { return &NotFoundError{What: "export job", ID: id} }

// latestJobOf returns the configuration's newest job. Only the newest can be unfinished: a job
// is created only when the one before it has finished.
func latestJobOf(tx ReadTx, configID string) (job ExportJob, found bool, err error) {
	err = tx.JobsOf(configID, func(j ExportJob) bool {
		job, found = j, true
		return false
	})
	return job, found, err
}

// CreateJob fixes a new job, or returns the configuration's unfinished one; see the contract.
func (s *Store) CreateJob(ctx context.Context, configID string, plan ExportPlan, manual bool, scheduledAt time.Time) (ExportJob, error) {
	var job ExportJob
	err := s.updateInGroup(ctx, func(tx Tx) error {
		job = ExportJob{}
		c, err := getConfig(tx, configID)
		if err != nil {
			return err
		}
		if !c.Enabled {
			return ErrDisabled
		}
		if latest, found, err := latestJobOf(tx, configID); err != nil || (found && !latest.Finished()) {
			job = latest
			return err
		}
		if !scheduledAt.IsZero() && scheduledAt.After(c.ScheduledThrough) {
			c.ScheduledThrough = scheduledAt.UTC()
			if err := putConfig(tx, &c); err != nil {
				return err
			}
		}
		stats, err := tx.EventStats()
		if err != nil {
			return err
		}
		if c.Cursor >= stats.Head && !manual {
			return nil
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		now := s.txNow(tx).UTC()
		job = ExportJob{ID: id.String(), ConfigID: configID, Status: JobPending, From: c.Cursor, To: max(stats.Head, c.Cursor),
			Plan: plan, Manual: manual, CreatedAt: now}
		if job.From == job.To {
			// Asked for with nothing waiting: recorded as done, so the answer is a real job.
			job.Status, job.StartedAt, job.EndedAt = JobSucceeded, now, now
		}
		return tx.PutJob(job)
	})
	if err == nil && job.ID == "" {
		err = ErrNothingToExport
	}
	return job, err
}

// MarkScheduled records that the schedule boundary at has been served without a job.
func (s *Store) MarkScheduled(ctx context.Context, configID string, at time.Time) error {
	return s.update(ctx, func(tx Tx) error {
		c, err := getConfig(tx, configID)
		if err != nil {
			return err
		}
		if !at.After(c.ScheduledThrough) {
			return nil
		}
		c.ScheduledThrough = at.UTC()
		return putConfig(tx, &c)
	})
}

// DueSchedules returns the enabled configurations whose next boundary has passed at now.
func (s *Store) DueSchedules(ctx context.Context, now time.Time, limit int) ([]ExportConfiguration, error) {
	var due []ExportConfiguration
	err := s.view(ctx, func(tx ReadTx) error {
		due = due[:0]
		return tx.EnabledConfigsByScheduleDue(func(c ExportConfiguration) bool {
			if c.ScheduleDueAt.After(now) || len(due) >= limit {
				return false
			}
			due = append(due, c)
			return true
		})
	})
	return due, err
}

// RunnableJobs returns the unfinished jobs that may start an attempt at now; see the contract.
func (s *Store) RunnableJobs(ctx context.Context, now time.Time) ([]ExportJob, error) {
	var runnable []ExportJob
	err := s.view(ctx, func(tx ReadTx) error {
		runnable = runnable[:0]
		var readErr error
		err := tx.UnfinishedJobs(func(j ExportJob) bool {
			c, found, err := tx.Config(j.ConfigID)
			if err != nil {
				readErr = err
				return false
			}
			if !found || !c.Enabled {
				return true
			}
			switch j.Status {
			case JobPending:
			case JobFailed:
				if now.Before(j.NextAttemptAt) {
					return true
				}
			case JobRunning:
				if now.Before(j.LeaseUntil) {
					return true
				}
			}
			runnable = append(runnable, j)
			return true
		})
		return errors.Join(err, readErr)
	})
	return runnable, err
}

// updateJob applies change to a stored job.
func (s *Store) updateJob(ctx context.Context, id string, change func(tx Tx, j *ExportJob) error) (ExportJob, error) {
	var job ExportJob
	err := s.updateInGroup(ctx, func(tx Tx) error {
		var found bool
		var err error
		if job, found, err = tx.Job(id); err != nil {
			return err
		}
		if !found {
			return jobNotFound(id)
		}
		if err := change(tx, &job); err != nil {
			return err
		}
		return tx.PutJob(job)
	})
	return job, err
}

// PutTask stores a task of the attempt's job, replacing an earlier version of it.
func (s *Store) PutTask(ctx context.Context, a Attempt, t ExportTask) (ExportTask, error) {
	if t.JobID != a.JobID {
		return t, fmt.Errorf("task of job %s stored by an attempt at job %s", t.JobID, a.JobID)
	}
	_, err := s.updateAttempt(ctx, a, func(tx Tx, _ *ExportJob) error { return tx.PutTask(t) })
	return t, err
}

// Task returns task index of a job, if it was stored by an earlier attempt.
func (s *Store) Task(ctx context.Context, jobID string, index int) (ExportTask, bool, error) {
	var t ExportTask
	var found bool
	err := s.view(ctx, func(tx ReadTx) error {
		var err error
		t, found, err = tx.Task(jobID, index)
		return err
	})
	return t, found, err
}

// Job returns one job.
func (s *Store) Job(ctx context.Context, id string) (ExportJob, error) {
	var job ExportJob
	err := s.view(ctx, func(tx ReadTx) error {
		var found bool
		var err error
		if job, found, err = tx.Job(id); err == nil && !found {
			return jobNotFound(id)
		}
		return err
	})
	return job, err
}

// Jobs returns a configuration's jobs, newest first, at most limit (all when limit <= 0).
func (s *Store) Jobs(ctx context.Context, configID string, limit int) ([]ExportJob, error) {
	var jobs []ExportJob
	err := s.view(ctx, func(tx ReadTx) error {
		jobs = jobs[:0]
		return tx.JobsOf(configID, func(j ExportJob) bool {
			jobs = append(jobs, j)
			return limit <= 0 || len(jobs) < limit
		})
	})
	return jobs, err
}

// LatestJobs returns the newest job of each configuration named that has one, in one read.
func (s *Store) LatestJobs(ctx context.Context, configIDs []string) (map[string]ExportJob, error) {
	latest := make(map[string]ExportJob, len(configIDs))
	err := s.view(ctx, func(tx ReadTx) error {
		clear(latest)
		for _, id := range configIDs {
			job, found, err := latestJobOf(tx, id)
			if err != nil {
				return err
			}
			if found {
				latest[id] = job
			}
		}
		return nil
	})
	return latest, err
}

// UnfinishedJobs returns every job that has not succeeded, oldest first.
func (s *Store) UnfinishedJobs(ctx context.Context) ([]ExportJob, error) {
	var jobs []ExportJob
	err := s.view(ctx, func(tx ReadTx) error {
		jobs = jobs[:0]
		return tx.UnfinishedJobs(func(j ExportJob) bool {
			jobs = append(jobs, j)
			return true
		})
	})
	return jobs, err
}

// Tasks returns a job's tasks in order.
func (s *Store) Tasks(ctx context.Context, jobID string) ([]ExportTask, error) {
	var tasks []ExportTask
	err := s.view(ctx, func(tx ReadTx) error {
		tasks = tasks[:0]
		if _, found, err := tx.Job(jobID); err != nil || !found {
			if err == nil {
				err = jobNotFound(jobID)
			}
			return err
		}
		return tx.Tasks(jobID, func(t ExportTask) bool {
			tasks = append(tasks, t)
			return true
		})
	})
	return tasks, err
}
