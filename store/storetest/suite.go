package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
)

// Engine opens one kind of engine for the conformance suite.
type Engine struct {
	// NewData names fresh, empty data: a file path, a database.
	NewData func(t testing.TB) string
	// Open opens an engine over data; opened again after Close, it finds what was written.
	Open func(t testing.TB, data string, opts EngineOptions) (store.Engine, error)
}

// EngineOptions are the engine settings the suite varies.
type EngineOptions struct {
	// Now is the engine's clock; nil for time.Now.
	Now func() time.Time
	// SegmentMaxEvents sizes an engine's trim units, where it has them.
	SegmentMaxEvents int64
}

// Run runs every contract test against the engine. Each test opens its own data, so engines
// that allow it run them in parallel.
func Run(t *testing.T, e Engine) {
	tests := map[string]func(*testing.T, *harness){
		"CreateAndRead": testCreateAndRead, "InvalidCreateStoresNothing": testInvalidCreateStoresNothing,
		"Update": testUpdate, "DestinationChangeVoidsConnectionStatus": testDestinationChangeVoidsConnectionStatus,
		"CheckFailuresCount": testCheckFailuresCount, "EnableDisableDelete": testEnableDisableDelete,
		"Tokens": testTokens, "RevokeToken": testRevokeToken, "BootstrapToken": testBootstrapToken,
		"ConfigurationNames": testConfigurationNames, "DeletingAConfigurationDeletesItsJobsAndTasks": testDeletingAConfigurationDeletesItsJobsAndTasks,
		"WrongMasterKeyIsRefusedAtOpen": testWrongMasterKeyIsRefusedAtOpen, "SecretsSurviveReopen": testSecretsSurviveReopen,
		"AppendReadAndDedup": testAppendReadAndDedup, "FullBufferRefusesWholeBatch": testFullBufferRefusesWholeBatch,
		"ConcurrentAppendsAreAllKept": testConcurrentAppendsAreAllKept, "AppendAfterCloseFails": testAppendAfterCloseFails,
		"Retention": testRetention, "ChangesAreAudited": testChangesAreAudited, "ReadEventsCallbackMayWrite": testReadEventsCallbackMayWrite,
		"StartTimeExportsWhatIsStillBuffered": testStartTimeExportsWhatIsStillBuffered,
		"JobLifecycle":                        testJobLifecycle, "CursorMovesOnlyWithCompletion": testCursorMovesOnlyWithCompletion,
		"LeasesFenceTakenOverAttempts": testLeasesFenceTakenOverAttempts, "CrashedAttemptIsResumed": testCrashedAttemptIsResumed,
		"OldJobsArePruned": testOldJobsArePruned, "DueSchedules": testDueSchedules, "ClaimDueChecks": testClaimDueChecks,
		"ConcurrentWriters": testConcurrentWriters, "EventHours": testEventHours,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, &harness{engine: e, keys: map[string][]byte{}})
		})
	}
}

// harness opens stores over the engine under test, one master key per data.
type harness struct {
	engine Engine
	mu     sync.Mutex
	keys   map[string][]byte
}

// options are what a test varies when it opens a store.
type options struct {
	buffer        store.BufferConfig
	now           func() time.Time
	segmentEvents int64
	key           []byte // nil: the data's own key
}

// new opens a store over fresh data.
func (h *harness) new(t *testing.T) *store.Store {
	t.Helper()
	return h.open(t, h.engine.NewData(t), options{})
}

// open opens a store over data, closed when the test ends.
func (h *harness) open(t *testing.T, data string, o options) *store.Store {
	t.Helper()
	st, err := h.tryOpen(t, data, o)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st
}

func (h *harness) tryOpen(t *testing.T, data string, o options) (*store.Store, error) {
	t.Helper()
	key := o.key
	if key == nil {
		h.mu.Lock()
		if h.keys[data] == nil {
			h.keys[data] = Key()
		}
		key = h.keys[data]
		h.mu.Unlock()
	}
	engine, err := h.engine.Open(t, data, EngineOptions{Now: o.now, SegmentMaxEvents: o.segmentEvents})
	if err != nil {
		return nil, err
	}
	st, err := store.New(t.Context(), engine, store.Config{MasterKey: key, Buffer: o.buffer, Now: o.now, NoTrimLoop: true})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { st.Close() })
	return st, nil
}

const testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

var (
	alice = store.Principal{TokenID: "t-alice", Name: "alice"}
	bob   = store.Principal{TokenID: "t-bob", Name: "bob"}
	admin = store.Principal{TokenID: "bootstrap", Name: "admin"}
)

func accessKeyConfig() store.ExportConfiguration {
	return store.ExportConfiguration{
		Kind: store.KindS3AccessKey, Interval: store.Every12Hours, Enabled: true,
		Bucket: "audit-bucket", Path: "audit/logs", Region: "us-east-1",
		AccessKeyID: "AKIAIOSFODNN7EXAMPLE", CreatedBy: "alice",
	}
}

func assumedRoleConfig() store.ExportConfiguration {
	return store.ExportConfiguration{
		Kind: store.KindS3AssumedRole, Interval: store.EveryHour, Enabled: true,
		Bucket: "audit-bucket", Region: "eu-west-1",
		RoleARN: "arn:aws:iam::123456789012:role/auditexport", CreatedBy: "alice",
	}
}

// IsValidation reports whether err is a *store.ValidationError naming field.
func IsValidation(err error, field string) bool {
	var v *store.ValidationError
	if !errors.As(err, &v) {
		return false
	}
	for _, f := range v.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func batchOf(t testing.TB, first, n int) *event.Batch {
	t.Helper()
	var d event.Decoder
	b, err := d.NDJSON(eventtest.NDJSON(first, n, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), time.Minute), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t testing.TB, st store.EventBuffer, after uint64) []event.Event {
	t.Helper()
	var out []event.Event
	err := st.ReadEvents(t.Context(), after, 0, func(seq uint64, rec []byte) bool {
		e, err := event.Decode(seq, rec)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testSecretsSurviveReopen: secrets are sealed and open again with the same key after a restart.
func testSecretsSurviveReopen(t *testing.T, h *harness) {
	data := h.engine.NewData(t)
	st := h.open(t, data, options{})
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	reopened := h.open(t, data, options{})
	if s, err := reopened.Secret(t.Context(), c.ID); err != nil || s != testSecret {
		t.Fatalf("after reopen: %q, %v", s, err)
	}
	got, err := reopened.Configuration(t.Context(), c.ID)
	if err != nil || got != c {
		t.Fatalf("after reopen: %+v %v, want %+v", got, err, c)
	}
}
