package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/auditexport/auditexport/store"
)

var testPlan = store.ExportPlan{MaxFileEventBytes: 1 << 20, MaxOpenFiles: 4}

// exportSetup opens a store with one configuration and n events buffered after its creation.
func exportSetup(t *testing.T, h *harness, o options, n int) (*store.Store, store.ExportConfiguration) {
	t.Helper()
	st := h.open(t, h.engine.NewData(t), o)
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		if _, err := st.AppendEvents(t.Context(), batchOf(t, 0, n)); err != nil {
			t.Fatal(err)
		}
	}
	return st, c
}

func testJobLifecycle(t *testing.T, h *harness) {
	clk := &clock{now: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	st, c := exportSetup(t, h, options{now: clk.Now}, 10)
	ctx := t.Context()
	job, err := st.CreateJob(ctx, c.ID, testPlan, false, clk.Now())
	if err != nil || job.Status != store.JobPending || job.From != c.Cursor || job.To != c.Cursor+11 || job.Attempts != 0 {
		t.Fatalf("job %+v %v; want the creation's audit event and 10 events", job, err)
	}
	// One unfinished job per configuration: asking again returns it.
	if again, err := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{}); err != nil || again.ID != job.ID {
		t.Fatalf("second CreateJob: %+v %v", again, err)
	}
	if runnable, _ := st.RunnableJobs(ctx, clk.Now()); len(runnable) != 1 || runnable[0].ID != job.ID {
		t.Fatalf("runnable %+v", runnable)
	}
	job, err = st.StartAttempt(ctx, job.ID, "replica-a", time.Minute)
	if err != nil || job.Status != store.JobRunning || job.Attempts != 1 || job.Owner != "replica-a" || !job.LeaseUntil.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("started %+v %v", job, err)
	}
	task := store.ExportTask{ID: "t0", JobID: job.ID, Index: 0, Key: "k0", Offset: job.From + 1, Limit: 11, Status: store.JobRunning}
	if _, err := st.PutTask(ctx, job.Attempt(), task); err != nil {
		t.Fatal(err)
	}
	next := clk.Now().Add(10 * time.Second)
	failed, err := st.FailAttempt(ctx, job.Attempt(), "Error exporting to S3 - NoSuchBucket", next)
	if err != nil || failed.Status != store.JobFailed || failed.FailureReason == "" || !failed.NextAttemptAt.Equal(next) {
		t.Fatalf("failed %+v %v", failed, err)
	}
	if runnable, _ := st.RunnableJobs(ctx, clk.Now()); len(runnable) != 0 {
		t.Fatalf("a failed job is runnable before its retry: %+v", runnable)
	}
	clk.Advance(11 * time.Second)
	if runnable, _ := st.RunnableJobs(ctx, clk.Now()); len(runnable) != 1 {
		t.Fatalf("a failed job is not runnable after its retry time: %+v", runnable)
	}
	job, err = st.StartAttempt(ctx, job.ID, "replica-a", time.Minute)
	if err != nil || job.Attempts != 2 {
		t.Fatalf("second attempt %+v %v", job, err)
	}
	if got, found, err := st.Task(ctx, job.ID, 0); err != nil || !found || got.Key != "k0" {
		t.Fatalf("the first attempt's task: %+v %v %v", got, found, err)
	}
	digest := store.DigestRef{Key: "d/1.json", SHA256: "ab"}
	done, err := st.CompleteJob(ctx, job.Attempt(), 11, 1, 1234, digest)
	if err != nil || done.Status != store.JobSucceeded || done.EventCount != 11 || done.ObjectCount != 1 || done.Owner != "" {
		t.Fatalf("completed %+v %v", done, err)
	}
	after, _ := st.Configuration(ctx, c.ID)
	if after.Cursor != job.To || after.LastDigest != digest || after.ConnectionStatus != store.ConnectionSuccess {
		t.Fatalf("configuration after the job: %+v", after)
	}
	if n := Pending(t, st, after.Cursor); n != 0 {
		t.Fatalf("%d events pending after the export", n)
	}
	if _, err := st.StartAttempt(ctx, job.ID, "replica-a", time.Minute); err == nil {
		t.Fatal("a succeeded job was started again")
	}
	if unfinished, _ := st.UnfinishedJobs(ctx); len(unfinished) != 0 {
		t.Fatalf("unfinished after success: %+v", unfinished)
	}
	// Nothing waiting: a scheduled run creates nothing, a manual one a finished empty job.
	if _, err := st.CreateJob(ctx, c.ID, testPlan, false, clk.Now()); !errors.Is(err, store.ErrNothingToExport) {
		t.Fatalf("scheduled with nothing pending: %v", err)
	}
	empty, err := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{})
	if err != nil || empty.Status != store.JobSucceeded || empty.From != empty.To {
		t.Fatalf("manual with nothing pending: %+v %v", empty, err)
	}
	jobs, _ := st.Jobs(ctx, c.ID, 0)
	latest, _ := st.LatestJobs(ctx, []string{c.ID, "01a1ffdb-3f23-7df1-80b5-645a8cda7506"})
	if len(jobs) != 2 || jobs[0].ID != empty.ID || jobs[1].ID != job.ID || len(latest) != 1 || latest[c.ID].ID != empty.ID {
		t.Fatalf("jobs %+v, latest %+v", jobs, latest)
	}
	// A disabled configuration gets no job, and its unfinished one does not run.
	st.AppendEvents(ctx, batchOf(t, 100, 1))
	pending, _ := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{})
	st.SetEnabled(ctx, c.ID, bob, false)
	if _, err := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{}); !errors.Is(err, store.ErrDisabled) {
		t.Fatalf("job of a disabled configuration: %v", err)
	}
	if runnable, _ := st.RunnableJobs(ctx, clk.Now()); len(runnable) != 0 || pending.Status != store.JobPending {
		t.Fatalf("runnable while disabled: %+v (job %+v)", runnable, pending)
	}
}

