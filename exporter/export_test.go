package exporter

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

// parquetRow is a row as an independent reader (parquet-go) sees it.
type parquetRow struct {
	ID                    string    `parquet:"id"`
	TenantID              *string   `parquet:"tenant_id,optional"`
	Action                *string   `parquet:"action,optional"`
	ActionStatus          *string   `parquet:"action_status,optional"`
	EventTimestamp        time.Time `parquet:"event_timestamp,timestamp(microsecond)"`
	ReceivedTimestamp     time.Time `parquet:"received_timestamp,timestamp(microsecond)"`
	ActorID               *string   `parquet:"actor_id,optional"`
	ActorName             *string   `parquet:"actor_name,optional"`
	ActorType             *string   `parquet:"actor_type,optional"`
	ActorIdentityProvider *string   `parquet:"actor_identity_provider,optional"`
	ActorProfileID        *string   `parquet:"actor_profile_id,optional"`
	ActorIP               *string   `parquet:"actor_ip,optional"`
	TargetType            *string   `parquet:"target_type,optional"`
	Targets               *string   `parquet:"targets,optional"`
	RelatedResources      *string   `parquet:"related_resources,optional"`
	AuditPayload          *string   `parquet:"audit_payload,optional"`
	RequestID             *string   `parquet:"request_id,optional"`
	SessionID             *string   `parquet:"session_id,optional"`
	AdditionalFields      *string   `parquet:"additional_fields,optional"`
	Sequence              int64     `parquet:"sequence"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// asEvent is what the row says the event was.
func (r parquetRow) asEvent() event.Event {
	return event.Event{
		Seq: uint64(r.Sequence), TenantID: str(r.TenantID), Action: str(r.Action), ActionStatus: str(r.ActionStatus),
		EventTimestamp: r.EventTimestamp.UTC(), ReceivedTimestamp: r.ReceivedTimestamp.UTC(),
		Actor: event.Actor{ID: str(r.ActorID), Name: str(r.ActorName), Type: str(r.ActorType),
			IdentityProvider: str(r.ActorIdentityProvider), ProfileID: str(r.ActorProfileID)},
		ActorIP: str(r.ActorIP), TargetType: str(r.TargetType), RequestID: str(r.RequestID), SessionID: str(r.SessionID),
		Targets: raw(r.Targets), RelatedResources: raw(r.RelatedResources), AuditPayload: raw(r.AuditPayload), Additional: raw(r.AdditionalFields),
	}
}

func raw(p *string) []byte {
	if p == nil {
		return nil
	}
	return []byte(*p)
}

var keyPattern = regexp.MustCompile(`^(.*)/year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/(\d{20})-(\d{20})-([0-9a-f-]{36})-snappy\.parquet$`)

// exported reads every object under prefix with the admin credentials and returns the rows,
// checking each file's layout, metadata and partition.
func exported(t *testing.T, srv *s3test.Server, bucket, prefix, configID string) []parquetRow {
	t.Helper()
	var rows []parquetRow
	for _, key := range srv.Keys(t, bucket, prefix+"/") {
		if strings.Contains(key, VerifyKeyPrefix) {
			continue
		}
		m := keyPattern.FindStringSubmatch(key)
		if m == nil || m[1] != prefix || m[8] != configID {
			t.Fatalf("object key %q does not follow the layout", key)
		}
		data := srv.Get(t, bucket, key)
		file, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if v, _ := file.Lookup(MetaSchemaVersion); v != SchemaVersion {
			t.Errorf("%s: schema version %q", key, v)
		}
		if v, _ := file.Lookup(MetaFirstSequence); v != strings.TrimLeft(m[6], "0") {
			t.Errorf("%s: first sequence metadata %q", key, v)
		}
		fileRows, err := parquet.Read[parquetRow](bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		partition := fmt.Sprintf("%s-%s-%sT%s", m[2], m[3], m[4], m[5])
		for _, r := range fileRows {
			if got := r.EventTimestamp.UTC().Format("2006-01-02T15"); got != partition {
				t.Errorf("%s: event %s of hour %s in partition %s", key, r.ID, got, partition)
			}
			if fmt.Sprintf("%020d", r.Sequence) < m[6] || fmt.Sprintf("%020d", r.Sequence) > m[7] {
				t.Errorf("%s: sequence %d outside the file's range", key, r.Sequence)
			}
		}
		rows = append(rows, fileRows...)
	}
	return rows
}

// buffered returns every event in the store after seq after, by id.
func buffered(t *testing.T, st *store.Store, after uint64) map[string]event.Event {
	t.Helper()
	out := map[string]event.Event{}
	st.ReadEvents(after, 0, func(seq uint64, rec []byte) bool {
		e, err := event.Decode(seq, rec)
		if err != nil {
			t.Fatal(err)
		}
		out[e.ID.String()] = e
		return true
	})
	return out
}

// checkExactlyOnce compares the rows with the expected events field by field.
func checkExactlyOnce(t *testing.T, rows []parquetRow, want map[string]event.Event) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.ID]++
		e, ok := want[r.ID]
		if !ok {
			t.Errorf("exported event %s was never expected", r.ID)
			continue
		}
		got := r.asEvent()
		got.ID = e.ID
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", e) {
			t.Errorf("event %s differs:\n got %+v\nwant %+v", r.ID, got, e)
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s exported %d times", id, seen[id])
		}
	}
	if len(rows) != len(want) {
		t.Errorf("%d rows exported, want %d", len(rows), len(want))
	}
}

type exportFixture struct {
	srv      *s3test.Server
	store    *store.Store
	exporter *Exporter
	bucket   string
	config   store.ExportConfiguration
}

func newExportFixture(t *testing.T, cfg ExporterConfig) exportFixture {
	t.Helper()
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	st := storetest.New(t)
	clients := NewClients(ClientsConfig{AWS: serviceAWS(t, "unused", "unused-secret", "")})
	cfg.TempDir = filepath.Join(t.TempDir(), "export")
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = 200*time.Millisecond, time.Second
	}
	cfg.ScanInterval = 100 * time.Millisecond
	x := NewExporter(cfg, st, clients)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		x.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	c, err := st.CreateConfiguration(store.ExportConfiguration{Kind: store.KindS3AccessKey, Interval: store.Every24Hours, Enabled: true,
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
	f := newExportFixture(t, ExporterConfig{MaxFileEventBytes: 200 << 10, RowGroupBytes: 40 << 10, MaxOpenFiles: 2})
	start := time.Date(2026, 11, 20, 21, 30, 0, 0, time.UTC)
	f.ingest(t, eventtest.NDJSON(0, 1500, start, 17*time.Second)) // about 7 hours, across midnight
	// Late events: older hours arriving after newer ones, and events with nulls and extra fields.
	f.ingest(t, eventtest.NDJSON(5000, 300, start.Add(-3*time.Hour), time.Minute))
	f.ingest(t, []byte(`{"id":"0e9d1b3a-6f2c-4d8e-9a1b-2c3d4e5f6a7b","eventTimestamp":"2026-11-21T01:02:03.456789Z","tenantId":null,"actor":{"id":"svc","team":"sre"},"extra":{"a":[1,"b",null]}}`+"\n"+
		`{"id":"1f8e2c4b-7a3d-4e9f-8b2c-3d4e5f6a7b8c","eventTimestamp":"2026-11-21T01:59:59.999999Z"}`))
	want := buffered(t, f.store, f.config.Cursor)

	job, err := f.exporter.RunNow(context.Background(), f.config.ID)
	if err != nil || job.Status != store.JobSucceeded {
		t.Fatalf("RunNow: %+v %v", job, err)
	}
	if job.EventCount != int64(len(want)) || job.ObjectCount < 10 || job.Attempts != 1 || job.From != f.config.Cursor {
		t.Fatalf("job %+v: want %d events in at least 10 objects", job, len(want))
	}
	tasks, err := f.store.Tasks(job.ID)
	if err != nil || int64(len(tasks)) != job.ObjectCount {
		t.Fatalf("%d tasks for %d objects: %v", len(tasks), job.ObjectCount, err)
	}
	for _, task := range tasks {
		if task.Status != store.JobSucceeded || task.Attempts != 1 || task.Limit <= 0 || task.Bytes <= 0 {
			t.Errorf("task %+v", task)
		}
	}
	rows := exported(t, f.srv, f.bucket, "audit/tenant=acme", f.config.ID)
	checkExactlyOnce(t, rows, want)

	c, _ := f.store.Configuration(f.config.ID)
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
	all := buffered(t, f.store, f.config.Cursor)
	checkExactlyOnce(t, exported(t, f.srv, f.bucket, "audit/tenant=acme", f.config.ID), all)
}
