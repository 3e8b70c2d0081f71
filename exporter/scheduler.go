package exporter

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/auditexport/auditexport/store"
)

// ExportStore is what the exporter reads and writes.
type ExportStore interface {
	store.Configurations
	store.EventBuffer
	store.Cursors
	store.Jobs
	store.DigestKeys
}

var _ ExportStore = (*store.Store)(nil)

// ExporterConfig configures NewExporter. Zero fields take the defaults shown.
type ExporterConfig struct {
	// TempDir holds files being encoded; emptied at start. Required.
	TempDir string
	// Workers bounds the jobs reading and encoding events at once (see Exporter); each
	// destination runs one job at a time. Default 2.
	Workers int
	// MaxFileEventBytes splits a file once the encoded events in it reach this size (the
	// Parquet file is smaller: compressed). Default 128 MiB.
	MaxFileEventBytes int64
	// MaxOpenFiles bounds the memory of one job's open files: MaxOpenFiles row groups of events
	// (see store.ExportPlan.MaxOpenBytes). Default 8.
	MaxOpenFiles int
	// RowGroupBytes bounds the encoded events of one row group, and so the memory of each open
	// file. Default 16 MiB.
	RowGroupBytes int64
	// UploadTimeout bounds one object's upload. Default 10m.
	UploadTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts of a failing job. Defaults 10s, 15m.
	RetryMin, RetryMax time.Duration
	// ScanInterval is how often due schedules and retries are looked for. Default 1s.
	ScanInterval time.Duration
	// DrainTimeout is how long running attempts may go on after shutdown begins; then they are
	// cut short and resume at the next start. Default 20s.
	DrainTimeout time.Duration
	// LeaseTTL is how long an attempt holds its job without renewing (it renews every third of
	// it): on a shared store, how soon another replica takes over the job of one that died.
	// Default 30s.
	LeaseTTL time.Duration
	// Owner names this process in leases. Default: host, pid and a random part.
	Owner  string
	Logger *slog.Logger
	Now    func() time.Time
}

