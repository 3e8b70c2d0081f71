package exporter

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/auditexport/auditexport/store"
)

// ExportStore is what the exporter reads and writes.
type ExportStore interface {
	CheckStore
	PendingEvents(cursor uint64) int64
	ReadEvents(after uint64, limit int, fn func(seq uint64, record []byte) bool) error
	CreateJob(configID string, plan store.ExportPlan, manual bool, scheduledAt time.Time) (store.ExportJob, error)
	MarkScheduled(configID string, at time.Time) error
	StartAttempt(id string) (store.ExportJob, error)
	FailAttempt(id, reason string, next time.Time) (store.ExportJob, error)
	InterruptAttempt(id string) (store.ExportJob, error)
	CompleteJob(id string, events, objects, bytes int64, digest store.DigestRef) (store.ExportJob, error)
	SignDigest(body []byte) []byte
	DigestPublicKeySHA256() string
	PutTask(t store.ExportTask) (store.ExportTask, error)
	Task(jobID string, index int) (store.ExportTask, bool, error)
	Job(id string) (store.ExportJob, error)
	UnfinishedJobs() ([]store.ExportJob, error)
}

var _ ExportStore = (*store.Store)(nil)

// ExporterConfig configures NewExporter. Zero fields take the defaults shown.
type ExporterConfig struct {
	// TempDir holds files being encoded; emptied at start. Required.
	TempDir string
	// Workers bounds the jobs running at once; each destination runs one job at a time.
	// Default 2.
	Workers int
	// MaxFileEventBytes splits a file once the encoded events in it reach this size (the
	// Parquet file is smaller: compressed). Default 128 MiB.
	MaxFileEventBytes int64
	// MaxOpenFiles bounds the hour partitions one job writes at once. Default 8.
	MaxOpenFiles int
	// RowGroupBytes bounds the encoded events of one row group, and so the memory of each open
	// file. Default 16 MiB.
	RowGroupBytes int64
	// MultipartThreshold and PartSize: files larger than the threshold are uploaded in parts.
	// Defaults 16 MiB and 8 MiB.
	MultipartThreshold, PartSize int64
	// UploadTimeout bounds one object's upload. Default 10m.
	UploadTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts of a failing job. Defaults 10s, 15m.
	RetryMin, RetryMax time.Duration
	// ScanInterval is how often due schedules and retries are looked for. Default 1s.
	ScanInterval time.Duration
	// DrainTimeout is how long running attempts may go on after shutdown begins; then they are
	// cut short and resume at the next start. Default 20s.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// DefaultExporterConfig returns the values ExporterConfig's zero fields take (TempDir has none).
func DefaultExporterConfig() ExporterConfig {
	var c ExporterConfig
	c.fillDefaults()
	return c
}

// fillDefaults replaces zero (and negative) fields by their defaults.
func (c *ExporterConfig) fillDefaults() {
	c.Workers = cmp.Or(max(c.Workers, 0), 2)
	c.MaxOpenFiles = cmp.Or(max(c.MaxOpenFiles, 0), 8)
	c.MaxFileEventBytes = cmp.Or(max(c.MaxFileEventBytes, 0), 128<<20)
	c.RowGroupBytes = cmp.Or(max(c.RowGroupBytes, 0), 16<<20)
	c.MultipartThreshold = cmp.Or(max(c.MultipartThreshold, 0), 16<<20)
	c.PartSize = cmp.Or(max(c.PartSize, 0), 8<<20)
	c.UploadTimeout = cmp.Or(max(c.UploadTimeout, 0), 10*time.Minute)
	c.RetryMin = cmp.Or(max(c.RetryMin, 0), 10*time.Second)
	c.RetryMax = max(cmp.Or(max(c.RetryMax, 0), 15*time.Minute), c.RetryMin)
	c.ScanInterval = cmp.Or(max(c.ScanInterval, 0), time.Second)
	c.DrainTimeout = cmp.Or(max(c.DrainTimeout, 0), 20*time.Second)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Exporter runs export jobs: on each configuration's schedule, aligned to UTC boundaries of its
// interval, on request (RunNow), and again after failures. Jobs of different destinations run
// in a bounded pool and never wait on one another.
type Exporter struct {
	cfg     ExporterConfig
	store   ExportStore
	clients *Clients
	log     *slog.Logger
	metrics *exportMetrics

	queue   chan store.ExportJob
	stopped chan struct{}

	mu       sync.Mutex
	running  bool
	inFlight map[string]bool            // configuration ids with a job queued or running
	waiters  map[string][]chan struct{} // job id -> RunNow callers
}

// NewExporter returns an exporter; Start starts it.
func NewExporter(cfg ExporterConfig, st ExportStore, clients *Clients) *Exporter {
	cfg.fillDefaults()
	return &Exporter{
		cfg: cfg, store: st, clients: clients, log: cfg.Logger, metrics: newExportMetrics(st, cfg.Now),
		queue: make(chan store.ExportJob, 64), stopped: make(chan struct{}),
		inFlight: map[string]bool{}, waiters: map[string][]chan struct{}{},
	}
}

// Plan is how new jobs cut their events into files.
func (x *Exporter) Plan() store.ExportPlan {
	return store.ExportPlan{MaxFileEventBytes: x.cfg.MaxFileEventBytes, MaxOpenFiles: x.cfg.MaxOpenFiles}
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
	x.mu.Lock()
	x.running = true
	x.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.run(ctx)
	}()
	return done
}

func (x *Exporter) run(ctx context.Context) {
	work, cut := context.WithCancel(context.WithoutCancel(ctx))
	defer cut()
	workers := startWorkers(x.cfg.Workers, x.queue, x.stopped, func(job store.ExportJob) { x.runJob(work, job) })

	ticker := time.NewTicker(x.cfg.ScanInterval)
	defer ticker.Stop()
	for ctx.Err() == nil {
		x.scan()
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
	workers.Wait()
}

// scan resumes unfinished jobs that are due and starts the jobs of configurations whose
// interval boundary has passed. A disabled configuration's unfinished job waits until it is
// enabled again.
func (x *Exporter) scan() {
	defer logPanic(x.log, "export scan")
	now := x.cfg.Now()
	configs, err := x.store.Configurations()
	if err != nil {
		x.log.Error("list configurations for export", "error", err)
		return
	}
	enabled := map[string]bool{}
	for _, c := range configs {
		enabled[c.ID] = c.Enabled
	}
	unfinished, err := x.store.UnfinishedJobs()
	if err != nil {
		x.log.Error("list unfinished export jobs", "error", err)
		return
	}
	busy := map[string]bool{}
	for _, job := range unfinished {
		busy[job.ConfigID] = true
		if enabled[job.ConfigID] && (job.Status != store.JobFailed || !now.Before(job.NextAttemptAt)) {
			x.dispatch(job)
		}
	}
	for _, c := range configs {
		if !c.Enabled || busy[c.ID] {
			continue
		}
		boundary := now.UTC().Truncate(c.Interval.Duration())
		if !boundary.After(c.ScheduledThrough) {
			continue
		}
		if c.ScheduledThrough.IsZero() {
			// A new configuration's first run is the next boundary after its creation.
			if err := x.store.MarkScheduled(c.ID, boundary); err != nil {
				x.log.Error("schedule export", "config_id", c.ID, "error", err)
			}
			continue
		}
		job, err := x.store.CreateJob(c.ID, x.Plan(), false, boundary)
		switch {
		case errors.Is(err, store.ErrNothingToExport), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDisabled):
		case err != nil:
			x.log.Error("create scheduled export job", "config_id", c.ID, "error", err)
		default:
			x.dispatch(job)
		}
	}
}

// dispatch queues job unless its configuration already has one queued or running, or the
// queue is full (the next scan tries again).
func (x *Exporter) dispatch(job store.ExportJob) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.running || x.inFlight[job.ConfigID] {
		return false
	}
	select {
	case x.queue <- job:
		x.inFlight[job.ConfigID] = true
		return true
	default:
		return false
	}
}

