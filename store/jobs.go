package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
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
}

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

// jobsKept bounds the finished jobs kept per configuration.
const jobsKept = 100

// ErrNothingToExport means a configuration's cursor is at the buffer's head.
var ErrNothingToExport = errors.New("no events are waiting to be exported")

// ErrDisabled means the configuration is disabled.
var ErrDisabled = errors.New("the export configuration is disabled")

func jobNotFound(id string) error { return &NotFoundError{What: "export job", ID: id} }

// eachJobOf calls fn with each job of a configuration, newest first (job ids are UUIDv7, so key
// order is creation order), until fn returns false.
func eachJobOf(tx *bolt.Tx, configID string, fn func(j ExportJob) bool) error {
	c := tx.Bucket(bucketJobs).Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		var j ExportJob
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("decode job %s: %w", k, err)
		}
		if j.ConfigID == configID && !fn(j) {
			return nil
		}
	}
	return nil
}

// activeJob returns the configuration's unfinished job, if any.
func activeJob(tx *bolt.Tx, configID string) (job ExportJob, found bool, err error) {
	err = eachJobOf(tx, configID, func(j ExportJob) bool {
		if j.Finished() {
			return true
		}
		job, found = j, true
		return false
	})
	return job, found, err
}

// CreateJob fixes a new job for the events after the configuration's cursor up to the head.
// When the configuration already has an unfinished job, that job is returned instead (one job
// at a time per destination). scheduledAt, when not zero, records the schedule boundary this job
// serves, also when there is nothing to export: then a scheduled job is not created
// (ErrNothingToExport) and a manual one is recorded as already SUCCEEDED with no events.
func (s *Store) CreateJob(ctx context.Context, configID string, plan ExportPlan, manual bool, scheduledAt time.Time) (ExportJob, error) {
	var job ExportJob
	err := s.update(func(tx *bolt.Tx, w *eventWriter) error {
		c, err := getConfig(tx, configID)
		if err != nil {
			return err
		}
		if !c.Enabled {
			return ErrDisabled
		}
		if active, found, err := activeJob(tx, configID); err != nil || found {
			job = active
			return err
		}
		if !scheduledAt.IsZero() && scheduledAt.After(c.ScheduledThrough) {
			c.ScheduledThrough = scheduledAt
			if err := putJSON(tx.Bucket(bucketConfigs), c.ID, c); err != nil {
				return err
			}
		}
		head := w.next - 1
		if c.Cursor >= head && !manual {
			return nil
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		job = ExportJob{ID: id.String(), ConfigID: configID, Status: JobPending, From: c.Cursor, To: max(head, c.Cursor),
			Plan: plan, Manual: manual, CreatedAt: w.now.UTC()}
		if job.From == job.To {
			// Asked for with nothing waiting: recorded as done, so the answer is a real job.
			job.Status, job.StartedAt, job.EndedAt = JobSucceeded, job.CreatedAt, job.CreatedAt
		}
		return putJSON(tx.Bucket(bucketJobs), job.ID, job)
	})
	if err == nil && job.ID == "" {
		err = ErrNothingToExport
	}
	return job, err
}

// MarkScheduled records that the schedule boundary at has been served without a job.
func (s *Store) MarkScheduled(ctx context.Context, configID string, at time.Time) error {
	return s.update(func(tx *bolt.Tx, _ *eventWriter) error {
		c, err := getConfig(tx, configID)
		if err != nil {
			return err
		}
		if !at.After(c.ScheduledThrough) {
			return nil
		}
		c.ScheduledThrough = at
		return putJSON(tx.Bucket(bucketConfigs), c.ID, c)
	})
}

// updateJob applies change to a stored job.
func (s *Store) updateJob(id string, change func(tx *bolt.Tx, j *ExportJob) error) (ExportJob, error) {
	var job ExportJob
	err := s.update(func(tx *bolt.Tx, _ *eventWriter) error {
		v := tx.Bucket(bucketJobs).Get([]byte(id))
		if v == nil {
			return jobNotFound(id)
		}
		if err := json.Unmarshal(v, &job); err != nil {
			return err
		}
		if err := change(tx, &job); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketJobs), id, job)
	})
	return job, err
}

// StartAttempt marks a job RUNNING and counts the attempt.
func (s *Store) StartAttempt(ctx context.Context, id string) (ExportJob, error) {
	return s.updateJob(id, func(_ *bolt.Tx, j *ExportJob) error {
		if j.Finished() {
			return fmt.Errorf("export job %s already succeeded", id)
		}
		j.Status, j.Attempts, j.StartedAt, j.EndedAt = JobRunning, j.Attempts+1, s.now().UTC(), time.Time{}
		j.NextAttemptAt = time.Time{}
		return nil
	})
}

// FailAttempt records a failed attempt: the reason, and when to try again.
func (s *Store) FailAttempt(ctx context.Context, id, reason string, next time.Time) (ExportJob, error) {
	return s.updateJob(id, func(_ *bolt.Tx, j *ExportJob) error {
		j.Status, j.FailureReason, j.NextAttemptAt, j.EndedAt = JobFailed, reason, next.UTC(), s.now().UTC()
		return nil
	})
}

// InterruptAttempt puts a job back to PENDING after its attempt was cut short by a shutdown;
// it resumes at the next start and the interruption does not count as a failure.
func (s *Store) InterruptAttempt(ctx context.Context, id string) (ExportJob, error) {
	return s.updateJob(id, func(_ *bolt.Tx, j *ExportJob) error {
		j.Status, j.Attempts = JobPending, max(j.Attempts-1, 0)
		return nil
	})
}

