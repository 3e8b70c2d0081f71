package exporter_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

type exportFixture struct {
	srv      *s3test.Server
	store    *store.Store
	exporter *exporter.Exporter
	bucket   string
	config   store.ExportConfiguration
}

func newExportFixture(t *testing.T, cfg exporter.ExporterConfig) exportFixture {
	t.Helper()
	return newExportFixtureOn(t, cfg, storetest.New(t))
}

// newExportFixtureOn runs an exporter over st and creates a configuration for a fresh bucket
// with a PutObject-only user.
func newExportFixtureOn(t *testing.T, cfg exporter.ExporterConfig, st *store.Store) exportFixture {
	t.Helper()
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	clients := exporter.NewClients(exporter.ClientsConfig{AWS: s3test.ServiceAWS(t, "unused", "unused-secret", ""), Transport: exporter.LoopbackTransport(t)})
	cfg.TempDir = filepath.Join(t.TempDir(), "export")
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = 200*time.Millisecond, time.Second
	}
	cfg.ScanInterval = 100 * time.Millisecond
	x := exporter.NewExporter(cfg, st, clients)
	ctx, cancel := context.WithCancel(context.Background())
	done := x.Start(ctx)
	t.Cleanup(func() {
		cancel()
		<-done
	})
	c, err := st.CreateConfiguration(ctx, store.ExportConfiguration{Kind: store.KindS3AccessKey, Interval: store.Every24Hours, Enabled: true,
		Bucket: bucket, Path: "audit/tenant=acme", Region: "us-east-1", Endpoint: srv.Endpoint, AccessKeyID: key}, secret, store.Principal{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return exportFixture{srv, st, x, bucket, c}
}

func (f exportFixture) ingest(t *testing.T, body []byte) {
	t.Helper()
	var d event.Decoder
	b, err := d.NDJSON(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AppendEvents(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestExportDeliversEveryEventOnce(t *testing.T) {
	// Small files and row groups, so one export makes many objects and row groups.
	f := newExportFixture(t, exporter.ExporterConfig{MaxFileEventBytes: 200 << 10, RowGroupBytes: 40 << 10, MaxOpenFiles: 2})
	start := time.Date(2026, 11, 20, 21, 30, 0, 0, time.UTC)
	f.ingest(t, eventtest.NDJSON(0, 1500, start, 17*time.Second)) // about 7 hours, across midnight
	// Late events: older hours arriving after newer ones, and events with nulls and extra fields.
	f.ingest(t, eventtest.NDJSON(5000, 300, start.Add(-3*time.Hour), time.Minute))
	f.ingest(t, []byte(`{"id":"0e9d1b3a-6f2c-4d8e-9a1b-2c3d4e5f6a7b","eventTimestamp":"2026-11-21T01:02:03.456789Z","tenantId":null,"actor":{"id":"svc","team":"sre"},"extra":{"a":[1,"b",null]}}`+"\n"+
		`{"id":"1f8e2c4b-7a3d-4e9f-8b2c-3d4e5f6a7b8c","eventTimestamp":"2026-11-21T01:59:59.999999Z"}`))
	want := exporttest.Buffered(t, f.store, f.config.Cursor)

	job, err := f.exporter.RunNow(context.Background(), f.config.ID)
	if err != nil || job.Status != store.JobSucceeded {
		t.Fatalf("RunNow: %+v %v", job, err)
	}
	if job.EventCount != int64(len(want)) || job.ObjectCount < 10 || job.Attempts != 1 || job.From != f.config.Cursor {
		t.Fatalf("job %+v: want %d events in at least 10 objects", job, len(want))
	}
	tasks, err := f.store.Tasks(t.Context(), job.ID)
	if err != nil || int64(len(tasks)) != job.ObjectCount {
		t.Fatalf("%d tasks for %d objects: %v", len(tasks), job.ObjectCount, err)
	}
	for _, task := range tasks {
		if task.Status != store.JobSucceeded || task.Attempts != 1 || task.Limit <= 0 || task.Bytes <= 0 {
			t.Errorf("task %+v", task)
		}
		if f.srv.Head(t, f.bucket, task.Key).ChecksumCRC32C == nil {
			t.Errorf("object %s was uploaded without a CRC32C checksum", task.Key)
		}
	}
	rows := exporttest.Exported(t, f.srv, f.bucket, "audit/tenant=acme", f.config.ID)
	exporttest.CheckExactlyOnce(t, rows, want)

	c, _ := f.store.Configuration(t.Context(), f.config.ID)
	if c.Cursor != job.To || c.ConnectionStatus != store.ConnectionSuccess {
		t.Fatalf("after the job: cursor %d (want %d), status %q", c.Cursor, job.To, c.ConnectionStatus)
	}

	// Nothing new: a recorded empty job and no new objects.
	empty, err := f.exporter.RunNow(context.Background(), f.config.ID)
	if err != nil || empty.Status != store.JobSucceeded || empty.EventCount != 0 || empty.ObjectCount != 0 {
		t.Fatalf("empty run: %+v %v", empty, err)
	}
	// New events: only they are exported next.
	f.ingest(t, eventtest.NDJSON(9000, 50, start, time.Minute))
	next, err := f.exporter.RunNow(context.Background(), f.config.ID)
	if err != nil || next.EventCount != 50 || next.From != job.To {
		t.Fatalf("second export: %+v %v", next, err)
	}
	all := exporttest.Buffered(t, f.store, f.config.Cursor)
	exporttest.CheckExactlyOnce(t, exporttest.Exported(t, f.srv, f.bucket, "audit/tenant=acme", f.config.ID), all)
}

func TestExportSurvivesAnOutage(t *testing.T) {
	minio := s3test.StartPrivate(t)
	st := storetest.New(t)
	x := exporter.NewExporter(exporter.ExporterConfig{
		TempDir: filepath.Join(t.TempDir(), "export"), ScanInterval: 100 * time.Millisecond,
		RetryMin: 300 * time.Millisecond, RetryMax: time.Second, MaxFileEventBytes: 100 << 10,
	}, st, exporter.NewClients(exporter.ClientsConfig{AWS: s3test.ServiceAWS(t, "unused", "unused-secret", ""), Transport: exporter.LoopbackTransport(t), MaxAttempts: 1}))
	ctx, cancel := context.WithCancel(context.Background())
	done := x.Start(ctx)
	t.Cleanup(func() {
		cancel()
		<-done
	})
	c, err := st.CreateConfiguration(ctx, store.ExportConfiguration{Kind: store.KindS3AccessKey, Interval: store.EveryHour, Enabled: true,
		Bucket: minio.Bucket, Path: "audit", Region: "us-east-1", Endpoint: minio.Endpoint, AccessKeyID: minio.PutOnlyAccessKey},
		minio.PutOnlySecret, store.Principal{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f := exportFixture{store: st}
	f.ingest(t, eventtest.NDJSON(0, 2000, time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC), 5*time.Second))
	want := exporttest.Buffered(t, st, c.Cursor)

	minio.Stop()
	job, err := x.RunNow(context.Background(), c.ID)
	if err != nil || job.Status != store.JobFailed || job.Attempts != 1 || !strings.Contains(job.FailureReason, "NetworkError") {
		t.Fatalf("export during the outage: %+v %v", job, err)
	}
	cfg, _ := st.Configuration(ctx, c.ID)
	if !strings.HasPrefix(cfg.ConnectionStatus, "Error exporting to S3 using AccessKey "+minio.PutOnlyAccessKey+" - NetworkError: no reply from ") {
		t.Fatalf("connectionStatus during the outage: %q", cfg.ConnectionStatus)
	}
	if cfg.Cursor != c.Cursor {
		t.Fatalf("the cursor moved although nothing was exported: %d -> %d", c.Cursor, cfg.Cursor)
	}
	tasks, _ := st.Tasks(ctx, job.ID)
	if len(tasks) == 0 || tasks[0].Status != store.JobFailed || tasks[0].Attempts != 1 || !strings.Contains(tasks[0].FailureReason, "NetworkError") {
		t.Fatalf("tasks during the outage: %+v", tasks)
	}
	// The job is retried with backoff while the server is down.
	deadline := time.Now().Add(15 * time.Second)
	for job.Attempts < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries: %+v", job)
		}
		time.Sleep(100 * time.Millisecond)
		job, _ = st.Job(ctx, job.ID)
	}

	minio.Start()
	deadline = time.Now().Add(30 * time.Second)
	for job.Status != store.JobSucceeded {
		if time.Now().After(deadline) {
			t.Fatalf("not exported after the server came back: %+v", job)
		}
		time.Sleep(100 * time.Millisecond)
		job, _ = st.Job(ctx, job.ID)
	}
	exporttest.CheckExactlyOnce(t, exporttest.Exported(t, minio.Server, minio.Bucket, "audit", c.ID), want)
	tasks, _ = st.Tasks(ctx, job.ID)
	if tasks[0].Status != store.JobSucceeded || tasks[0].Attempts < 2 || tasks[0].FailureReason != "" {
		t.Fatalf("first task after recovery: %+v", tasks[0])
	}
	if cfg, _ := st.Configuration(ctx, c.ID); cfg.ConnectionStatus != store.ConnectionSuccess || cfg.Cursor != job.To {
		t.Fatalf("after recovery: status %q cursor %d", cfg.ConnectionStatus, cfg.Cursor)
	}
}

// silentEndpoint accepts connections and never answers, so an upload to it is in flight until
// cut off.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestShutdownInterruptsAndResumes(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	st := storetest.New(t)
	clients := exporter.NewClients(exporter.ClientsConfig{AWS: s3test.ServiceAWS(t, "unused", "unused-secret", ""), Transport: exporter.LoopbackTransport(t)})
	cfg := exporter.ExporterConfig{TempDir: filepath.Join(t.TempDir(), "export"), ScanInterval: 50 * time.Millisecond, DrainTimeout: 300 * time.Millisecond}
	c, err := st.CreateConfiguration(t.Context(), store.ExportConfiguration{Kind: store.KindS3AccessKey, Interval: store.EveryHour, Enabled: true,
		Bucket: bucket, Path: "audit", Region: "us-east-1", Endpoint: silentEndpoint(t), AccessKeyID: key}, secret, store.Principal{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f := exportFixture{store: st}
	f.ingest(t, eventtest.NDJSON(0, 500, time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC), time.Second))
	want := exporttest.Buffered(t, st, c.Cursor)

	first := exporter.NewExporter(cfg, st, clients)
	ctx, shutdown := context.WithCancel(context.Background())
	stopped := first.Start(ctx)
	job, err := st.CreateJob(ctx, c.ID, first.Plan(), true, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for job.Status != store.JobRunning { // the scheduler picks the job up and starts uploading
		time.Sleep(20 * time.Millisecond)
		job, _ = st.Job(ctx, job.ID)
	}
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	shutdown()
	<-stopped
	if took := time.Since(begin); took > 5*time.Second {
		t.Fatalf("shutdown took %v with a 300ms drain", took)
	}
	job, _ = st.Job(t.Context(), job.ID)
	if job.Status != store.JobPending || job.Attempts != 0 || job.FailureReason != "" {
		t.Fatalf("after an interrupted attempt: %+v, want PENDING, not counted as a failure", job)
	}
	if cfg, _ := st.Configuration(t.Context(), c.ID); cfg.Cursor != c.Cursor {
		t.Fatalf("the cursor moved: %d -> %d", c.Cursor, cfg.Cursor)
	}

	// The destination is fixed and the server starts again: the same job resumes and finishes.
	if _, err := st.UpdateConfiguration(t.Context(), c.ID, store.Principal{Name: "test"}, func(x *store.ExportConfiguration) error {
		x.Endpoint = srv.Endpoint
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	cfg.DrainTimeout = 0
	_, stop := runExporterWith(t, st, cfg, clients)
	defer stop()
	deadline := time.Now().Add(30 * time.Second)
	for job.Status != store.JobSucceeded {
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted job did not resume: %+v", job)
		}
		time.Sleep(50 * time.Millisecond)
		job, _ = st.Job(t.Context(), job.ID)
	}
	// The update's own audit event came after the job's range and waits for the next job.
	exporttest.CheckExactlyOnce(t, exporttest.Exported(t, srv, bucket, "audit", c.ID), want)
}

// A disabled configuration does not hold the buffer. Enabled again, it resumes after its last
// export: what is still buffered is exported, and what left the buffer meanwhile is counted as
// skipped on the job and the configuration, not passed over silently.
func TestReenabledConfigurationCountsWhatLeftTheBuffer(t *testing.T) {
	st := storetest.Open(t, filepath.Join(t.TempDir(), "auditexport.db"), storetest.Key(),
		func(c *store.Config) { c.Buffer.MinRetention = time.Nanosecond })
	f := newExportFixtureOn(t, exporter.ExporterConfig{}, st)
	principal := store.Principal{Name: "test"}
	start := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	f.ingest(t, eventtest.NDJSON(0, 100, start, time.Second))
	if job, err := f.exporter.RunNow(context.Background(), f.config.ID); err != nil || job.EventCount != 101 || job.SkippedEvents != 0 {
		t.Fatalf("first export: %+v %v; want its creation event and 100", job, err)
	}

	if _, err := st.SetEnabled(t.Context(), f.config.ID, principal, false); err != nil {
		t.Fatal(err)
	}
	f.ingest(t, eventtest.NDJSON(1000, 50, start, time.Second)) // while disabled
	if r, err := st.Trim(t.Context()); err != nil || storetest.Status(t, st).Events != 0 || r.Dropped != 0 {
		t.Fatalf("trim with no enabled configuration: %+v %v, %+v", r, err, storetest.Status(t, st))
	}
	c, err := st.SetEnabled(t.Context(), f.config.ID, principal, true)
	if err != nil || storetest.Pending(t, st, c.Cursor) != 1 {
		t.Fatalf("enabled again: %v, %d pending; want only the ENABLE event", err, storetest.Pending(t, st, c.Cursor))
	}
	f.ingest(t, eventtest.NDJSON(2000, 30, start.Add(time.Hour), time.Second))
	want := exporttest.Buffered(t, st, c.Cursor)

	job, err := f.exporter.RunNow(context.Background(), f.config.ID)
	if err != nil || job.EventCount != 31 || job.SkippedEvents != 51 {
		t.Fatalf("export after re-enabling: %+v %v; want 31 events (ENABLE and 30) and 51 skipped (DISABLE and 50)", job, err)
	}
	if c, _ = st.Configuration(t.Context(), f.config.ID); c.SkippedEvents != 51 || c.Cursor != job.To {
		t.Fatalf("configuration after the export: skipped %d, cursor %d; want 51 and %d", c.SkippedEvents, c.Cursor, job.To)
	}
	var rows []exporttest.Row
	exporttest.EachFile(t, f.srv, f.bucket, "audit/tenant=acme", f.config.ID, func(fileRows []exporttest.Row) {
		if uint64(fileRows[0].Sequence) > c.Cursor-31 {
			rows = append(rows, fileRows...)
		}
	})
	exporttest.CheckExactlyOnce(t, rows, want)
}

// A disabled configuration's failed job is not retried until the configuration is enabled again.
func TestDisabledConfigurationDoesNotRetry(t *testing.T) {
	f := newExportFixture(t, exporter.ExporterConfig{RetryMin: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	f.ingest(t, eventtest.NDJSON(0, 20, time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC), time.Second))
	principal := store.Principal{Name: "test"}
	user := f.config.AccessKeyID
	f.srv.DetachPolicy(t, user)
	job, err := f.exporter.RunNow(context.Background(), f.config.ID)
	if err != nil || job.Status != store.JobFailed || !strings.Contains(job.FailureReason, "AccessDenied") {
		t.Fatalf("export without permission: %+v %v", job, err)
	}
	if _, err := f.store.SetEnabled(t.Context(), f.config.ID, principal, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // several retry delays and scans
	if after, _ := f.store.Job(t.Context(), job.ID); after.Attempts != job.Attempts || after.Status != store.JobFailed {
		t.Fatalf("job of a disabled configuration ran: %d attempts, then %d (%s)", job.Attempts, after.Attempts, after.Status)
	}

	f.srv.AttachPolicy(t, user, s3test.PutOnlyPolicy(f.bucket))
	if _, err := f.store.SetEnabled(t.Context(), f.config.ID, principal, true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		after, _ := f.store.Job(t.Context(), job.ID)
		if after.Status == store.JobSucceeded {
			if after.EventCount != 21 || after.Attempts <= job.Attempts {
				t.Fatalf("retried job: %+v", after)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not retried after enabling: %+v", after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Exported objects carry the configuration's server-side encryption, and a change of it applies
// to the next export.
func TestExportUsesServerSideEncryption(t *testing.T) {
	f := newExportFixture(t, exporter.ExporterConfig{})
	principal := store.Principal{Name: "test"}
	start := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	for i, c := range []struct {
		sse, kmsKey string
	}{{store.SSEKMS, f.srv.KMSKey}, {store.SSEAES256, ""}} {
		if _, err := f.store.UpdateConfiguration(t.Context(), f.config.ID, principal, func(cfg *store.ExportConfiguration) error {
			cfg.ServerSideEncryption, cfg.SSEKMSKeyID = c.sse, c.kmsKey
			return nil
		}, nil); err != nil {
			t.Fatal(err)
		}
		f.ingest(t, eventtest.NDJSON(i*100, 20, start, time.Second))
		job, err := f.exporter.RunNow(context.Background(), f.config.ID)
		if err != nil || job.Status != store.JobSucceeded {
			t.Fatalf("export with %s: %+v %v", c.sse, job, err)
		}
		tasks, _ := f.store.Tasks(t.Context(), job.ID)
		for _, task := range tasks {
			head := f.srv.Head(t, f.bucket, task.Key)
			if string(head.ServerSideEncryption) != c.sse || !strings.Contains(aws.ToString(head.SSEKMSKeyId), c.kmsKey) {
				t.Errorf("%s stored with %q %q, want %s %s", task.Key, head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId), c.sse, c.kmsKey)
			}
		}
	}

	if _, err := f.store.UpdateConfiguration(t.Context(), f.config.ID, principal, func(cfg *store.ExportConfiguration) error {
		cfg.ServerSideEncryption, cfg.SSEKMSKeyID = store.SSEKMS, "no-such-key"
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	f.ingest(t, eventtest.NDJSON(900, 5, start, time.Second))
	job, err := f.exporter.RunNow(context.Background(), f.config.ID)
	if err != nil || job.Status != store.JobFailed || !strings.Contains(job.FailureReason, "kms:KeyNotFound") {
		t.Fatalf("export with an unknown KMS key: %+v %v", job, err)
	}
}
