package exporter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/internal/disk"
	"github.com/auditexport/auditexport/store"
)

// diskFullReason is a failed attempt's failureReason when the service's own disk is full.
const diskFullReason = "Error exporting: the export service's disk is full; the export is retried once space is freed"

// errInterrupted marks an attempt cut short by a shutdown or by Cancel.
var errInterrupted = errors.New("interrupted")

// runAttempt makes one attempt at a job: it encodes the job's events into Parquet files and
// uploads each as it is finished, then marks the job done, which advances the cursor. t is the
// job's turn, held on entry.
func (x *Exporter) runAttempt(ctx context.Context, job store.ExportJob, t *turn) (store.ExportJob, error) {
	cfg, err := x.store.Configuration(ctx, job.ConfigID)
	if err != nil {
		return job, err
	}
	if !cfg.Enabled { // disabled since the job was dispatched
		return job, store.ErrDisabled
	}
	if job, err = x.store.StartAttempt(ctx, job.ID, x.owner, x.cfg.LeaseTTL); err != nil {
		return job, err
	}
	attempt := job.Attempt()
	ctx, stopLease := x.keepLease(ctx, attempt)
	defer stopLease()
	x.log.Info("export attempt", "config_id", cfg.ID, "job_id", job.ID, "attempt", job.Attempts, "from", job.From, "to", job.To)

	dest, secret, err := x.clients.forConfig(ctx, cfg, x.store)
	if err == nil {
		var stats exportStats
		stats, err = x.exportRange(ctx, cfg, job, dest, t)
		var digest store.DigestRef
		if err == nil && len(stats.objects) > 0 {
			digest, err = x.writeDigest(ctx, dest, cfg, job, stats)
		}
		if err == nil {
			events, objects, bytes := stats.totals()
			job, err = x.store.CompleteJob(ctx, attempt, events, objects, bytes, digest)
			if err == nil {
				x.metrics.exported(job)
				x.log.Info("export succeeded", "config_id", cfg.ID, "job_id", job.ID, "events", job.EventCount, "objects", job.ObjectCount, "bytes", job.Bytes)
				if job.SkippedEvents > 0 {
					x.log.Warn("export skipped events that had left the buffer before this destination exported them (it was disabled, or they passed the buffer's age limit)",
						"config_id", cfg.ID, "job_id", job.ID, "skipped", job.SkippedEvents)
				}
			}
			return job, err
		}
	}
	if errors.Is(context.Cause(ctx), errLeaseLost) || errors.Is(err, store.ErrLeaseLost) {
		return job, errLeaseLost // the process that took the job over records its outcome
	}
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errCanceled) {
			x.log.Info("export attempt cancelled: its configuration was disabled or deleted", "config_id", cfg.ID, "job_id", job.ID)
		} else {
			x.log.Warn("export attempt interrupted by shutdown; it resumes at the next start", "config_id", cfg.ID, "job_id", job.ID)
		}
		// The attempt's context has ended: the record is written under one of its own.
		job, _ = x.store.InterruptAttempt(context.WithoutCancel(ctx), attempt)
		return job, errInterrupted
	}
	return x.fail(ctx, cfg, dest, job, err, secret)
}

// fail records a failed attempt on the job and as the configuration's connection status, and
// schedules the next attempt after a backoff with jitter.
//
// A full disk of the service's own is no fault of the destination: the reason says so, without
// the temporary file's path, and the connection status is left as it was.
func (x *Exporter) fail(ctx context.Context, cfg store.ExportConfiguration, dest destination.Destination, job store.ExportJob, cause error, secret string) (store.ExportJob, error) {
	x.metrics.failures.WithLabelValues(cfg.ID).Inc()
	var reason string
	if disk.Full(cause) {
		reason = diskFullReason
		x.log.Error("export attempt failed: the service's disk is full", "config_id", cfg.ID, "job_id", job.ID, "attempt", job.Attempts, "error", cause)
	} else {
		reason = failureText("Error exporting to", cfg, dest, cause, secret)
		logUnexplained(x.log, cfg.ID, dest, cause)
		x.log.Warn("export attempt failed", "config_id", cfg.ID, "job_id", job.ID, "attempt", job.Attempts, "reason", reason)
		if _, err := x.store.RecordConnectionCheck(ctx, cfg.ID, cfg.Revision, reason, x.cfg.Now(), time.Time{}); err != nil && !errors.Is(err, store.ErrNotFound) {
			x.log.Error("record export failure as connection status", "config_id", cfg.ID, "error", err)
		}
	}
	next := x.cfg.Now().Add(x.backoff(job.Attempts))
	job, err := x.store.FailAttempt(ctx, job.Attempt(), reason, next)
	if err != nil {
		return job, err
	}
	return job, errors.New(reason)
}

