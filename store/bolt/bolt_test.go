package bolt_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/storetest"
)

var testKey = storetest.Key()

// engines is the bbolt engine for the conformance suite: a file in a temporary directory.
var engines = storetest.Engine{
	NewData: func(t testing.TB) string { return filepath.Join(t.TempDir(), "auditexport.db") },
	Open: func(_ testing.TB, path string, o storetest.EngineOptions) (store.Engine, error) {
		return bolt.Open(path, bolt.Options{Now: o.Now, SegmentMaxEvents: o.SegmentMaxEvents})
	},
}

func TestConformance(t *testing.T) { storetest.Run(t, engines) }

const testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

var admin = store.Principal{TokenID: "bootstrap", Name: "admin", Permissions: []store.Permission{store.PermissionAdmin}}

func accessKeyConfig() store.ExportConfiguration {
	return store.ExportConfiguration{
		Kind: store.KindS3AccessKey, Interval: store.Every12Hours, Enabled: true,
		Bucket: "audit-bucket", Path: "audit/logs", Region: "us-east-1", AccessKeyID: "AKIAIOSFODNN7EXAMPLE",
	}
}

func TestSecretsAreSealedOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auditexport.db")
	key := storetest.Key()
	st := storetest.Open(t, path, key)
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, admin)
	if err != nil {
		t.Fatal(err)
	}
	newSecret := "rotated/Secret+Value/0123456789"
	if _, err := st.UpdateConfiguration(t.Context(), c.ID, admin, func(*store.ExportConfiguration) error { return nil }, &newSecret); err != nil {
		t.Fatal(err)
	}
	token, _, err := st.CreateToken(t.Context(), "ci", []store.Permission{store.PermissionAudit}, admin)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{testSecret, newSecret, token} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the data file contains %q in plaintext", secret)
		}
	}
	if !bytes.Contains(raw, []byte(c.AccessKeyID)) {
		t.Fatal("the access key id is missing from the file: the scan above proves nothing")
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("data file mode = %v, want 0600", info.Mode().Perm())
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auditexport.db")
	storetest.Open(t, path, storetest.Key())
	start := time.Now()
	_, err := bolt.Open(path, bolt.Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, bolt.ErrLocked) || !strings.Contains(err.Error(), "another auditexport") {
		t.Fatalf("second open: %v, want ErrLocked explaining the lock", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("second open waited %v", waited)
	}
}

func TestExistingFileModeIsRestricted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auditexport.db")
	key := storetest.Key()
	storetest.Open(t, path, key).Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	storetest.Open(t, path, key)
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode after reopen = %v, want 0600", info.Mode().Perm())
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auditexport.db")
	e, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, 99))
	})
	db.Close()
	if _, err := bolt.Open(path, bolt.Options{}); err == nil || !strings.Contains(err.Error(), "newer auditexport") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