// The cursor moves only with a completed job: a failed, interrupted or abandoned attempt
// leaves it, and the retry covers the same range.
func testCursorMovesOnlyWithCompletion(t *testing.T, h *harness) {
	st, c := exportSetup(t, h, options{}, 5)
	ctx := t.Context()
	job, _ := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{})
	job, _ = st.StartAttempt(ctx, job.ID, "a", time.Minute)
	st.FailAttempt(ctx, job.Attempt(), "failed", time.Now())
	job, _ = st.StartAttempt(ctx, job.ID, "a", time.Minute)
	interrupted, err := st.InterruptAttempt(ctx, job.Attempt())
	if err != nil || interrupted.Status != store.JobPending || interrupted.Attempts != 1 {
		t.Fatalf("interrupted %+v %v; want PENDING, the interruption not counted", interrupted, err)
	}
	if now, _ := st.Configuration(ctx, c.ID); now.Cursor != c.Cursor {
		t.Fatalf("cursor moved to %d without a completed job", now.Cursor)
	}
	st.AppendEvents(ctx, batchOf(t, 50, 5))
	again, _ := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{})
	if again.ID != job.ID || again.From != job.From || again.To != job.To {
		t.Fatalf("the retry's range changed: %+v, was %+v", again, job)
	}
}

// A process that lost its lease can neither complete the job nor move the cursor.
func testLeasesFenceTakenOverAttempts(t *testing.T, h *harness) {
	clk := &clock{now: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	st, c := exportSetup(t, h, options{now: clk.Now}, 5)
	ctx := t.Context()
	job, _ := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{})
	first, err := st.StartAttempt(ctx, job.ID, "replica-a", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartAttempt(ctx, job.ID, "replica-b", 30*time.Second); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("takeover of a live lease: %v", err)
	}
	clk.Advance(20 * time.Second)
	if renewed, err := st.RenewLease(ctx, first.Attempt(), 30*time.Second); err != nil || !renewed.LeaseUntil.Equal(clk.Now().Add(30*time.Second)) {
		t.Fatalf("renew: %+v %v", renewed, err)
	}
	clk.Advance(31 * time.Second) // replica-a stopped renewing
	if runnable, _ := st.RunnableJobs(ctx, clk.Now()); len(runnable) != 1 {
		t.Fatalf("a job whose lease ran out is not runnable: %+v", runnable)
	}
	second, err := st.StartAttempt(ctx, job.ID, "replica-b", 30*time.Second)
	if err != nil || second.Attempts != 2 || second.Owner != "replica-b" {
		t.Fatalf("takeover: %+v %v", second, err)
	}
	stale := first.Attempt()
	for name, call := range map[string]func() error{
		"RenewLease": func() error { _, err := st.RenewLease(ctx, stale, time.Minute); return err },
		"PutTask": func() error {
			_, err := st.PutTask(ctx, stale, store.ExportTask{ID: "x", JobID: job.ID, Key: "stale"})
			return err
		},
		"FailAttempt":      func() error { _, err := st.FailAttempt(ctx, stale, "x", clk.Now()); return err },
		"InterruptAttempt": func() error { _, err := st.InterruptAttempt(ctx, stale); return err },
		"CompleteJob":      func() error { _, err := st.CompleteJob(ctx, stale, 6, 1, 1, store.DigestRef{}); return err },
	} {
		if err := call(); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("%s by the fenced attempt: %v, want ErrLeaseLost", name, err)
		}
	}
	if now, _ := st.Configuration(ctx, c.ID); now.Cursor != c.Cursor {
		t.Fatalf("the fenced attempt moved the cursor to %d", now.Cursor)
	}
	if _, found, _ := st.Task(ctx, job.ID, 0); found {
		t.Fatal("the fenced attempt stored a task")
	}
	if done, err := st.CompleteJob(ctx, second.Attempt(), 6, 1, 1, store.DigestRef{}); err != nil || done.Status != store.JobSucceeded {
		t.Fatalf("the new holder's completion: %+v %v", done, err)
	}
}