// CompleteJob marks a job SUCCEEDED and, in the same transaction, moves the configuration's
// cursor to the end of the job's range and records the destination as reachable. Only this
// transaction advances a cursor, so a job that fails or is cut short is simply done again.
//
// Events of the range that had left the buffer (ExportJob.Skipped) are counted on the job and
// the configuration, never passed over silently.
//
// digest, when the job wrote one, becomes the configuration's LastDigest, to which the next
// job's digest links.
func (s *Store) CompleteJob(ctx context.Context, id string, events, objects, bytes int64, digest DigestRef) (ExportJob, error) {
	return s.updateJob(id, func(tx *bolt.Tx, j *ExportJob) error {
		now := s.now().UTC()
		j.Status, j.EndedAt, j.FailureReason, j.NextAttemptAt = JobSucceeded, now, "", time.Time{}
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
		if err := putJSON(tx.Bucket(bucketConfigs), c.ID, c); err != nil {
			return err
		}
		return pruneJobs(tx, j.ConfigID, j.ID)
	})
}

// pruneJobs deletes a configuration's finished jobs beyond the newest jobsKept, and their tasks.
func pruneJobs(tx *bolt.Tx, configID, keep string) error {
	kept := 0
	var stale []string
	if err := eachJobOf(tx, configID, func(j ExportJob) bool {
		if kept++; kept > jobsKept && j.ID != keep && j.Finished() {
			stale = append(stale, j.ID)
		}
		return true
	}); err != nil {
		return err
	}
	for _, id := range stale {
		if err := deleteJob(tx, id); err != nil {
			return err
		}
	}
	return nil
}

func deleteJob(tx *bolt.Tx, id string) error {
	if err := tx.Bucket(bucketJobs).Delete([]byte(id)); err != nil {
		return err
	}
	var keys [][]byte
	if err := eachTaskRecord(tx, id, func(k, _ []byte) error {
		keys = append(keys, bytes.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.Bucket(bucketTasks).Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// eachTaskRecord calls fn with the key and record of each task of a job, in order.
func eachTaskRecord(tx *bolt.Tx, jobID string, fn func(k, v []byte) error) error {
	prefix := []byte(jobID + "/")
	c := tx.Bucket(bucketTasks).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func taskKey(jobID string, index int) []byte {
	return binary.BigEndian.AppendUint32([]byte(jobID+"/"), uint32(index))
}

// PutTask stores a task of an existing job, replacing an earlier version of it.
func (s *Store) PutTask(ctx context.Context, t ExportTask) (ExportTask, error) {
	err := s.update(func(tx *bolt.Tx, _ *eventWriter) error {
		if tx.Bucket(bucketJobs).Get([]byte(t.JobID)) == nil {
			return jobNotFound(t.JobID)
		}
		return putJSON(tx.Bucket(bucketTasks), string(taskKey(t.JobID, t.Index)), t)
	})
	return t, err
}

// Task returns task index of a job, if it was stored by an earlier attempt.
func (s *Store) Task(ctx context.Context, jobID string, index int) (ExportTask, bool, error) {
	var t ExportTask
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTasks).Get(taskKey(jobID, index))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &t)
	})
	return t, found, err
}

// Job returns one job.
func (s *Store) Job(ctx context.Context, id string) (ExportJob, error) {
	var job ExportJob
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketJobs).Get([]byte(id))
		if v == nil {
			return jobNotFound(id)
		}
		return json.Unmarshal(v, &job)
	})
	return job, err
}

// Jobs returns a configuration's jobs, newest first, at most limit (all when limit <= 0).
func (s *Store) Jobs(ctx context.Context, configID string, limit int) ([]ExportJob, error) {
	var jobs []ExportJob
	err := s.db.View(func(tx *bolt.Tx) error {
		return eachJobOf(tx, configID, func(j ExportJob) bool {
			jobs = append(jobs, j)
			return limit <= 0 || len(jobs) < limit
		})
	})
	return jobs, err
}

// LatestJobs returns the newest job of each configuration named that has one, in one read.
func (s *Store) LatestJobs(ctx context.Context, configIDs []string) (map[string]ExportJob, error) {
	latest := make(map[string]ExportJob, len(configIDs))
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, id := range configIDs {
			if err := eachJobOf(tx, id, func(j ExportJob) bool {
				latest[id] = j
				return false
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return latest, err
}

// UnfinishedJobs returns every job that has not succeeded, oldest first.
func (s *Store) UnfinishedJobs(ctx context.Context) ([]ExportJob, error) {
	var jobs []ExportJob
	err := s.db.View(func(tx *bolt.Tx) error {
		return eachJSON(tx.Bucket(bucketJobs), func(j ExportJob) error {
			if !j.Finished() {
				jobs = append(jobs, j)
			}
			return nil
		})
	})
	return jobs, err
}

// Tasks returns a job's tasks in order.
func (s *Store) Tasks(ctx context.Context, jobID string) ([]ExportTask, error) {
	var tasks []ExportTask
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketJobs).Get([]byte(jobID)) == nil {
			return jobNotFound(jobID)
		}
		return eachTaskRecord(tx, jobID, func(_, v []byte) error {
			var t ExportTask
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			tasks = append(tasks, t)
			return nil
		})
	})
	return tasks, err
}

// deleteJobsOf deletes every job of a configuration and their tasks.
func deleteJobsOf(tx *bolt.Tx, configID string) error {
	var ids []string
	err := eachJSON(tx.Bucket(bucketJobs), func(j ExportJob) error {
		if j.ConfigID == configID {
			ids = append(ids, j.ID)
		}
		return nil
	})
	for _, id := range ids {
		if err == nil {
			err = deleteJob(tx, id)
		}
	}
	return err
}
