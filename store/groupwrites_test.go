package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/storetest"
)

// gatedEngine counts write transactions, holds one open once asked (hold) until released, and
// fails every append while failAppends is set.
type gatedEngine struct {
	store.Engine
	updates     atomic.Int32
	hold        atomic.Pointer[chan struct{}]
	held        chan struct{}
	failAppends atomic.Bool
}

var errAppendFailed = errors.New("append failed")

func (g *gatedEngine) Update(ctx context.Context, fn func(store.Tx) error) error {
	g.updates.Add(1)
	if release := g.hold.Swap(nil); release != nil {
		close(g.held)
		<-*release
	}
	return g.Engine.Update(ctx, func(tx store.Tx) error { return fn(failingTx{tx, g}) })
}

type failingTx struct {
	store.Tx
	g *gatedEngine
}

func (f failingTx) AppendEvent(id uuid.UUID, record []byte, at time.Time) (uint64, bool, error) {
	if f.g.failAppends.Load() {
		return 0, false, errAppendFailed
	}
	return f.Tx.AppendEvent(id, record, at)
}

// openGated opens a store on bbolt through a gatedEngine, with one configuration, a batch of 10
// events appended and a job to export it; it returns two more batches.
func openGated(t *testing.T) (*store.Store, *gatedEngine, store.ExportJob, []*event.Batch) {
	engine, err := bolt.Open(filepath.Join(t.TempDir(), "auditexport.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gated := &gatedEngine{Engine: engine, held: make(chan struct{})}
	st, err := store.New(t.Context(), gated, store.Config{MasterKey: storetest.Key(), NoTrimLoop: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	batches := make([]*event.Batch, 3)
	for i := range batches {
		var d event.Decoder
		if batches[i], err = d.NDJSON(eventtest.NDJSON(i*10, 10, time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), time.Minute), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), "wJalrXUtnFEMI/K7MDENG", store.Principal{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvents(t.Context(), batches[0]); err != nil {
		t.Fatal(err)
	}
	job, err := st.CreateJob(t.Context(), c.ID, store.ExportPlan{MaxFileEventBytes: 1 << 20, MaxOpenFiles: 1}, true, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return st, gated, job, batches[1:]
}

// whileHeld holds the next group commit, which first's own commit begins, runs the others
// meanwhile, and releases it once they all wait for the next one.
func whileHeld(t *testing.T, gated *gatedEngine, first func(), others ...func()) {
	release := make(chan struct{})
	gated.hold.Store(&release)
	var wg sync.WaitGroup
	wg.Go(first)
	<-gated.held
	for _, f := range others {
		wg.Go(f)
	}
	waitForQueued(t, len(others))
	close(release)
	wg.Wait()
}

// waitForQueued waits until n goroutines wait to hand a batch or a write to the group
// committer, as their stacks show.
func waitForQueued(t *testing.T, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		queued := 0
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, "[select") && (strings.Contains(g, "store.(*Store).AppendEvents(") || strings.Contains(g, "store.(*Store).updateInGroup(")) {
				queued++
			}
		}
		if queued == n {
			return
		}
	}
	t.Fatalf("%d goroutines never all waited for the group committer", n)
}

// TestJobWritesJoinTheGroupCommit: on bbolt, a job's writes waiting for the group commit under
// way are done in the next one, beside the batches waiting with them; one that fails is
// answered with its error and fails nothing else.
func TestJobWritesJoinTheGroupCommit(t *testing.T) {
	st, gated, job, batches := openGated(t)
	ctx := t.Context()
	appendBatch := func(b *event.Batch) {
		if r, err := st.AppendEvents(ctx, b); err != nil || r.Accepted != 10 {
			t.Errorf("append: %+v %v", r, err)
		}
	}
	before := gated.updates.Load()
	var started store.ExportJob
	var startErr, missingErr error
	whileHeld(t, gated, func() { appendBatch(batches[0]) },
		func() { appendBatch(batches[1]) },
		func() { started, startErr = st.StartAttempt(ctx, job.ID, "owner", time.Minute) },
		func() { _, missingErr = st.StartAttempt(ctx, "no-such-job", "owner", time.Minute) })

	if startErr != nil || started.Status != store.JobRunning || started.Owner != "owner" {
		t.Fatalf("the attempt beside the batch: %+v %v", started, startErr)
	}
	var notFound *store.NotFoundError
	if !errors.As(missingErr, &notFound) {
		t.Fatalf("an attempt at a missing job: %v, want not found", missingErr)
	}
	// The held group commit, then the next group: once with the failing write, once without.
	if n := gated.updates.Load() - before; n != 3 {
		t.Errorf("%d write transactions, want 3: the held one, and the group of a batch and two writes tried twice", n)
	}
	stored, err := st.Job(ctx, job.ID)
	if err != nil || stored.Status != store.JobRunning || stored.Attempts != 1 {
		t.Fatalf("stored job: %+v %v", stored, err)
	}
	n := 0
	if err := st.ReadEvents(ctx, 0, 0, func(uint64, []byte) bool { n++; return true }); err != nil || n < 30 {
		t.Fatalf("%d events buffered (%v), want the 30 appended and the service's own", n, err)
	}
}

// TestBatchFailingItsGroupFailsNoWrite: a batch whose append fails the group commit is answered
// with the failure, and the job's write waiting in the same group is done alone.
func TestBatchFailingItsGroupFailsNoWrite(t *testing.T) {
	st, gated, job, batches := openGated(t)
	ctx := t.Context()
	gated.failAppends.Store(true)
	var appendErr, startErr error
	var started store.ExportJob
	whileHeld(t, gated, func() { _, _ = st.StartAttempt(ctx, job.ID, "first", time.Nanosecond) },
		func() { _, appendErr = st.AppendEvents(ctx, batches[0]) },
		func() { started, startErr = st.StartAttempt(ctx, job.ID, "owner", time.Minute) })
	if !errors.Is(appendErr, errAppendFailed) {
		t.Fatalf("the failing batch: %v, want its failure", appendErr)
	}
	if startErr != nil || started.Owner != "owner" || started.Attempts != 2 {
		t.Fatalf("the attempt beside the failing batch: %+v %v", started, startErr)
	}
}
