package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/auditexport/auditexport/store"
)

// phase says how far a transaction got when it failed, which decides whether it may run again.
type phase int

const (
	phaseBegin  phase = iota // no transaction yet: nothing was written
	phaseBody                // in fn or the flush: the server rolls back whatever happens
	phaseCommit              // COMMIT sent: if the connection failed, the outcome is unknown
)

// txError is a failed attempt at a transaction.
type txError struct {
	err   error
	phase phase
}

func (e *txError) Error() string { return e.err.Error() }
func (e *txError) Unwrap() error { return e.err }

// retryable reports whether the attempt may run again: a serialization failure or deadlock
// (rolled back), or a connection that failed before COMMIT was sent.
func retryable(err error) bool {
	var t *txError
	if !errors.As(err, &t) {
		return false
	}
	if code := sqlState(err); code == "40001" || code == "40P01" {
		return true
	}
	return t.phase != phaseCommit && connectionFailed(err)
}

// refused reports whether the server answered err as an ERROR: the statement failed and the
// transaction with it, while the session lives on. A FATAL answer to COMMIT does not say as much:
// a session ended while COMMIT waited for a synchronous standby has committed locally.
func refused(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && cmp.Or(pg.SeverityUnlocalized, pg.Severity) == "ERROR"
}

func sqlState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

// unavailableCodes are the SQLSTATEs of a server that cannot serve now: shutting down or
// starting up, out of connections or resources, or a standby that takes no writes.
var unavailableCodes = map[string]bool{
	"57P01": true, "57P02": true, "57P03": true, // admin shutdown, crash shutdown, cannot connect now
	"53000": true, "53100": true, "53200": true, "53300": true, // insufficient resources, disk full, out of memory, too many connections
	"25006": true, // read-only transaction: connected to a standby
	"57014": true, // query canceled: our own timeout
}

// connectionFailed reports whether err is the database being out of reach rather than a fault
// in what was asked.
func connectionFailed(err error) bool {
	if code := sqlState(err); code != "" {
		return unavailableCodes[code] || code[:2] == "08"
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connect) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded)
}

// unavailableError is the database out of reach: store.ErrUnavailable, with the cause.
type unavailableError struct {
	err error
	// unknown: the connection failed after COMMIT was sent, so the transaction may have
	// committed. The caller must not report it as done, nor assume it was not: an ingest
	// answers 503 and the client's retry is deduplicated.
	unknown bool
}

func (e *unavailableError) Error() string {
	if e.unknown {
		return "the database connection failed while committing (the transaction may or may not have committed): " + e.err.Error()
	}
	return "the database is unavailable: " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error { return []error{store.ErrUnavailable, e.err} }

// classify maps a failed call to the store's errors: the caller's own context ending is its
// error; a closed pool is store.ErrClosed; a unique index store.ErrConflict; the database out of
// reach (including TxTimeout passing) store.ErrUnavailable; anything else is returned as it is,
// a fault worth logging.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return ctxErr
	}
	var t *txError
	inCommit := errors.As(err, &t) && t.phase == phaseCommit
	switch {
	case errors.Is(err, puddle.ErrClosedPool):
		return store.ErrClosed
	case errors.Is(err, store.ErrUnavailable):
		return err
	case sqlState(err) == "23505":
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case connectionFailed(err) || errors.Is(err, context.Canceled) && ctx.Err() == nil:
		return &unavailableError{err: err, unknown: inCommit && !refused(err)}
	}
	if t != nil {
		return t.err // a store error from fn, or a fault: as it is
	}
	return err
}