func (x *Exporter) runJob(ctx context.Context, job store.ExportJob) {
	defer func() {
		x.mu.Lock()
		delete(x.inFlight, job.ConfigID)
		waiters := x.waiters[job.ID]
		delete(x.waiters, job.ID)
		x.mu.Unlock()
		for _, w := range waiters {
			close(w)
		}
	}()
	defer logPanic(x.log, "export job "+job.ID)
	if latest, err := x.store.Job(job.ID); err != nil || latest.Finished() {
		return // deleted with its configuration, or done meanwhile
	}
	if _, err := x.runAttempt(ctx, job); err != nil && !errors.Is(err, errInterrupted) {
		x.log.Debug("export attempt ended with an error", "job_id", job.ID, "error", err)
	}
}

// RunNow exports what is pending for a configuration at once and returns the job: finished if it
// finished before ctx ended, else as it stands. An unfinished job of the configuration (say, one
// waiting to retry) is run now instead of starting another.
func (x *Exporter) RunNow(ctx context.Context, configID string) (store.ExportJob, error) {
	job, err := x.store.CreateJob(configID, x.Plan(), true, time.Time{})
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
	return x.store.Job(job.ID)
}

// NextExportAt is when the configuration's next scheduled export starts.
func NextExportAt(c store.ExportConfiguration, now time.Time) time.Time {
	d := c.Interval.Duration()
	return now.UTC().Truncate(d).Add(d)
}