// backoff is the delay after the attempt-th failure: RetryMin doubled per failure up to
// RetryMax, with "equal jitter" (between half and all of it) so failing jobs do not retry in step.
func (x *Exporter) backoff(attempt int) time.Duration {
	d := doubled(x.cfg.RetryMin, x.cfg.RetryMax, attempt)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// exportStats are the objects an attempt uploaded, in order: what the job's digest lists.
type exportStats struct {
	objects []DigestObject
}

// totals sums the uploaded objects.
func (s exportStats) totals() (events, objects, bytes int64) {
	for _, o := range s.objects {
		events += o.Events
		bytes += o.Bytes
	}
	return events, int64(len(s.objects)), bytes
}

// exportRange encodes the events (job.From, job.To] and uploads the files. Encoding and
// uploading overlap: a finished file is uploaded while the next is encoded.
func (x *Exporter) exportRange(ctx context.Context, cfg store.ExportConfiguration, job store.ExportJob, dest destination.Destination, t *turn) (exportStats, error) {
	dir := filepath.Join(x.cfg.TempDir, job.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return exportStats{}, fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	uploads := make(chan EncodedFile, 1)
	uploaded := make(chan error, 1)
	var stats exportStats
	go func() {
		uploaded <- x.uploadAll(ctx, cfg, job, dest, uploads, &stats)
	}()

	enc := newEncoder(job.Plan, x.cfg.RowGroupBytes, dir, cfg.ID, func(f EncodedFile) error {
		return handOn(ctx, t, uploads, f)
	})
	err := x.encodeRange(ctx, job, enc)
	if err == nil {
		err = enc.close()
	}
	if err != nil {
		cancel() // first: the encoder's writer may be waiting to hand on a file
		enc.abort()
	}
	t.release() // encoding is over: waiting for the last uploads needs no turn
	close(uploads)
	if uerr := <-uploaded; uerr != nil {
		return stats, uerr // the upload failure is the cause; encoding then stopped for it
	}
	return stats, err
}

// uploadAll uploads each finished file as one task, in order.
func (x *Exporter) uploadAll(ctx context.Context, cfg store.ExportConfiguration, job store.ExportJob, dest destination.Destination, files <-chan EncodedFile, stats *exportStats) error {
	var failed error
	index := 0
	for f := range files {
		if failed != nil {
			os.Remove(f.Path)
			continue // drain: the encoder stops at the next file
		}
		failed = x.uploadTask(ctx, dest, cfg, job, index, f, stats)
		index++
		os.Remove(f.Path)
	}
	return failed
}

func (x *Exporter) uploadTask(ctx context.Context, dest destination.Destination, cfg store.ExportConfiguration, job store.ExportJob, index int, f EncodedFile, stats *exportStats) error {
	task, found, err := x.store.Task(ctx, job.ID, index)
	if err != nil {
		return err
	}
	key := exportKey(cfg.Path, f.Hour, f.First, f.Last, cfg.ID)
	if !found || task.Key != key {
		task = store.ExportTask{ID: fmt.Sprintf("%s-%d", job.ID, index), JobID: job.ID, Index: index}
	}
	task.Key, task.Offset, task.Limit, task.Bytes = key, f.First, f.Rows, f.Bytes
	task.Status, task.Attempts, task.StartedAt, task.EndedAt, task.FailureReason = store.JobRunning, task.Attempts+1, x.cfg.Now().UTC(), time.Time{}, ""
	task.SHA256 = f.SHA256()
	if _, err := x.store.PutTask(ctx, job.Attempt(), task); err != nil {
		return err
	}
	err = x.upload(ctx, dest, key, f)
	task.EndedAt = x.cfg.Now().UTC()
	if err != nil {
		task.Status = store.JobFailed
		task.FailureReason = failureText("Error exporting to", cfg, dest, err)
	} else {
		task.Status = store.JobSucceeded
		stats.objects = append(stats.objects, DigestObject{Key: key, Bytes: f.Bytes, SHA256: task.SHA256, FirstSequence: f.First, LastSequence: f.Last, Events: f.Rows})
	}
	if _, perr := x.store.PutTask(ctx, job.Attempt(), task); perr != nil && err == nil {
		err = perr
	}
	return err
}

// upload sends one file within UploadTimeout; the destination checksums it and, when large,
// sends it in parts, each bounded by the transport's progress timeout.
func (x *Exporter) upload(ctx context.Context, dest destination.Destination, key string, f EncodedFile) error {
	file, err := os.Open(f.Path)
	if err != nil {
		return err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	return destination.WithinTime(ctx, x.cfg.UploadTimeout, func(ctx context.Context) error {
		return dest.Put(ctx, destination.Object{Key: key, Body: file, Size: info.Size(), ContentType: "application/vnd.apache.parquet", Checksums: &f.Checksums})
	})
}
