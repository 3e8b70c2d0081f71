package store

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/auditexport/auditexport/event"
)

// The store's contract, in small role interfaces. Consumers (graph, exporter, server) depend on
// these, never on an engine. *Store implements all of them over any Engine; the rules written
// on each method hold for every engine, and storetest.Run checks them.
//
// Common to every method:
//   - ctx bounds the call: when it ends first, the call returns ctx.Err(); a write that returns
//     an error left nothing behind (all or nothing), unless its contract says otherwise.
//   - Errors: ErrNotFound (through *NotFoundError) for a missing record, *ValidationError for
//     bad input (listing every bad field), ErrConflict for a broken uniqueness rule, ErrClosed
//     once the store is closed, ErrUnavailable when the engine cannot be reached (retry later).
//   - Reads see every write that returned before they started (read-your-writes, across
//     replicas of a shared engine too).

// Configurations keeps export configurations and their sealed secrets.
type Configurations interface {
	// CreateConfiguration validates c, gives it an id, timestamps and PENDING status, and stores
	// it with its secret (sealed; access-key configurations only) and the audit event of its
	// creation, atomically. Its cursor starts at the buffer's head (or before the first event
	// received at c.StartTime), so it exports only what arrives after it.
	CreateConfiguration(ctx context.Context, c ExportConfiguration, secret string, by Principal) (ExportConfiguration, error)
	// Configuration returns one configuration.
	Configuration(ctx context.Context, id string) (ExportConfiguration, error)
	// Configurations returns every configuration, oldest first.
	Configurations(ctx context.Context) ([]ExportConfiguration, error)
	// UpdateConfiguration applies change to the stored configuration and, when newSecret is not
	// nil, replaces its secret; the result is validated before anything is written. A change to
	// where or how the service writes voids the last connectivity result (PENDING, Revision+1).
	// An update that changes nothing writes nothing and keeps updatedAt. Fields the service owns
	// (id, kind, cursor, schedule, digest chain, counters) cannot be changed through it.
	UpdateConfiguration(ctx context.Context, id string, by Principal, change Change, newSecret *string) (ExportConfiguration, error)
	// SetEnabled turns exports of a configuration on or off; idempotent.
	SetEnabled(ctx context.Context, id string, by Principal, enabled bool) (ExportConfiguration, error)
	// DeleteConfiguration removes a configuration, its secret, jobs and tasks, and records the
	// audit event, atomically; it returns what was removed.
	DeleteConfiguration(ctx context.Context, id string, by Principal) (ExportConfiguration, error)
	// RecordConnectionCheck stores the result of a check of the given revision (ConnectionSuccess
	// or the error text) and when the next background check is due (zero: unchanged). When the
	// destination changed since (another revision) nothing is written and the current
	// configuration is returned. A check is not an edit: updatedAt stays.
	RecordConnectionCheck(ctx context.Context, id string, revision int64, status string, at, next time.Time) (ExportConfiguration, error)
	// ClaimDueChecks returns up to limit enabled configurations whose background check is due
	// at now, earliest first, and atomically moves their NextCheckAt to now+hold, so that no
	// other caller (another replica) claims them meanwhile; RecordConnectionCheck then sets the
	// real next time.
	ClaimDueChecks(ctx context.Context, now time.Time, hold time.Duration, limit int) ([]ExportConfiguration, error)
	// Secret opens the sealed secret of a configuration. Only code that authenticates to the
	// destination may call it; the value is never logged or returned to a client.
	Secret(ctx context.Context, id string) (string, error)
}

