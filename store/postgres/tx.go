package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Round trips: a transaction's BEGIN goes out with its first statements, and a write
// transaction's COMMIT with its last (the appends' flush), in one pipeline each. An ingest's
// group commit is then two round trips (the lock, the state and its ids looked up; the writes
// and the commit), where a transaction of its own for each statement kind took six; profiled,
// the round trips were a third of a group commit's time on a loaded machine.

// querier is what a transaction's statements go through.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	queryBeforeBegin(ctx context.Context, sql string, args ...any) (pgx.Rows, bool, error)
}

// lockWriters takes the writers' lock (see the package comment).
const lockWriters = "LOCK TABLE event_log IN EXCLUSIVE MODE"

// Statements that open a transaction.
var (
	// beginWrite: a write transaction holds the writers' lock from its first statement on.
	beginWrite = []string{"BEGIN ISOLATION LEVEL REPEATABLE READ", lockWriters}
	beginRead  = []string{"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"}
)

// txConn is one transaction on a pooled connection, begun with the first statement sent.
type txConn struct {
	conn  *pgxpool.Conn
	begin []string
	begun bool
}

var _ querier = (*txConn)(nil)

// queryBeforeBegin runs sql as a statement of its own, before the transaction begins; begun
// reports that it has begun already (nothing was run).
func (c *txConn) queryBeforeBegin(ctx context.Context, sql string, args ...any) (rows pgx.Rows, begun bool, err error) {
	if c.begun {
		return nil, true, nil
	}
	rows, err = c.conn.Query(ctx, sql, args...)
	return rows, false, err
}

// withBegin returns b with the statements that begin the transaction first, when it has not begun.
func (c *txConn) withBegin(b *pgx.Batch) *pgx.Batch {
	if c.begun {
		return b
	}
	c.begun = true
	first := &pgx.Batch{}
	for _, sql := range c.begin {
		first.Queue(sql)
	}
	first.QueuedQueries = append(first.QueuedQueries, b.QueuedQueries...)
	return first
}

func (c *txConn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return c.conn.SendBatch(ctx, c.withBegin(b))
}

func (c *txConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if c.begun {
		return c.conn.Exec(ctx, sql, args...)
	}
	br, err := c.sendBegun(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	return tag, errors.Join(err, br.Close())
}

func (c *txConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if c.begun {
		return c.conn.Query(ctx, sql, args...)
	}
	br, err := c.sendBegun(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// sendBegun sends the statements that begin the transaction and then sql in one batch, and
// reads the beginning's results: the batch's next result is sql's.
func (c *txConn) sendBegun(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br := c.SendBatch(ctx, b)
	for range c.begin {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, err
		}
	}
	return br, nil
}

func (c *txConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return rowOf{rows}
}

// batchRows are the rows of a query sent in a batch behind BEGIN: closing them closes the batch.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err = r.br.Close()
		r.br = nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// rowOf is the first row of rows, as pgx.Conn.QueryRow reads it.
type rowOf struct{ rows pgx.Rows }

func (r rowOf) Scan(dest ...any) error {
	rows := r.rows
	defer rows.Close()
	if !rows.Next() {
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// commit sends b (nil: nothing) and COMMIT in one round trip. Its error is a *txError: in the body
// phase when the server refused a statement before COMMIT (nothing was committed), in the commit
// phase otherwise.
func (c *txConn) commit(ctx context.Context, b *pgx.Batch) error {
	if !c.begun && (b == nil || len(b.QueuedQueries) == 0) {
		return nil // nothing was sent: nothing to commit
	}
	if b == nil {
		b = &pgx.Batch{}
	}
	b.Queue("COMMIT")
	br := c.SendBatch(ctx, b)
	defer br.Close()
	for range len(b.QueuedQueries) - 1 {
		if _, err := br.Exec(); err != nil {
			return &txError{err: err, phase: phaseOf(err)}
		}
	}
	tag, err := br.Exec()
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("COMMIT answered %q", tag)
	}
	if err != nil {
		return &txError{err: err, phase: phaseCommit}
	}
	if err := br.Close(); err != nil {
		return &txError{err: err, phase: phaseCommit}
	}
	return nil
}

// phaseOf is the phase of an error met before COMMIT's answer in the same pipeline: a statement
// the server refused skips the rest of the pipeline, COMMIT included (the body phase); a lost
// connection leaves COMMIT's outcome unknown.
func phaseOf(err error) phase {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return phaseBody
	}
	return phaseCommit
}

// release ends the transaction if it is open (rolled back) and returns the connection to the
// pool, which drops a connection that is broken or still in a transaction.
func (c *txConn) release(ctx context.Context) {
	if c.begun && !c.conn.Conn().IsClosed() && c.conn.Conn().PgConn().TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if _, err := c.conn.Exec(ctx, "ROLLBACK"); err != nil {
			c.conn.Conn().Close(ctx)
		}
		cancel()
	}
	c.conn.Release()
}
