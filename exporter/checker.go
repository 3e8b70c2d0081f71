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
	store.Configurations
}

var _ CheckStore = (*store.Store)(nil)

// CheckerConfig configures NewChecker. Zero fields take the defaults shown.
type CheckerConfig struct {
	// Workers bounds the background checks running at once. Requested ones (CheckNow) start at
	// once, one per configuration (see Checker). Default 4.
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

// Checker runs connectivity checks: on request (CheckNow) and in the background, re-checking
// failing destinations with backoff and healthy ones daily, so a trust relationship added after
// the configuration turns it to SUCCESS without user action.
//
// A destination that hangs must delay nobody else's check, and callers must not pile up checks
// on it. So checks are kept per configuration: at most one runs, and at most one waits to run
// after it, shared by every caller that asks meanwhile (it starts after the running one, so it
// sees the configuration as the callers wrote it). A waiting check whose callers have all left
// is dropped. A requested check starts at once, never behind another configuration's; the
// background checks run at most Workers at once. Cancel cuts a configuration's running check
// short when it is disabled or deleted.
type Checker struct {
	cfg     CheckerConfig
	store   CheckStore
	clients *Clients
	log     *slog.Logger
	checks  *prometheus.CounterVec

	mu         sync.Mutex // guards the fields below, never held while blocking
	running    bool
	work       context.Context          // the checks' parent: the server's lifetime, never cancelled
	configs    map[string]*configChecks // by configuration id: those with a check running
	background int                      // background checks running
	group      sync.WaitGroup           // the running checks
	stopped    chan struct{}            // closed when Run winds down: waiting checks are abandoned
}

// configChecks are the checks of one configuration: the one running and the one waiting.
type configChecks struct {
	cancel     context.CancelCauseFunc
	background bool
	callers    []chan checkResult // of the running check
	next       map[chan checkResult]bool
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
		stopped: make(chan struct{}),
		configs: map[string]*configChecks{},
	}
}

// Collectors are the checker's metrics, for the server's registry.
func (c *Checker) Collectors() []prometheus.Collector { return []prometheus.Collector{c.checks} }

// Start starts checking and returns at once, accepting CheckNow from then on. When ctx ends,
// checks already running finish (each is bounded by Timeout), waiting ones are abandoned, and the
// returned channel is closed. Checks run on a context detached from ctx, so a shutdown never
// records "canceled" as a destination's status. Start may be called once.
func (c *Checker) Start(ctx context.Context) <-chan struct{} {
	c.mu.Lock()
	c.running, c.work = true, context.WithoutCancel(ctx)
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.scanLoop(ctx)
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		close(c.stopped)
		c.group.Wait()
	}()
	return done
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
		c.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// scan claims the background checks that are due (store.Configurations.ClaimDueChecks: on a