// Tokens keeps API tokens as hashes and authenticates requests.
type Tokens interface {
	// CreateToken issues a token and returns it with its record: the only time the token is
	// seen. Names are unique regardless of case (ErrConflict).
	CreateToken(ctx context.Context, name string, perms []Permission, by Principal) (string, Token, error)
	// Tokens lists the tokens (hashes cleared), by name.
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken deletes the token named name (case-insensitive); a token cannot revoke itself.
	RevokeToken(ctx context.Context, name string, by Principal) (Token, error)
	// SetBootstrapToken makes token the bootstrap admin token; idempotent.
	SetBootstrapToken(ctx context.Context, token string) error
	// HasBootstrapToken reports whether a bootstrap token was set on an earlier start.
	HasBootstrapToken(ctx context.Context) (bool, error)
	// Authenticate returns the principal a token stands for, or ErrUnauthenticated; constant
	// time in the token's secret part.
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// EventBuffer is the durable buffer of audit events, numbered by seq in the order readers see
// them: a reader that has read up to seq N never later finds a new event at or below N.
type EventBuffer interface {
	// AppendEvents stores a batch all or nothing and returns once it is durable (synced or
	// committed). Events whose id is already buffered, or repeated within the batch, are counted
	// as duplicates and not stored again: ids stay deduplicated as long as their event is
	// buffered, which is at least the buffer's MinRetention after export. ErrBufferFull when the
	// batch does not fit the buffer's limits.
	AppendEvents(ctx context.Context, batch *event.Batch) (AppendResult, error)
	// ReadEvents calls fn with each buffered event after seq after, in order, until fn returns
	// false or limit events were read (limit <= 0: no limit). fn runs with no transaction open
	// and may take as long as it likes; the record is valid only during fn.
	ReadEvents(ctx context.Context, after uint64, limit int, fn func(seq uint64, record []byte) bool) error
	// ReadEventHours calls fn with runs of consecutive events of one event hour (HourRun)
	// covering the buffered events after seq after up to seq to, in seq order and each once,
	// until fn returns false; two runs in a row may share an hour. fn runs with no transaction
	// open.
	ReadEventHours(ctx context.Context, after, to uint64, fn func(HourRun) bool) error
	// BufferStatus reports the buffer's size, limits and bounds.
	BufferStatus(ctx context.Context) (BufferStatus, error)
	// Trim removes what retention allows (see BufferConfig) and reports what it removed.
	Trim(ctx context.Context) (TrimResult, error)
}

// Cursors answers where each configuration stands in the buffer. A cursor moves only with the
// completion of the job that exported up to it (Jobs.CompleteJob).
type Cursors interface {
	// PendingEvents is how many buffered events come after cursor.
	PendingEvents(ctx context.Context, cursor uint64) (int64, error)
}

// JobsKept is how many of a configuration's newest jobs Jobs keeps; older finished ones are removed.
const JobsKept = 100

// Jobs keeps export jobs and their tasks. A configuration has at most one unfinished job; its
// range is fixed when it is created, before anything is uploaded, so every attempt writes the
// same objects. The newest JobsKept jobs of a configuration are kept, with their tasks.
//
// Leases: an attempt holds its job until ExportJob.LeaseUntil and renews it while it works; a
// job whose lease ran out may be taken over by another process (StartAttempt), which fences the
// earlier attempt: from then on its RenewLease, PutTask, FailAttempt, InterruptAttempt and
// CompleteJob return ErrLeaseLost and change nothing, so a process that lost its lease can
// neither complete the job nor move the cursor. Safety rests on the fencing, not on clocks.
type Jobs interface {
	// CreateJob fixes a new job for the events after the configuration's cursor up to the head,
	// or returns the configuration's unfinished job. scheduledAt, when not zero, records the
	// schedule boundary served, also when there is nothing to export: then a scheduled job is
	// not created (ErrNothingToExport) and a manual one is recorded as SUCCEEDED with no events.
	// ErrDisabled for a disabled configuration.
	CreateJob(ctx context.Context, configID string, plan ExportPlan, manual bool, scheduledAt time.Time) (ExportJob, error)
	// MarkScheduled records that the schedule boundary at has been served without a job.
	MarkScheduled(ctx context.Context, configID string, at time.Time) error
	// DueSchedules returns the enabled configurations whose next interval boundary has passed
	// at now, earliest first, at most limit.
	DueSchedules(ctx context.Context, now time.Time, limit int) ([]ExportConfiguration, error)
	// RunnableJobs returns the unfinished jobs of enabled configurations that may start an
	// attempt at now: PENDING, FAILED whose retry is due, RUNNING whose lease ran out.
	RunnableJobs(ctx context.Context, now time.Time) ([]ExportJob, error)
	// StartAttempt starts an attempt at a job for owner, leased for ttl: RUNNING, attempts+1.
	// ErrLeaseHeld when another owner's attempt holds an unexpired lease; an error when the job
	// already succeeded.
	StartAttempt(ctx context.Context, id, owner string, ttl time.Duration) (ExportJob, error)
	// RenewLease extends the attempt's lease to ttl from now.
	RenewLease(ctx context.Context, a Attempt, ttl time.Duration) (ExportJob, error)
	// FailAttempt ends the attempt as failed: the reason, and when to try again.
	FailAttempt(ctx context.Context, a Attempt, reason string, next time.Time) (ExportJob, error)
	// InterruptAttempt puts the job back to PENDING after a shutdown cut its attempt short; the
	// interruption does not count as an attempt.
	InterruptAttempt(ctx context.Context, a Attempt) (ExportJob, error)
	// CompleteJob marks the job SUCCEEDED and, atomically with it, moves the configuration's
	// cursor to the end of the job's range, records its digest as the chain's last and the
	// destination as reachable. Events of the range no longer buffered are counted as skipped.
	CompleteJob(ctx context.Context, a Attempt, events, objects, bytes int64, digest DigestRef) (ExportJob, error)
	// PutTask stores a task of the attempt's job, replacing an earlier version of it.
	PutTask(ctx context.Context, a Attempt, t ExportTask) (ExportTask, error)
	// Task returns task index of a job, if an earlier attempt stored it.
	Task(ctx context.Context, jobID string, index int) (ExportTask, bool, error)
	// Job returns one job.
	Job(ctx context.Context, id string) (ExportJob, error)
	// Jobs returns a configuration's jobs, newest first, at most limit (all when limit <= 0).
	Jobs(ctx context.Context, configID string, limit int) ([]ExportJob, error)
	// LatestJobs returns the newest job of each configuration named that has one, in one read.
	LatestJobs(ctx context.Context, configIDs []string) (map[string]ExportJob, error)
	// UnfinishedJobs returns every job that has not succeeded, oldest first.
	UnfinishedJobs(ctx context.Context) ([]ExportJob, error)
	// Tasks returns a job's tasks in order.
	Tasks(ctx context.Context, jobID string) ([]ExportTask, error)
}

// DigestKeys keeps the Ed25519 key that signs export digests, sealed; one per store.
type DigestKeys interface {
	// DigestSigningKey returns the key, generating it on first use.
	DigestSigningKey(ctx context.Context) (ed25519.PrivateKey, error)
}

// Health reports whether the store can serve.
type Health interface {
	// Ready returns nil when the store can read and write now.
	Ready(ctx context.Context) error
}

var (
	_ Configurations = (*Store)(nil)
	_ Tokens         = (*Store)(nil)
	_ EventBuffer    = (*Store)(nil)
	_ Cursors        = (*Store)(nil)
	_ Jobs           = (*Store)(nil)
	_ DigestKeys     = (*Store)(nil)
	_ Health         = (*Store)(nil)
)
