package exporter

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditexport/auditexport/store"
)

// CheckStore is what the checker reads and writes.
type CheckStore interface {
	Configuration(id string) (store.ExportConfiguration, error)
	Configurations() ([]store.ExportConfiguration, error)
	SecretAccessKey(id string) (string, error)
	RecordConnectionCheck(id string, revision int64, status string, at time.Time) (store.ExportConfiguration, error)
}

var _ CheckStore = (*store.Store)(nil)

// CheckerConfig configures NewChecker. Zero fields take the defaults shown.
type CheckerConfig struct {
	// Workers bounds how many checks run at once. Default 4.
	Workers int
	// Timeout bounds one check, AssumeRole included. Default 10s.
	Timeout time.Duration
	// RetryMin is the first re-check delay of a failing destination; it doubles per failure up to
	// RetryMax. Defaults 1m and 15m.
	RetryMin, RetryMax time.Duration
	// HealthyInterval is how often a passing destination is checked again. Default 24h.
	HealthyInterval time.Duration
	// Logger defaults to discard; Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultCheckerConfig returns the values CheckerConfig's zero fields take.
func DefaultCheckerConfig() CheckerConfig {
	var c CheckerConfig
	c.fillDefaults()
	return c
}

// fillDefaults replaces zero (and negative) fields by their defaults.
func (c *CheckerConfig) fillDefaults() {
	c.Workers = cmp.Or(max(c.Workers, 0), 4)
	c.Timeout = cmp.Or(max(c.Timeout, 0), 10*time.Second)
	c.RetryMin = cmp.Or(max(c.RetryMin, 0), time.Minute)
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(15*time.Minute, c.RetryMin)
	}
	c.HealthyInterval = cmp.Or(max(c.HealthyInterval, 0), 24*time.Hour)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Checker runs connectivity checks in a bounded pool: on request (CheckNow) and in the
// background, re-checking failing destinations with backoff and healthy ones daily, so a trust
// relationship added after the configuration turns it to SUCCESS without user action.
type Checker struct {
	cfg     CheckerConfig
	store   CheckStore
	clients *Clients
	log     *slog.Logger
	checks  *prometheus.CounterVec

	jobs    chan checkJob
	stopped chan struct{} // closed when Run winds down: queued jobs are abandoned

	mu       sync.Mutex // guards the two fields below, never held while blocking
	running  bool
	inFlight map[string]int // configuration id -> checks queued or running
}

type checkJob struct {
	id   string
	done chan checkResult // nil for background checks
}

type checkResult struct {
	config store.ExportConfiguration
	err    error
}

// NewChecker returns a checker; Start starts it.
func NewChecker(cfg CheckerConfig, st CheckStore, clients *Clients) *Checker {
	cfg.fillDefaults()
	return &Checker{
		cfg: cfg, store: st, clients: clients, log: cfg.Logger,
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditexport_connection_checks_total", Help: "Connectivity checks by result (success or failure).",
		}, []string{"result"}),
		jobs:     make(chan checkJob, 4*cfg.Workers),
		stopped:  make(chan struct{}),
		inFlight: map[string]int{},
	}
}

// Collectors are the checker's metrics, for the server's registry.
func (c *Checker) Collectors() []prometheus.Collector { return []prometheus.Collector{c.checks} }

// Start starts checking and returns at once, accepting CheckNow from then on. When ctx ends,
// checks already running finish (each is bounded by Timeout), queued ones are abandoned, and the
// returned channel is closed. Checks run on a context detached from ctx, so a shutdown never
// records "canceled" as a destination's status. Start may be called once.
func (c *Checker) Start(ctx context.Context) <-chan struct{} {
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.run(ctx)
	}()
	return done
}

func (c *Checker) run(ctx context.Context) {
	work := context.WithoutCancel(ctx)
	workers := startWorkers(c.cfg.Workers, c.jobs, c.stopped, func(job checkJob) { c.runJob(work, job) })
	c.scanLoop(ctx)

	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	close(c.stopped)
	workers.Wait()
}

// scanInterval is how often the background loop looks for due checks: fine enough for RetryMin,
// coarse enough to cost nothing.
func (c *Checker) scanInterval() time.Duration {
	return min(max(c.cfg.RetryMin/4, 50*time.Millisecond), 5*time.Second)
}