// store shared by replicas, each is claimed by one), as many as may start, up to Workers at
// once, and starts them; the next scan claims those left out. A configuration being checked on
// request meanwhile is left to that check, which records when the next is due.
func (c *Checker) scan(ctx context.Context) {
	defer logPanic(c.log, "connectivity check scan")
	c.mu.Lock()
	free := c.cfg.Workers - c.background
	c.mu.Unlock()
	if free <= 0 {
		return
	}
	claimed, err := c.store.ClaimDueChecks(ctx, c.cfg.Now(), c.claimHold(), free)
	if err != nil {
		c.log.Error("claim due connectivity checks", "error", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cfg := range claimed {
		if c.running && c.configs[cfg.ID] == nil {
			c.background++
			c.start(cfg.ID, &configChecks{background: true})
		}
	}
}

// claimHold is how long a claimed check stays claimed: claimed checks start at once, so long
// enough for one to run, with room to spare.
func (c *Checker) claimHold() time.Duration { return 2*c.cfg.Timeout + c.scanInterval() }

// nextCheck is when the background check after one with this outcome is due: HealthyInterval
// after a success, else RetryMin doubled per consecutive failure, capped at RetryMax.
func (c *Checker) nextCheck(status string, failures int, at time.Time) time.Time {
	if status == store.ConnectionSuccess {
		return at.Add(c.cfg.HealthyInterval)
	}
	return at.Add(doubled(c.cfg.RetryMin, c.cfg.RetryMax, failures))
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

// start runs a check of configuration id for cc's callers; c.mu is held.
func (c *Checker) start(id string, cc *configChecks) {
	ctx, cancel := context.WithCancelCause(c.work)
	cc.cancel = cancel
	c.configs[id] = cc
	c.group.Go(func() {
		defer cancel(nil)
		cfg, err := c.checkOne(ctx, id)
		c.finished(id, checkResult{cfg, err})
	})
}

// finished answers the callers of id's check and starts the check waiting after it, if it still
// has callers.
func (c *Checker) finished(id string, r checkResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.configs[id]
	delete(c.configs, id)
	if cc.background {
		c.background--
	}
	for _, done := range cc.callers {
		done <- r // buffered
	}
	if len(cc.next) > 0 && c.running {
		next := &configChecks{}
		for done := range cc.next {
			next.callers = append(next.callers, done)
		}
		c.start(id, next)
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
	cfg, err = c.store.Configuration(ctx, id)
	if err != nil {
		return cfg, err // deleted meanwhile, most likely
	}
	status := store.ConnectionSuccess
	dest, secret, err := c.clients.forConfig(ctx, cfg, c.store)
	if err == nil {
		err = verify(ctx, dest, cfg, c.cfg.Now(), c.cfg.Timeout)
	}
	if ctx.Err() != nil { // cancelled: the destination was not judged, its status stays
		c.log.Info("connectivity check cancelled: its configuration was disabled or deleted", "config_id", id)
		return c.store.Configuration(context.WithoutCancel(ctx), id)
	}
	if err != nil {
		status = FailureStatus(cfg, dest, err, secret)
		c.checks.WithLabelValues("failure").Inc()
		c.log.Info("connectivity check failed", "config_id", id, "status", status)
		logUnexplained(c.log, id, dest, err)
	} else {
		c.checks.WithLabelValues("success").Inc()
		c.log.Debug("connectivity check passed", "config_id", id)
	}
	now := c.cfg.Now()
	return c.store.RecordConnectionCheck(ctx, id, cfg.Revision, status, now, c.nextCheck(status, cfg.CheckFailures+1, now))
}

// CheckNow checks the configuration and returns it with the new status: at once, or, when a
// check of it is running, right after (joining whoever else asked meanwhile). The check runs
// under the server's lifetime: if ctx ends while it runs, it still completes and is recorded,
// and CheckNow returns the configuration as stored; if ctx ends before it starts, it does not
// run for this caller.
func (c *Checker) CheckNow(ctx context.Context, id string) (store.ExportConfiguration, error) {
	done := make(chan checkResult, 1)
	c.mu.Lock()
	if !c.running || ctx.Err() != nil {
		c.mu.Unlock()
		return c.store.Configuration(ctx, id)
	}
	if cc := c.configs[id]; cc != nil {
		if cc.next == nil {
			cc.next = map[chan checkResult]bool{}
		}
		cc.next[done] = true
	} else {
		c.start(id, &configChecks{callers: []chan checkResult{done}})
	}
	c.mu.Unlock()
	select {
	case r := <-done:
		return r.config, r.err
	case <-ctx.Done():
		c.leave(id, done)
	case <-c.stopped:
	}
	return c.store.Configuration(ctx, id)
}

// leave withdraws a caller who has gone from the check waiting for it; a waiting check left
// without callers is dropped.
func (c *Checker) leave(id string, done chan checkResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.configs[id]; cc != nil {
		delete(cc.next, done)
	}
}

// Cancel cuts short the running check of a configuration that was disabled or deleted; its
// result is not recorded. A check asked for afterwards runs as usual.
func (c *Checker) Cancel(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.configs[id]; cc != nil {
		cc.cancel(errCanceled)
	}
}

// Forget drops the cached client of a deleted configuration.
func (c *Checker) Forget(id string) { c.clients.Forget(id) }

// logPanic, deferred, keeps a background loop alive through a panic and logs it with its stack.
func logPanic(log *slog.Logger, where string) {
	if v := recover(); v != nil {
		log.Error("panic in background work", "in", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}
