package exporter_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/internal/duckdbtest"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/store"
)

// DuckDB, as a customer would use it, reads the exported files without help: timestamps as
// TIMESTAMP WITH TIME ZONE to the microsecond, every field as ingested, Hive partitions that
// match each event's UTC hour, and the README's example queries answer what the events say.
// DuckDB reads zero-padded partition values (month=01) as text unless hive_types says otherwise;
// comparisons with integers (month = 1) work either way.
func TestDuckDBReadsTheExport(t *testing.T) {
	duck := duckdbtest.Require(t)
	f := newExportFixture(t, exporter.ExporterConfig{MaxFileEventBytes: 300 << 10, RowGroupBytes: 60 << 10, MaxOpenFiles: 3})
	start := time.Date(2026, 11, 30, 21, 30, 0, 0, time.UTC) // across midnight into December
	f.ingest(t, eventtest.NDJSON(0, 1500, start, 17*time.Second))
	f.ingest(t, eventtest.NDJSON(5000, 200, start.Add(-26*time.Hour), 3*time.Minute)) // late
	f.ingest(t, []byte(`{"id":"2a7c9e1b-3d4f-4a5b-8c6d-7e8f9a0b1c2d","eventTimestamp":"2026-12-01T00:59:59.999999Z","tenantId":null,`+
		`"action":"LOGIN","actor":{"id":"u-ü","name":"Zoë 🙂"},"auditPayload":{"type":"LoginAuditPayload","version":1,"note":"tab\there"},"extra":[1,null]}`))
	want := exporttest.Buffered(t, f.store, f.config.Cursor)
	if job, err := f.exporter.RunNow(context.Background(), f.config.ID); err != nil || job.Status != store.JobSucceeded || job.ObjectCount < 5 {
		t.Fatalf("export: %+v %v; want several objects", job, err)
	}
	dir := t.TempDir()
	if n := exporttest.Download(t, f.srv, f.bucket, "audit/tenant=acme", dir); n < 5 {
		t.Fatalf("downloaded %d objects", n)
	}
	files := fmt.Sprintf("read_parquet('%s/**/*.parquet', hive_partitioning = true)", filepath.ToSlash(dir))
	typed := fmt.Sprintf("read_parquet('%s/**/*.parquet', hive_partitioning = true, "+
		"hive_types = {'year': INTEGER, 'month': INTEGER, 'day': INTEGER, 'hour': INTEGER})", filepath.ToSlash(dir))

	results := duck.Query(t,
		"SET TimeZone = 'UTC'",
		"SELECT DISTINCT typeof(event_timestamp) AS ts, typeof(received_timestamp) AS recv, typeof(month) AS month, typeof(sequence) AS seq FROM "+typed,
		`SELECT id, epoch_us(event_timestamp) AS event_us, epoch_us(received_timestamp) AS received_us, tenant_id, action, action_status,
		        actor_id, actor_name, actor_type, actor_identity_provider, actor_profile_id, actor_ip, target_type, targets,
		        related_resources, audit_payload, request_id, session_id, additional_fields, sequence, year, month, day, hour FROM `+typed,
		"SELECT action, count(*) AS n FROM "+files+" WHERE year = 2026 AND month = 12 AND day = 1 GROUP BY action",
		fmt.Sprintf("SELECT DISTINCT decode(value) AS version FROM parquet_kv_metadata('%s/**/*.parquet') WHERE decode(key) = '%s'", filepath.ToSlash(dir), exporter.MetaSchemaVersion),
	)

	types := results[1]
	if len(types) != 1 || fmt.Sprint(types[0]) != "map[month:INTEGER recv:TIMESTAMP WITH TIME ZONE seq:BIGINT ts:TIMESTAMP WITH TIME ZONE]" {
		t.Errorf("column types as DuckDB reads them: %v", types)
	}

	var rows []exporttest.Row
	for _, r := range results[2] {
		row := duckRow(t, r)
		at := row.EventTimestamp
		if partition := [4]string{fmt.Sprint(r["year"]), fmt.Sprint(r["month"]), fmt.Sprint(r["day"]), fmt.Sprint(r["hour"])}; partition !=
			[4]string{strconv.Itoa(at.Year()), strconv.Itoa(int(at.Month())), strconv.Itoa(at.Day()), strconv.Itoa(at.Hour())} {
			t.Errorf("event %s of %s in partition %v", row.ID, at, partition)
		}
		rows = append(rows, row)
	}
	exporttest.CheckExactlyOnce(t, rows, want)

	december1 := map[string]int{} // day=01 on disk
	for _, e := range want {
		if e.EventTimestamp.Month() == time.December && e.EventTimestamp.Day() == 1 {
			december1[e.Action]++
		}
	}
	got := map[string]int{}
	for _, r := range results[3] {
		n, _ := strconv.Atoi(fmt.Sprint(r["n"]))
		got[fmt.Sprint(r["action"])] = n
	}
	if fmt.Sprint(got) != fmt.Sprint(december1) || len(got) < 4 {
		t.Errorf("events of December 1 by action: DuckDB says %v, the events %v", got, december1)
	}

	if v := results[4]; len(v) != 1 || v[0]["version"] != exporter.SchemaVersion {
		t.Errorf("schema versions in the files' metadata: %v", v)
	}
}

// duckRow converts a row of DuckDB's JSON rendering into the row type the other readers fill.
func duckRow(t *testing.T, r map[string]any) exporttest.Row {
	t.Helper()
	text := func(name string) *string {
		switch v := r[name].(type) {
		case nil:
			return nil
		case string:
			return &v
		default:
			t.Fatalf("column %s: %T %v", name, v, v)
			return nil
		}
	}
	integer := func(name string) int64 {
		n, err := strconv.ParseInt(fmt.Sprint(r[name]), 10, 64)
		if err != nil {
			t.Fatalf("column %s: %v", name, err)
		}
		return n
	}
	return exporttest.Row{
		ID: *text("id"), TenantID: text("tenant_id"), Action: text("action"), ActionStatus: text("action_status"),
		EventTimestamp: time.UnixMicro(integer("event_us")).UTC(), ReceivedTimestamp: time.UnixMicro(integer("received_us")).UTC(),
		ActorID: text("actor_id"), ActorName: text("actor_name"), ActorType: text("actor_type"),
		ActorIdentityProvider: text("actor_identity_provider"), ActorProfileID: text("actor_profile_id"), ActorIP: text("actor_ip"),
		TargetType: text("target_type"), Targets: text("targets"), RelatedResources: text("related_resources"),
		AuditPayload: text("audit_payload"), RequestID: text("request_id"), SessionID: text("session_id"),
		AdditionalFields: text("additional_fields"), Sequence: integer("sequence"),
	}
}
