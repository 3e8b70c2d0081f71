package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// An Engine stores, indexes and transacts; it holds no rules. Store implements the contract
// (contract.go) once, over any Engine: validation, revisions, sealing, audit events, the job
// state machine, leases and the cursor advance are all Store's. store/bolt is the embedded
// engine, store/postgres the one for several replicas; storetest.Run checks both.
//
// Records cross the interface as domain values; an engine encodes them as it likes and keeps
// the indexes named on each method. Errors: ErrUnavailable when the engine cannot be reached
// now (the caller may retry), ErrClosed after Close; anything else is a fault worth logging.
type Engine interface {
	// Update runs fn in a read-write transaction. Transactions are serializable: each sees the
	// effects of those committed before it and none of those running beside it. When fn returns
	// nil the transaction commits, and Update returns once the commit is durable (synced to
	// disk, or acknowledged by the database's synchronous commit); when fn returns an error,
	// nothing of it is kept and Update returns that error. An engine that must retry a
	// transaction (a serialization failure) may call fn again: fn must not have effects outside
	// the transaction.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction over a consistent snapshot that includes every
	// transaction committed before View started.
	View(ctx context.Context, fn func(ReadTx) error) error
	// Ready returns nil when the engine can read and write now.
	Ready(ctx context.Context) error
	// Exclusive reports whether this process alone uses the data (an embedded file): leases held
	// by an earlier run of it can be released at start instead of waited out.
	Exclusive() bool
	// Close releases the engine; in-flight calls finish first.
	Close() error
}

// ReadTx reads within a transaction. Iterations stop when fn returns false.
type ReadTx interface {
	// Meta returns the value of a metadata key, nil when absent.
	Meta(key string) ([]byte, error)

	// Config returns a configuration.
	Config(id string) (ExportConfiguration, bool, error)
	// ConfigIDByName finds a configuration by its unique name.
	ConfigIDByName(name string) (string, bool, error)
	// Configs iterates configurations in id order (creation order).
	Configs(fn func(ExportConfiguration) bool) error
	// EnabledConfigsByCursor iterates enabled configurations, lowest Cursor first.
	EnabledConfigsByCursor(fn func(ExportConfiguration) bool) error
	// EnabledConfigsByCheckDue iterates enabled configurations, earliest NextCheckAt first.
	EnabledConfigsByCheckDue(fn func(ExportConfiguration) bool) error
	// EnabledConfigsByScheduleDue iterates enabled configurations, earliest ScheduleDueAt first.
	EnabledConfigsByScheduleDue(fn func(ExportConfiguration) bool) error
	// Secret returns a configuration's sealed secret.
	Secret(configID string) ([]byte, bool, error)

	// Token returns a token by id.
	Token(id string) (Token, bool, error)
	// TokenIDByName finds a token by name, compared case-insensitively.
	TokenIDByName(name string) (string, bool, error)
	// Tokens iterates every token.
	Tokens(fn func(Token) bool) error

	// Job returns a job.
	Job(id string) (ExportJob, bool, error)
	// JobsOf iterates a configuration's jobs, newest first.
	JobsOf(configID string, fn func(ExportJob) bool) error
	// UnfinishedJobs iterates the jobs not SUCCEEDED, oldest first.
	UnfinishedJobs(fn func(ExportJob) bool) error
	// Task returns task index of a job.
	Task(jobID string, index int) (ExportTask, bool, error)
	// Tasks iterates a job's tasks by index.
	Tasks(jobID string, fn func(ExportTask) bool) error

	// EventStats describes the buffered events.
	EventStats() (EventStats, error)
	// ScanEvents iterates the buffered events after seq after, in seq order.
	ScanEvents(after uint64, fn func(seq uint64, record []byte) bool) error
	// EventsAppendedSince returns a seq s such that every buffered event above s-1... more
	// precisely: every buffered event with a seq below s was appended before t. Store searches
	// from there for the first event received at or after t. found is false when every
	// buffered event was appended before t.
	EventsAppendedSince(t time.Time) (s uint64, found bool, err error)
}

