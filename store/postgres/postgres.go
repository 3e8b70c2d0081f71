// Package postgres is auditexport's store engine for several replicas: one PostgreSQL database
// that every replica shares. It stores, indexes and transacts for store.Store (see
// store.Engine); the rules are the store's.
//
// Transactions. Every write transaction begins with
//
//	BEGIN ISOLATION LEVEL REPEATABLE READ; LOCK TABLE event_log IN EXCLUSIVE MODE
//
// sent with its first statements (tx.go): writers across all replicas run one at a time, and
// each one's snapshot is taken after it holds the lock (LOCK TABLE, unlike a SELECT of
// pg_advisory_xact_lock, takes no snapshot), so it sees every write committed before it. That is
// serial execution, the strongest isolation there is, with none of SERIALIZABLE's retries: the
// event buffer needs it anyway, since seqs must be dense and given in commit order (a reader that
// exported up to seq N must never find a later commit below N), and nearly every write of the
// store can append an event (the audit events of configuration and token changes). The lock is
// released only after the commit is durable (synchronous commit) and visible, so the next
// writer's seqs come after. Plain reads (SELECT, View) take no lock and never wait for it. Writes
// are short: a group commit of ingested batches holds the lock for one round trip and a half
// (the buffer's state coming back; its events written, and COMMIT).
//
// REPEATABLE READ rather than READ COMMITTED: should anything write the tables without the lock
// (an operator's hand, a migration), a write transaction gets a serialization failure instead of
// overwriting it, and Update runs it again.
//
// Views are REPEATABLE READ READ ONLY transactions: one snapshot that includes every commit made
// before it began (taken by its first statement, which BEGIN goes out with).
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/auditexport/auditexport/store"
)

// Options configures Open. Zero fields take the defaults shown.
type Options struct {
	// BlockMaxEvents and BlockMaxAge close a block of the event buffer, the unit it is trimmed
	// by. Defaults 16,384 events and 10 minutes.
	BlockMaxEvents int64
	BlockMaxAge    time.Duration
	// TxTimeout bounds one Update or View, retries included: a database that stops answering
	// makes the call fail with store.ErrUnavailable instead of hanging. Default 30s.
	TxTimeout time.Duration
	// IDCatchUpAfter is how long a replica's index of the buffered ids (idindex.go) may go
	// without looking at the database before a group commit first catches it up outside the
	// writers' lock. Default 250ms.
	IDCatchUpAfter time.Duration
	// Now replaces the database's clock as the transactions' clock (tests). Default: the
	// database's clock_timestamp(), one clock for every replica.
	Now func() time.Time
	// Logger receives the engine's messages (migrations). Default: discard.
	Logger *slog.Logger
}

func (o *Options) fillDefaults() {
	o.BlockMaxEvents = cmp.Or(max(o.BlockMaxEvents, 0), 16_384)
	o.BlockMaxAge = cmp.Or(max(o.BlockMaxAge, 0), 10*time.Minute)
	o.TxTimeout = cmp.Or(max(o.TxTimeout, 0), 30*time.Second)
	o.IDCatchUpAfter = cmp.Or(max(o.IDCatchUpAfter, 0), 250*time.Millisecond)
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
}

// Engine is the PostgreSQL engine. It is safe for concurrent use, and any number of processes
// may open one database.
type Engine struct {
	pool *pgxpool.Pool
	opts Options
	ids  idIndex // the buffered ids (idindex.go)
}

var _ store.Engine = (*Engine)(nil)

// minServerVersion is the oldest PostgreSQL the engine runs on (13: the oldest still supported
// by the PostgreSQL project when this was written).
const minServerVersion = 130000

// Open connects to the database at url (any libpq form: postgres://… URL or key=value pairs;
// several hosts with target_session_attrs=read-write find the primary after a failover), brings
// its schema up to date under an advisory lock, and refuses a schema newer than this binary
// knows.
func Open(ctx context.Context, url string, opts Options) (*Engine, error) {
	opts.fillDefaults()
	cfg, err := poolConfig(url)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	e := &Engine{pool: pool, opts: opts}
	if err := e.checkServer(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := migrate(ctx, pool, opts.Logger); err != nil {
		pool.Close()
		return nil, classify(ctx, err)
	}
	if err := e.ids.load(ctx, e); err != nil {
		pool.Close()
		return nil, err
	}
	return e, nil
}

// poolConfig parses url and sets what the engine relies on.
func poolConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx leaves the password out of its errors.
		return nil, fmt.Errorf("database URL: %w", err)
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		// A host that drops packets must not hold a request for the kernel's TCP timeout.
		cc.ConnectTimeout = 5 * time.Second
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "auditexport"
	}
	if cc.RuntimeParams["idle_in_transaction_session_timeout"] == "" {
		// A replica that stops in the middle of a write transaction (frozen, cut off) would hold
		// the writers' lock until TCP gave up on it, hours later; the server ends the session
		// instead. The engine's transactions never wait between statements.
		cc.RuntimeParams["idle_in_transaction_session_timeout"] = "15s"
	}
	// A commit is acknowledged (an ingested batch answered 202) only once it is durable, and on
	// the synchronous standbys the server names: whatever the server's default, unless the URL
	// names a level that still waits for the local flush.
	switch level := cc.RuntimeParams["synchronous_commit"]; level {
	case "":
		cc.RuntimeParams["synchronous_commit"] = "on"
	case "on", "remote_write", "remote_apply", "local":
	default:
		return nil, fmt.Errorf("database URL: synchronous_commit=%s would acknowledge events a crash can lose; use on (the default), remote_apply, remote_write or local", level)
	}
	return cfg, nil
}