// Segments are the buffer's trim unit: closed by count, sealed when the next one opens.
func TestSegments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auditexport.db")
	st := storetest.OpenBolt(t, path, store.Config{MasterKey: testKey}, bolt.Options{SegmentMaxEvents: 7})
	var d event.Decoder
	batch, err := d.NDJSON(eventtest.NDJSON(0, 31, time.Now(), time.Second), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvents(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if s := storetest.Status(t, st); s.Segments != 5 || s.Events != 31 {
		t.Fatalf("status %+v; want 31 events in 5 segments of 7", s)
	}
	// The sealed segments' ids deduplicate after a restart as the open one's do.
	st.Close()
	st = storetest.OpenBolt(t, path, store.Config{MasterKey: testKey}, bolt.Options{SegmentMaxEvents: 7})
	if r, err := st.AppendEvents(t.Context(), batch); err != nil || r.Duplicates != 31 || r.Accepted != 0 {
		t.Fatalf("the same batch after a restart: %+v %v", r, err)
	}
}

// fixture is what testdata/generate_v1.go.txt recorded when it wrote testdata/v1.db with the
// release before schema 2.
type fixture struct {
	MasterKey, AdminToken, IngestToken, AccessKeySecret string
	AccessKeyConfigID, AssumedRoleConfigID              string
	DoneJobID, FailedJobID                              string
	BufferedEvents                                      int64
	Head, AccessKeyCursor                               uint64
	Segments                                            int
	DigestPublicKeySHA256                               string
}

// A data file written by the release before (schema 1) is upgraded in place: everything in it
// reads back, its indexes answer, and its buffered ids still deduplicate.
func TestUpgradeFromSchema1(t *testing.T) {
	raw, err := os.ReadFile("testdata/v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var want fixture
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString(want.MasterKey)
	data, err := os.ReadFile("testdata/v1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auditexport.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	st := storetest.OpenBolt(t, path, store.Config{MasterKey: key}, bolt.Options{SegmentMaxEvents: 100})
	ctx := t.Context()

	if p, err := st.Authenticate(ctx, want.AdminToken); err != nil || !p.Can(store.PermissionAdmin) {
		t.Fatalf("bootstrap token: %+v %v", p, err)
	}
	if p, err := st.Authenticate(ctx, want.IngestToken); err != nil || p.Name != "Ingest Pipeline" {
		t.Fatalf("ingest token: %+v %v", p, err)
	}
	if _, _, err := st.CreateToken(ctx, "INGEST PIPELINE", []store.Permission{store.PermissionAudit}, admin); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the token name index was not built: %v", err)
	}
	ak, err := st.Configuration(ctx, want.AccessKeyConfigID)
	if err != nil || ak.Name != "acme-s3" || ak.Cursor != want.AccessKeyCursor || ak.LastDigest.Key == "" {
		t.Fatalf("access-key configuration: %+v %v", ak, err)
	}
	if secret, err := st.Secret(ctx, ak.ID); err != nil || secret != want.AccessKeySecret {
		t.Fatalf("secret: %q %v", secret, err)
	}
	dup := accessKeyConfig()
	dup.Name = "acme-s3"
	if _, err := st.CreateConfiguration(ctx, dup, testSecret, admin); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the configuration name index was not built: %v", err)
	}
	latest, err := st.LatestJobs(ctx, []string{want.AccessKeyConfigID, want.AssumedRoleConfigID})
	if err != nil || latest[want.AccessKeyConfigID].ID != want.DoneJobID || latest[want.AssumedRoleConfigID].ID != want.FailedJobID {
		t.Fatalf("latest jobs: %+v %v", latest, err)
	}
	if tasks, err := st.Tasks(ctx, want.DoneJobID); err != nil || len(tasks) != 1 || tasks[0].SHA256 != "ab" {
		t.Fatalf("tasks: %+v %v", tasks, err)
	}
	if unfinished, err := st.UnfinishedJobs(ctx); err != nil || len(unfinished) != 1 || unfinished[0].ID != want.FailedJobID {
		t.Fatalf("unfinished jobs: %+v %v", unfinished, err)
	}
	status := storetest.Status(t, st)
	if status.Events != want.BufferedEvents || status.Head != want.Head || status.Segments != want.Segments {
		t.Fatalf("buffer %+v, want %d events up to %d in %d segments", status, want.BufferedEvents, want.Head, want.Segments)
	}
	signing, err := st.DigestSigningKey(ctx)
	if err != nil || exporter.PublicKeySHA256(signing.Public().(ed25519.PublicKey)) != want.DigestPublicKeySHA256 {
		t.Fatalf("the digest signing key changed: %v", err)
	}
	// Every event the old release buffered is still a duplicate: ids 1..250 and 1001..1030.
	var d event.Decoder
	for _, first := range []int{1, 101, 201, 1001} {
		batch, err := d.NDJSON(eventtest.NDJSON(first, 30, time.Now(), time.Second), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if r, err := st.AppendEvents(ctx, batch); err != nil || r.Duplicates != 30 {
			t.Fatalf("events from %d again: %+v %v", first, r, err)
		}
	}
	// New events go in chunks (schema 3) beside the old file's events, one per key, in the
	// same open segment: a read from anywhere sees both, in order.
	batch, err := d.NDJSON(eventtest.NDJSON(5001, 30, time.Now(), time.Second), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := st.AppendEvents(ctx, batch); err != nil || r.Accepted != 30 || r.First != uint64(want.Head)+1 {
		t.Fatalf("new events: %+v %v", r, err)
	}
	for _, after := range []uint64{0, uint64(want.Head) - 3, uint64(want.Head) + 7} {
		var seqs []uint64
		var last uuid.UUID
		err = st.ReadEvents(ctx, after, 0, func(seq uint64, rec []byte) bool {
			seqs = append(seqs, seq)
			last, err = event.IDOf(rec)
			return err == nil
		})
		if err != nil || len(seqs) == 0 || seqs[0] <= after || seqs[len(seqs)-1] != uint64(want.Head)+30 {
			t.Fatalf("read after %d: %d events ending %v, %v", after, len(seqs), seqs[len(seqs)-1:], err)
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("read after %d: seq %d after %d", after, seqs[i], seqs[i-1])
			}
		}
		if want, _ := event.IDOf(batch.Record(29)); last != want {
			t.Fatalf("read after %d: last event %v, want %v", after, last, want)
		}
	}
}