// A process that crashes mid-attempt leaves its job RUNNING; the job runs again: at once when
// the engine is exclusive to one process (its leases died with it), else when the lease ends.
func testCrashedAttemptIsResumed(t *testing.T, h *harness) {
	clk := &clock{now: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	data := h.engine.NewData(t)
	st := h.open(t, data, options{now: clk.Now})
	c, _ := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	job, _ := st.CreateJob(t.Context(), c.ID, testPlan, true, time.Time{})
	if _, err := st.StartAttempt(t.Context(), job.ID, "crashed", time.Minute); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = h.open(t, data, options{now: clk.Now})
	clk.Advance(61 * time.Second)
	runnable, err := st.RunnableJobs(t.Context(), clk.Now())
	if err != nil || len(runnable) != 1 || runnable[0].ID != job.ID {
		t.Fatalf("after the crash: runnable %+v %v", runnable, err)
	}
	resumed, err := st.StartAttempt(t.Context(), job.ID, "restarted", time.Minute)
	if err != nil || resumed.From != job.From || resumed.To != job.To {
		t.Fatalf("resumed %+v %v", resumed, err)
	}
}

func testOldJobsArePruned(t *testing.T, h *harness) {
	st, c := exportSetup(t, h, options{}, 0)
	ctx := t.Context()
	complete := func() store.ExportJob {
		t.Helper()
		job, err := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{})
		if err == nil {
			job, err = st.StartAttempt(ctx, job.ID, "a", time.Minute)
		}
		if err == nil {
			job, err = st.CompleteJob(ctx, job.Attempt(), int64(job.To-job.From), 1, 1, store.DigestRef{})
		}
		if err != nil {
			t.Fatal(err)
		}
		return job
	}
	oldest := complete() // the creation's audit event
	for range 104 {      // nothing pending: each is recorded as an empty, finished job
		if _, err := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := st.Jobs(ctx, c.ID, 0)
	st.AppendEvents(ctx, batchOf(t, 0, 1))
	newest := complete() // a completed job prunes beyond the newest 100
	jobs, _ := st.Jobs(ctx, c.ID, 0)
	if len(before) != 105 || len(jobs) != 100 || jobs[0].ID != newest.ID {
		t.Fatalf("%d jobs before, %d after (newest %s, want %s)", len(before), len(jobs), jobs[0].ID, newest.ID)
	}
	if _, err := st.Job(ctx, oldest.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the oldest job was kept: %v", err)
	}
}

func testDueSchedules(t *testing.T, h *harness) {
	clk := &clock{now: time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC)}
	st, c := exportSetup(t, h, options{now: clk.Now}, 0)
	ctx := t.Context()
	if due, _ := st.DueSchedules(ctx, clk.Now(), 10); len(due) != 1 || due[0].ID != c.ID {
		t.Fatalf("a new configuration is not due for its first scheduling: %+v", due)
	}
	// Every 12 hours: served at 08:00, due again at the 12:00 boundary.
	if err := st.MarkScheduled(ctx, c.ID, clk.Now().Truncate(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if due, _ := st.DueSchedules(ctx, clk.Now(), 10); len(due) != 0 {
		t.Fatalf("due before the next boundary: %+v", due)
	}
	clk.Advance(3 * time.Hour)
	if due, _ := st.DueSchedules(ctx, clk.Now(), 10); len(due) != 0 {
		t.Fatalf("due half an hour before the boundary: %+v", due)
	}
	clk.Advance(30 * time.Minute)
	due, _ := st.DueSchedules(ctx, clk.Now(), 10)
	if len(due) != 1 || !due[0].ScheduleDueAt.Equal(clk.Now()) {
		t.Fatalf("due at the boundary: %+v", due)
	}
	st.SetEnabled(ctx, c.ID, bob, false)
	if due, _ := st.DueSchedules(ctx, clk.Now(), 10); len(due) != 0 {
		t.Fatalf("a disabled configuration is due: %+v", due)
	}
}

func testClaimDueChecks(t *testing.T, h *harness) {
	clk := &clock{now: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	st, c := exportSetup(t, h, options{now: clk.Now}, 0)
	ctx := t.Context()
	claimed, err := st.ClaimDueChecks(ctx, clk.Now(), time.Minute, 10)
	if err != nil || len(claimed) != 1 || claimed[0].ID != c.ID {
		t.Fatalf("a new configuration's check is not due: %+v %v", claimed, err)
	}
	if again, _ := st.ClaimDueChecks(ctx, clk.Now(), time.Minute, 10); len(again) != 0 {
		t.Fatalf("a claimed check was claimed again: %+v", again)
	}
	next := clk.Now().Add(24 * time.Hour)
	if _, err := st.RecordConnectionCheck(ctx, c.ID, c.Revision, store.ConnectionSuccess, clk.Now(), next); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if due, _ := st.ClaimDueChecks(ctx, clk.Now(), time.Minute, 10); len(due) != 0 {
		t.Fatalf("a passing check is due again after 2 minutes: %+v", due)
	}
	if due, _ := st.ClaimDueChecks(ctx, next, time.Minute, 10); len(due) != 1 {
		t.Fatalf("not due at its next check: %+v", due)
	}
	// A change to the destination makes its check due at once.
	clk.Advance(time.Hour)
	st.UpdateConfiguration(ctx, c.ID, bob, func(x *store.ExportConfiguration) error { x.Bucket = "other-bucket"; return nil }, nil)
	if due, _ := st.ClaimDueChecks(ctx, clk.Now(), time.Minute, 10); len(due) != 1 {
		t.Fatalf("a changed destination is not due: %+v", due)
	}
}

// Writers of every kind at once: every write lands, seqs stay dense, no job is lost.
func testConcurrentWriters(t *testing.T, h *harness) {
	st := h.new(t)
	ctx := t.Context()
	const workers = 6
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range workers {
		wg.Go(func() {
			c, err := st.CreateConfiguration(ctx, accessKeyConfig(), testSecret, alice)
			if err != nil {
				errs <- err
				return
			}
			for i := range 5 {
				if _, err := st.AppendEvents(ctx, batchOf(t, (w*5+i)*20, 20)); err != nil {
					errs <- err
					return
				}
				job, err := st.CreateJob(ctx, c.ID, testPlan, true, time.Time{})
				if err == nil && !job.Finished() {
					if job, err = st.StartAttempt(ctx, job.ID, fmt.Sprint("w", w), time.Minute); err == nil {
						_, err = st.CompleteJob(ctx, job.Attempt(), int64(job.To-job.From), 1, 1, store.DigestRef{})
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	events := readAll(t, st, 0)
	if want := workers*5*20 + workers; len(events) != want { // the events and each creation's audit event
		t.Fatalf("%d events, want %d", len(events), want)
	}
	for i, e := range events {
		if e.Seq != uint64(i+1) {
			t.Fatalf("seqs are not dense: event %d has seq %d", i, e.Seq)
		}
	}
	configs, _ := st.Configurations(ctx)
	for _, c := range configs {
		jobs, _ := st.Jobs(ctx, c.ID, 0)
		if len(jobs) != 5 || c.Cursor != jobs[0].To {
			t.Fatalf("configuration %s: %d jobs, cursor %d, newest job ends at %d", c.ID, len(jobs), c.Cursor, jobs[0].To)
		}
	}
}