// checkServer refuses a server too old for the schema.
func (e *Engine) checkServer(ctx context.Context) error {
	var version string
	if err := e.pool.QueryRow(ctx, "SHOW server_version_num").Scan(&version); err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", classify(ctx, err))
	}
	if n, err := strconv.Atoi(version); err != nil || n < minServerVersion {
		return fmt.Errorf("PostgreSQL %s is too old: auditexport needs 13 or later", version)
	}
	return nil
}

// Retries of one Update or View: serialization failures and deadlocks (which only writes made
// without the lock can cause), and connection failures before the commit was sent (nothing was
// written: a pooled connection that died with a restarted server, a failover).
const (
	maxAttempts  = 5
	retryBackoff = 50 * time.Millisecond
)

// Update runs fn in a write transaction and returns once its commit is durable; see the
// package comment. fn may run more than once (serialization failures, lost connections).
func (e *Engine) Update(ctx context.Context, fn func(store.Tx) error) error {
	return e.retry(ctx, func(ctx context.Context) error { return e.updateOnce(ctx, fn) })
}

// View runs fn in a read-only snapshot.
func (e *Engine) View(ctx context.Context, fn func(store.ReadTx) error) error {
	return e.retry(ctx, func(ctx context.Context) error {
		c, err := e.acquire(ctx, beginRead)
		if err != nil {
			return err
		}
		defer c.release(ctx)
		if err := fn(&readTx{ctx: ctx, tx: c, e: e}); err != nil {
			return &txError{err: err, phase: phaseBody}
		}
		if err := c.commit(ctx, nil); err != nil {
			var t *txError
			errors.As(err, &t)
			return &txError{err: t.err, phase: phaseBody} // read only: nothing to lose, may run again
		}
		return nil
	})
}

// acquire takes a pooled connection for a transaction that begin opens.
func (e *Engine) acquire(ctx context.Context, begin []string) (*txConn, error) {
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return nil, &txError{err: err, phase: phaseBegin}
	}
	return &txConn{conn: conn, begin: begin}, nil
}

// updateOnce runs fn in a transaction.
func (e *Engine) updateOnce(ctx context.Context, fn func(store.Tx) error) error {
	c, err := e.acquire(ctx, beginWrite)
	if err != nil {
		return err
	}
	defer c.release(ctx)
	w := &writeTx{readTx: readTx{ctx: ctx, tx: c, e: e}}
	w.events = newEventWriter(w)
	if err := fn(w); err != nil {
		return &txError{err: err, phase: phaseBody}
	}
	// The appends not yet written and COMMIT, in one round trip.
	if err := c.commit(ctx, w.events.flushBatch()); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		// The deadline passed during COMMIT, so it was cancelled; PostgreSQL still answers
		// success when the cancelled wait was for a synchronous standby, though the commit is
		// then on the primary alone. Not durable as promised: reported as of unknown outcome.
		return &txError{err: fmt.Errorf("the commit outlived the transaction's deadline (a synchronous standby unreachable?): %w", err), phase: phaseCommit}
	}
	e.ids.add(w.events.startHead, w.events.written, 0)
	return nil
}

// retry runs attempt until it succeeds, fails for good, or TxTimeout passes.
func (e *Engine) retry(ctx context.Context, attempt func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bounded, cancel := context.WithTimeout(ctx, e.opts.TxTimeout)
	defer cancel()
	for n := 1; ; n++ {
		err := attempt(bounded)
		if err == nil {
			return nil
		}
		if n >= maxAttempts || !retryable(err) || bounded.Err() != nil {
			return classify(ctx, err)
		}
		select {
		case <-bounded.Done():
			return classify(ctx, err)
		case <-time.After(retryBackoff * time.Duration(n)):
		}
	}
}

// Ready reports whether the database takes writes now: reachable, and a primary (a standby,
// say one that a URL without target_session_attrs still names after a failover, takes none).
func (e *Engine) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(e.opts.TxTimeout, 5*time.Second))
	defer cancel()
	var standby bool
	if err := e.pool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		return classify(ctx, err)
	}
	if standby {
		return fmt.Errorf("the database is a read-only standby: %w", store.ErrUnavailable)
	}
	return nil
}

// ConcurrentGroupCommits is 2: while one group commit holds the writers' lock, the next looks its
// ids up in the replica's index and compresses its events (see store.GroupCommitPipeliner).
func (e *Engine) ConcurrentGroupCommits() int { return 2 }

// Exclusive is false: other replicas share the database, and their leases are theirs.
func (e *Engine) Exclusive() bool { return false }

// Close closes the pool once the calls in flight have returned their connections.
func (e *Engine) Close() error {
	e.pool.Close()
	return nil
}

// readTx reads within a transaction.
type readTx struct {
	ctx context.Context
	tx  querier
	e   *Engine
	// events holds a write transaction's appends until they are flushed; nil in views.
	events *eventWriter
}

// writeTx writes within a transaction that holds the writers' lock.
type writeTx struct {
	readTx
}

// Now is the transaction's clock: the database's, read once after the lock was taken (so later
// transactions never read an earlier time, barring the server's clock going back).
func (w *writeTx) Now() time.Time {
	if w.e.opts.Now != nil {
		return w.e.opts.Now()
	}
	if err := w.events.load(); err != nil {
		// The transaction is broken: the next statement fails and Update reports it.
		return time.Now()
	}
	return w.events.now
}