func (c *Checker) scanLoop(ctx context.Context) {
	ticker := time.NewTicker(c.scanInterval())
	defer ticker.Stop()
	for {
		c.scan()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// scan enqueues a background check of every enabled configuration that is due and not already
// being checked. A full queue is not waited on: the next scan tries again.
func (c *Checker) scan() {
	defer logPanic(c.log, "connectivity check scan")
	configs, err := c.store.Configurations()
	if err != nil {
		c.log.Error("list configurations for connectivity checks", "error", err)
		return
	}
	now := c.cfg.Now()
	for _, cfg := range configs {
		if cfg.Enabled && c.due(cfg, now) {
			c.enqueue(checkJob{id: cfg.ID}, false)
		}
	}
}

// due reports whether cfg should be checked again at now.
func (c *Checker) due(cfg store.ExportConfiguration, now time.Time) bool {
	if cfg.ConnectionCheckedAt.IsZero() {
		return true
	}
	return !now.Before(cfg.ConnectionCheckedAt.Add(c.recheckAfter(cfg)))
}

// recheckAfter is the delay before the next background check: HealthyInterval after a success,
// else RetryMin doubled per consecutive failure, capped at RetryMax.
func (c *Checker) recheckAfter(cfg store.ExportConfiguration) time.Duration {
	if cfg.ConnectionStatus == store.ConnectionSuccess {
		return c.cfg.HealthyInterval
	}
	return doubled(c.cfg.RetryMin, c.cfg.RetryMax, cfg.CheckFailures)
}

// doubled is the delay after the n-th consecutive failure: first, doubled for every failure
// after the first, capped at limit.
func doubled(first, limit time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// enqueue queues job. A background job is dropped when the id is already queued or the queue is
// full; a requested one (wait) waits for room, unless the checker stops meanwhile.
func (c *Checker) enqueue(job checkJob, wait bool) bool {
	c.mu.Lock()
	if !c.running || (!wait && c.inFlight[job.id] > 0) {
		c.mu.Unlock()
		return false
	}
	c.inFlight[job.id]++
	c.mu.Unlock()
	if wait {
		select {
		case c.jobs <- job:
			return true
		case <-c.stopped:
		}
	} else {
		select {
		case c.jobs <- job:
			return true
		default:
		}
	}
	c.finished(job.id)
	return false
}

func (c *Checker) finished(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight[id]--; c.inFlight[id] <= 0 {
		delete(c.inFlight, id)
	}
}

func (c *Checker) runJob(ctx context.Context, job checkJob) {
	cfg, err := c.checkOne(ctx, job.id)
	c.finished(job.id)
	if job.done != nil { // buffered: the waiter may be gone
		job.done <- checkResult{cfg, err}
	}
}

// checkOne checks one configuration and records the result for the revision it checked.
func (c *Checker) checkOne(ctx context.Context, id string) (cfg store.ExportConfiguration, err error) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("panic in connectivity check", "config_id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("connectivity check of %s panicked", id)
		}
	}()
	cfg, err = c.store.Configuration(id)
	if err != nil {
		return cfg, err // deleted meanwhile, most likely
	}
	status := store.ConnectionSuccess
	client, secret, err := c.clients.forConfig(cfg, c.store)
	if err == nil {
		err = verify(ctx, client, cfg, c.cfg.Now(), c.cfg.Timeout)
	}
	if err != nil {
		status = FailureStatus(cfg, err, c.cfg.Timeout, secret)
		c.checks.WithLabelValues("failure").Inc()
		c.log.Info("connectivity check failed", "config_id", id, "status", status)
	} else {
		c.checks.WithLabelValues("success").Inc()
		c.log.Debug("connectivity check passed", "config_id", id)
	}
	return c.store.RecordConnectionCheck(id, cfg.Revision, status, c.cfg.Now())
}

// CheckNow checks the configuration at once and returns it with the new status. The check runs
// in the pool under the server's lifetime: if ctx ends first the check still completes and is
// recorded, and CheckNow returns the configuration as stored.
func (c *Checker) CheckNow(ctx context.Context, id string) (store.ExportConfiguration, error) {
	done := make(chan checkResult, 1)
	if !c.enqueue(checkJob{id: id, done: done}, true) {
		return c.store.Configuration(id)
	}
	select {
	case r := <-done:
		return r.config, r.err
	case <-ctx.Done():
	case <-c.stopped:
	}
	return c.store.Configuration(id)
}

// Forget drops the cached client of a deleted configuration.
func (c *Checker) Forget(id string) { c.clients.Forget(id) }

// startWorkers starts n goroutines that run the jobs of queue until stopped is closed; wait on
// the returned group for them to end.
func startWorkers[T any](n int, queue <-chan T, stopped <-chan struct{}, run func(T)) *sync.WaitGroup {
	var workers sync.WaitGroup
	for range n {
		workers.Go(func() {
			for {
				select {
				case job := <-queue:
					run(job)
				case <-stopped:
					return
				}
			}
		})
	}
	return &workers
}

// logPanic, deferred, keeps a background loop alive through a panic and logs it with its stack.
func logPanic(log *slog.Logger, where string) {
	if v := recover(); v != nil {
		log.Error("panic in background work", "in", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}