// fillDefaults replaces zero (and negative) fields by their defaults.
func (c *ExporterConfig) fillDefaults() {
	c.Workers = cmp.Or(max(c.Workers, 0), 2)
	c.MaxOpenFiles = cmp.Or(max(c.MaxOpenFiles, 0), 8)
	c.MaxFileEventBytes = cmp.Or(max(c.MaxFileEventBytes, 0), 128<<20)
	c.RowGroupBytes = cmp.Or(max(c.RowGroupBytes, 0), 16<<20)
	c.UploadTimeout = cmp.Or(max(c.UploadTimeout, 0), 10*time.Minute)
	c.RetryMin = cmp.Or(max(c.RetryMin, 0), 10*time.Second)
	c.RetryMax = max(cmp.Or(max(c.RetryMax, 0), 15*time.Minute), c.RetryMin)
	c.ScanInterval = cmp.Or(max(c.ScanInterval, 0), time.Second)
	c.DrainTimeout = cmp.Or(max(c.DrainTimeout, 0), 20*time.Second)
	c.LeaseTTL = cmp.Or(max(c.LeaseTTL, 0), 30*time.Second)
	c.Owner = cmp.Or(c.Owner, processOwner())
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Exporter runs export jobs: on each configuration's schedule, aligned to UTC boundaries of its
// interval, on request (RunNow), and again after failures.
//
// A destination that hangs must cost its own configuration only. So each job runs on its own
// goroutine (at most one per configuration), and Workers bounds not the jobs but the turns: a
// job holds a turn only while it uses the CPU (reading and encoding its events) and gives it
// back whenever it waits on its destination, and once encoding is over (see turn). A job stuck
// in an upload therefore holds nothing another job needs but its own memory (bounded by its
// plan) and temporary files, and a healthy configuration's job starts as soon as a turn is free,
// whatever the others' destinations do. Turns are granted in the order asked for. Cancel stops
// a configuration's job when it is disabled or deleted.
type Exporter struct {
	cfg     ExporterConfig
	store   ExportStore
	clients *Clients
	log     *slog.Logger
	metrics *exportMetrics
	owner   string
	turns   *semaphore.Weighted

	mu       sync.Mutex
	running  bool
	lifetime context.Context            // Start's: ends when the shutdown begins
	work     context.Context            // parent of the jobs' contexts: cut when the drain ends
	jobs     map[string]*jobRun         // by configuration id: the job queued or running
	waiters  map[string][]chan struct{} // job id -> RunNow callers
	group    sync.WaitGroup             // the jobs' goroutines
	stopped  chan struct{}
}

// jobRun is a job queued or running; cancel ends it.
type jobRun struct{ cancel context.CancelCauseFunc }

// errCanceled is why a job is cut short by Cancel.
var errCanceled = errors.New("its configuration was disabled or deleted")

// NewExporter returns an exporter; Start starts it.
func NewExporter(cfg ExporterConfig, st ExportStore, clients *Clients) *Exporter {
	cfg.fillDefaults()
	return &Exporter{
		cfg: cfg, store: st, clients: clients, log: cfg.Logger, metrics: newExportMetrics(st, cfg.Now), owner: cfg.Owner,
		turns: semaphore.NewWeighted(int64(cfg.Workers)), stopped: make(chan struct{}),
		jobs: map[string]*jobRun{}, waiters: map[string][]chan struct{}{},
	}
}

// Plan is how new jobs cut their events into files: each hour whole (see layout.go), the files
// open at once holding about as many bytes as MaxOpenFiles full row groups.
func (x *Exporter) Plan() store.ExportPlan {
	return store.ExportPlan{MaxFileEventBytes: x.cfg.MaxFileEventBytes, MaxOpenFiles: x.cfg.MaxOpenFiles,
		MaxOpenBytes: int64(x.cfg.MaxOpenFiles) * x.cfg.RowGroupBytes}
}

// Start starts exporting and returns at once, accepting RunNow from then on. When ctx ends no
// new attempt starts; running ones may finish within DrainTimeout, after which they are cut
// short (they resume at the next start), and the returned channel is closed. Start may be
// called once.
func (x *Exporter) Start(ctx context.Context) <-chan struct{} {
	if err := os.RemoveAll(x.cfg.TempDir); err != nil {
		x.log.Warn("clear export temporary directory", "path", x.cfg.TempDir, "error", err)
	}
	if err := os.MkdirAll(x.cfg.TempDir, 0o700); err != nil {
		x.log.Error("create export temporary directory", "path", x.cfg.TempDir, "error", err)
	}
	work, cut := context.WithCancel(context.WithoutCancel(ctx))
	x.mu.Lock()
	x.running, x.lifetime, x.work = true, ctx, work
	x.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cut()
		x.run(ctx, cut)
	}()
	return done
}

func (x *Exporter) run(ctx context.Context, cut context.CancelFunc) {
	ticker := time.NewTicker(x.cfg.ScanInterval)
	defer ticker.Stop()
	for ctx.Err() == nil {
		x.scan(ctx)
		select {
		case <-ctx.Done():
		case <-ticker.C:
		}
	}
	x.mu.Lock()
	x.running = false
	x.mu.Unlock()
	close(x.stopped)
	drain := time.AfterFunc(x.cfg.DrainTimeout, cut)
	defer drain.Stop()
	x.group.Wait()
}

// scanLimit bounds the configurations one scan starts: the next scan goes on.
const scanLimit = 1000