// Tx reads and writes within a transaction.
type Tx interface {
	ReadTx
	// Now is the transaction's clock: the database's when the engine is shared by replicas, so
	// leases compare times from one clock.
	Now() time.Time
	// PutMeta sets a metadata key.
	PutMeta(key string, value []byte) error

	// PutConfig stores a configuration, replacing the one with its id, and keeps its indexes:
	// by Name (unique among configurations; ErrConflict when another has it) and, while
	// Enabled, by Cursor, NextCheckAt and ScheduleDueAt.
	PutConfig(c ExportConfiguration) error
	// DeleteConfig removes a configuration, its indexes and its secret.
	DeleteConfig(id string) error
	// PutSecret stores a configuration's sealed secret.
	PutSecret(configID string, sealed []byte) error

	// PutToken stores a token and indexes it by name (case-insensitive; ErrConflict when
	// another token has it).
	PutToken(t Token) error
	// DeleteToken removes a token.
	DeleteToken(id string) error

	// PutJob stores a job and keeps its indexes: by configuration, and among the unfinished
	// while its status is not SUCCEEDED.
	PutJob(j ExportJob) error
	// DeleteJob removes a job and its tasks.
	DeleteJob(id string) error
	// PutTask stores a task, replacing the one with its job and index.
	PutTask(t ExportTask) error

	// AppendEvent appends a record under the next seq, unless an event with the same id is
	// buffered (or was appended earlier in this transaction): then duplicate is true and
	// nothing is stored. Seqs are assigned in commit order: no transaction that commits later
	// gets a lower seq.
	AppendEvent(id uuid.UUID, record []byte, appendedAt time.Time) (seq uint64, duplicate bool, err error)
	// TrimEvents removes buffered events from the oldest on, in the engine's units (a segment,
	// a range of rows), while either the whole unit was exported (seqs at or below
	// p.ExportedThrough) and appended before p.ExportedBefore, or it was appended before
	// p.DropBefore. It stops at the first unit it must keep, so the buffer stays one run of
	// seqs, and reports what it removed. It may stop earlier to keep one transaction short
	// (the writers of a shared engine wait for it): the next trim goes on.
	TrimEvents(p TrimPolicy) (TrimResult, error)
}

// EventIDPrefetcher is implemented by a Tx that looks event ids up faster together than one by
// one (a database: one query instead of a round trip per event). Before appending a group of
// batches, Store passes it every id it is about to append, in order, with its record
// (records[i] is ids[i]'s), so that it may also prepare their storage; AppendEvent's answers do
// not change.
type EventIDPrefetcher interface {
	PrefetchEventIDs(ids []uuid.UUID, records [][]byte) error
}

// HourRun is a run of consecutive buffered events whose event times fall in one hour.
type HourRun struct {
	Hour        int64  // unix hour (event.UnixHour)
	First, Last uint64 // seqs
	Bytes       int64  // the records' bytes
}

// EventHourReader is implemented by a ReadTx that knows the event hours of the buffered events
// without decoding each (an engine that keeps them beside its chunks of events).
type EventHourReader interface {
	// ScanEventHours calls fn with runs covering, in seq order and each once, the buffered
	// events after seq after up to seq to (inclusive), until fn returns false. Runs need not be
	// as long as they could be: two in a row may share an hour.
	ScanEventHours(after, to uint64, fn func(HourRun) bool) error
}

// GroupCommitPipeliner is implemented by an engine whose group commits do part of their work
// before they wait for one another (a database: looking the ids up and compressing the events
// while another holds the writers' lock), so that several running at once keep more than one
// worker busy. Store runs that many group commits at once; one otherwise.
type GroupCommitPipeliner interface {
	ConcurrentGroupCommits() int
}

// EventStats describes the event buffer in an engine.
type EventStats struct {
	// Head is the highest seq ever given (0 when none was); the next event gets Head+1.
	Head uint64
	// Oldest is the lowest buffered seq (0 when the buffer is empty).
	Oldest uint64
	// Events and Bytes count what is buffered (encoded records).
	Events, Bytes int64
	// Units are the engine's trim units (segments), for metrics; 0 when the engine has none.
	Units int
	// OldestAppendedAt is when the oldest buffered event was appended (zero when empty).
	OldestAppendedAt time.Time
}

// TrimPolicy says which buffered events TrimEvents may remove.
type TrimPolicy struct {
	ExportedThrough uint64
	ExportedBefore  time.Time
	DropBefore      time.Time
}

// ErrUnavailable means the engine cannot be reached now; nothing was written. Retry later.
var ErrUnavailable = errors.New("the store is unavailable")
