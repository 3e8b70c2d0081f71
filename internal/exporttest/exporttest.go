// Package exporttest reads exported Parquet back, from S3 (MinIO) or Azure (Azurite), with an
// independent reader (parquet-go), and checks it against what was buffered: every field of every
// event, each exactly once, each in the partition of its hour.
package exporttest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/internal/azuritetest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/store"
)

// Row is a row as an independent reader (parquet-go) sees it.
type Row struct {
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
func (r Row) asEvent() event.Event {
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

// Source is where exported objects are read back from, with full access.
type Source interface {
	Keys(t testing.TB, prefix string) []string
	Get(t testing.TB, key string) []byte
}

type s3Source struct {
	srv    *s3test.Server
	bucket string
}

func (s s3Source) Keys(t testing.TB, prefix string) []string { return s.srv.Keys(t, s.bucket, prefix) }
func (s s3Source) Get(t testing.TB, key string) []byte       { return s.srv.Get(t, s.bucket, key) }

// S3 reads a bucket of the test S3 server.
func S3(srv *s3test.Server, bucket string) Source { return s3Source{srv, bucket} }

type azureSource struct {
	az        *azuritetest.Server
	container string
}

func (s azureSource) Keys(t testing.TB, prefix string) []string {
	return s.az.ListBlobs(t, s.container, prefix)
}
func (s azureSource) Get(t testing.TB, key string) []byte { return s.az.ReadBlob(t, s.container, key) }

// Azure reads a container (an ADLS file system) of the test Azurite.
func Azure(az *azuritetest.Server, container string) Source { return azureSource{az, container} }

var keyPattern = regexp.MustCompile(`^(.*)/year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/(\d{20})-(\d{20})-([0-9a-f-]{36})-snappy\.parquet$`)

// Exported returns the rows of every object under prefix in bucket, checked as EachFile does.
func Exported(t *testing.T, srv *s3test.Server, bucket, prefix, configID string) []Row {
	t.Helper()
	return ExportedFrom(t, S3(srv, bucket), prefix, configID)
}

// ExportedFrom is Exported from any source.
func ExportedFrom(t *testing.T, src Source, prefix, configID string) []Row {
	t.Helper()
	var rows []Row
	EachFileFrom(t, src, prefix, configID, func(fileRows []Row) { rows = append(rows, fileRows...) })
	return rows
}

// Download copies every exported object and digest under prefix (not the verification objects)
// into dir, each at its key, and returns how many it copied.
func Download(t testing.TB, srv *s3test.Server, bucket, prefix, dir string) int {
	t.Helper()
	return DownloadFrom(t, S3(srv, bucket), prefix, dir)
}

// DownloadFrom is Download from any source.
func DownloadFrom(t testing.TB, src Source, prefix, dir string) int {
	t.Helper()
	n := 0
	for _, key := range src.Keys(t, prefix+"/") {
		if strings.Contains(key, exporter.VerifyKeyPrefix) {
			continue
		}
		path := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, src.Get(t, key), 0o600); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// CountIDs counts how often each event id was exported under prefix, one file in memory at a
// time, with the checks of Exported.
func CountIDs(t *testing.T, srv *s3test.Server, bucket, prefix, configID string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	EachFile(t, srv, bucket, prefix, configID, func(rows []Row) {
		for _, r := range rows {
			counts[r.ID]++
		}
	})
	return counts
}

// EachFile reads every object under prefix with the admin credentials, checks its layout,
// metadata and partition, and hands its rows to fn.
func EachFile(t *testing.T, srv *s3test.Server, bucket, prefix, configID string, fn func([]Row)) {
	t.Helper()
	EachFileFrom(t, S3(srv, bucket), prefix, configID, fn)
}

// EachFileFrom is EachFile from any source.
func EachFileFrom(t *testing.T, src Source, prefix, configID string, fn func([]Row)) {
	t.Helper()
	for _, key := range src.Keys(t, prefix+"/") {
		if strings.Contains(key, exporter.VerifyKeyPrefix) || strings.Contains(key, "/"+exporter.DigestDir+"/") {
			continue
		}
		m := keyPattern.FindStringSubmatch(key)
		if m == nil || m[1] != prefix || m[8] != configID {
			t.Fatalf("object key %q does not follow the layout", key)
		}
		data := src.Get(t, key)
		file, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if v, _ := file.Lookup(exporter.MetaSchemaVersion); v != exporter.SchemaVersion {
			t.Errorf("%s: schema version %q", key, v)
		}
		if v, _ := file.Lookup(exporter.MetaFirstSequence); v != strings.TrimLeft(m[6], "0") {
			t.Errorf("%s: first sequence metadata %q", key, v)
		}
		fileRows, err := parquet.Read[Row](bytes.NewReader(data), int64(len(data)))
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
		fn(fileRows)
	}
}

// Buffered returns every event in the store after seq after, by id.
func Buffered(t *testing.T, st *store.Store, after uint64) map[string]event.Event {
	t.Helper()
	out := map[string]event.Event{}
	st.ReadEvents(t.Context(), after, 0, func(seq uint64, rec []byte) bool {
		e, err := event.Decode(seq, rec)
		if err != nil {
			t.Fatal(err)
		}
		out[e.ID.String()] = e
		return true
	})
	return out
}

// CheckExactlyOnce compares the rows with the expected events field by field.
func CheckExactlyOnce(t *testing.T, rows []Row, want map[string]event.Event) {
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