// scan resumes unfinished jobs that may run (see store.Jobs.RunnableJobs: a disabled
// configuration's job waits until it is enabled again) and starts the jobs of configurations
// whose interval boundary has passed. Both are indexed reads.
func (x *Exporter) scan(ctx context.Context) {
	defer logPanic(x.log, "export scan")
	now := x.cfg.Now()
	runnable, err := x.store.RunnableJobs(ctx, now)
	if err != nil {
		x.log.Error("list runnable export jobs", "error", err)
		return
	}
	for _, job := range runnable {
		x.dispatch(job)
	}
	unfinished, err := x.store.UnfinishedJobs(ctx)
	if err != nil {
		x.log.Error("list unfinished export jobs", "error", err)
		return
	}
	busy := make(map[string]bool, len(unfinished))
	for _, job := range unfinished {
		busy[job.ConfigID] = true
	}
	due, err := x.store.DueSchedules(ctx, now, scanLimit)
	if err != nil {
		x.log.Error("list due export schedules", "error", err)
		return
	}
	for _, c := range due {
		if busy[c.ID] {
			continue // its unfinished job runs (or waits to retry) first
		}
		boundary := now.UTC().Truncate(c.Interval.Duration())
		if c.ScheduledThrough.IsZero() {
			// A new configuration's first run is the next boundary after its creation.
			if err := x.store.MarkScheduled(ctx, c.ID, boundary); err != nil {
				x.log.Error("schedule export", "config_id", c.ID, "error", err)
			}
			continue
		}
		job, err := x.store.CreateJob(ctx, c.ID, x.Plan(), false, boundary)
		switch {
		case errors.Is(err, store.ErrNothingToExport), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDisabled):
		case err != nil:
			x.log.Error("create scheduled export job", "config_id", c.ID, "error", err)
		default:
			x.dispatch(job)
		}
	}
}

// dispatch starts job unless its configuration already has one queued or running.
func (x *Exporter) dispatch(job store.ExportJob) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.running || x.jobs[job.ConfigID] != nil {
		return false
	}
	ctx, cancel := context.WithCancelCause(x.work)
	x.jobs[job.ConfigID] = &jobRun{cancel: cancel}
	x.group.Go(func() {
		defer cancel(nil)
		x.runJob(ctx, job)
	})
	return true
}

// Cancel stops the job of a configuration that was disabled or deleted, queued or running: its
// attempt is cut short (recorded as interrupted, not failed) and its RunNow callers are answered.
// A disabled configuration's job waits, PENDING, until it is enabled again.
func (x *Exporter) Cancel(configID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if j := x.jobs[configID]; j != nil {
		j.cancel(errCanceled)
	}
}

func (x *Exporter) runJob(ctx context.Context, job store.ExportJob) {
	defer func() {
		x.mu.Lock()
		delete(x.jobs, job.ConfigID)
		waiters := x.waiters[job.ID]
		delete(x.waiters, job.ID)
		x.mu.Unlock()
		for _, w := range waiters {
			close(w)
		}
	}()
	defer logPanic(x.log, "export job "+job.ID)
	if latest, err := x.store.Job(ctx, job.ID); err != nil || latest.Finished() {
		return // deleted with its configuration, or done meanwhile
	}
	// A job waiting for its first turn when the shutdown begins does not start.
	waiting, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	defer context.AfterFunc(x.lifetime, stopWaiting)()
	t := &turn{slots: x.turns}
	if t.acquire(waiting) != nil {
		return
	}
	defer t.release()
	if _, err := x.runAttempt(ctx, job, t); errors.Is(err, store.ErrLeaseHeld) {
		x.log.Debug("export job is running in another process", "job_id", job.ID)
	} else if err != nil && !errors.Is(err, errInterrupted) {
		x.log.Debug("export attempt ended with an error", "job_id", job.ID, "error", err)
	}
}

// RunNow exports what is pending for a configuration at once and returns the job: finished if it
// finished before ctx ended, else as it stands. An unfinished job of the configuration (say, one
// waiting to retry) is run now instead of starting another.
func (x *Exporter) RunNow(ctx context.Context, configID string) (store.ExportJob, error) {
	job, err := x.store.CreateJob(ctx, configID, x.Plan(), true, time.Time{})
	if err != nil {
		return job, err
	}
	if job.Finished() {
		return job, nil
	}
	done := make(chan struct{})
	x.mu.Lock()
	if !x.running { // not started, or stopping: the job runs at the next start
		x.mu.Unlock()
		return job, nil
	}
	x.waiters[job.ID] = append(x.waiters[job.ID], done)
	x.mu.Unlock()
	x.dispatch(job) // false when it is already running: the waiter is told when it ends
	select {
	case <-done:
	case <-ctx.Done():
	case <-x.stopped:
	}
	return x.store.Job(ctx, job.ID)
}

// NextExportAt is when the configuration's next scheduled export starts.
func NextExportAt(c store.ExportConfiguration, now time.Time) time.Time {
	d := c.Interval.Duration()
	return now.UTC().Truncate(d).Add(d)
}
