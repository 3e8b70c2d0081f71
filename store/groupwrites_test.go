package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/storetest"
)

// gatedEngine counts write transactions, and holds one open once asked (hold), until released.
type gatedEngine struct {
	store.Engine
	updates atomic.Int32
	hold    atomic.Pointer[chan struct{}]
	held    chan struct{}
}

func (g *gatedEngine) Update(ctx context.Context, fn func(store.Tx) error) error {
	g.updates.Add(1)
	if release := g.hold.Swap(nil); release != nil {
		close(g.held)
		<-*release
	}
	return g.Engine.Update(ctx, fn)
}

// TestJobWritesJoinTheGroupCommit: on bbolt, a job's writes waiting for the group commit under
// way are done in the next one, beside the batches waiting with them; one that fails is
// answered with its error and fails nothing else.
func TestJobWritesJoinTheGroupCommit(t *testing.T) {
	engine, err := bolt.Open(filepath.Join(t.TempDir(), "auditexport.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gated := &gatedEngine{Engine: engine, held: make(chan struct{})}
	st, err := store.New(t.Context(), gated, store.Config{MasterKey: storetest.Key(), NoTrimLoop: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	batches := make([]*event.Batch, 3)
	for i := range batches {
		var d event.Decoder
		if batches[i], err = d.NDJSON(eventtest.NDJSON(i*10, 10, time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), time.Minute), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c, err := st.CreateConfiguration(ctx, accessKeyConfig(), "wJalrXUtnFEMI/K7MDENG", store.Principal{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvents(ctx, batches[0]); err != nil {
		t.Fatal(err)
	}
	job, err := st.CreateJob(ctx, c.ID, store.ExportPlan{MaxFileEventBytes: 1 << 20, MaxOpenFiles: 1}, true, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	gated.hold.Store(&release)
	before := gated.updates.Load()
	var wg sync.WaitGroup
	appendBatch := func(b *event.Batch) {
		if r, err := st.AppendEvents(ctx, b); err != nil || r.Accepted != 10 {
			t.Errorf("append: %+v %v", r, err)
		}
	}
	wg.Go(func() { appendBatch(batches[1]) }) // its group commit is held
	<-gated.held
	var started store.ExportJob
	var startErr, missingErr error
	wg.Go(func() { appendBatch(batches[2]) })
	wg.Go(func() { started, startErr = st.StartAttempt(ctx, job.ID, "owner", time.Minute) })
	wg.Go(func() { _, missingErr = st.StartAttempt(ctx, "no-such-job", "owner", time.Minute) })
	time.Sleep(200 * time.Millisecond) // all three wait for the held group commit
	close(release)
	wg.Wait()

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
