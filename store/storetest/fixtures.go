package storetest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
)

// Large bbolt files for benchmarks, built once per process (they take seconds to minutes) and
// copied for each user, so a benchmark may change its copy.

var fixtures struct {
	sync.Mutex
	built map[string]string // name -> path of the pristine file
	dir   string
}

// fixtureKey seals every fixture.
var fixtureKey = Key()

// Fixture returns the path of a fresh copy of the fixture name, built by build on first use,
// and the master key it is sealed with.
func Fixture(tb testing.TB, name string, build func(tb testing.TB, st *store.Store, engine *bolt.Engine)) (string, []byte) {
	tb.Helper()
	fixtures.Lock()
	defer fixtures.Unlock()
	if fixtures.built == nil {
		dir, err := os.MkdirTemp("", "auditexport-fixtures-")
		if err != nil {
			tb.Fatal(err)
		}
		fixtures.built, fixtures.dir = map[string]string{}, dir
	}
	pristine, ok := fixtures.built[name]
	if !ok {
		pristine = filepath.Join(fixtures.dir, name+".db")
		engine, err := bolt.Open(pristine, bolt.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		st, err := store.New(tb.Context(), engine, store.Config{MasterKey: fixtureKey, NoTrimLoop: true,
			Buffer: store.BufferConfig{MaxEvents: 1 << 40, MaxBytes: 1 << 50}})
		if err != nil {
			tb.Fatal(err)
		}
		build(tb, st, engine)
		if err := st.Close(); err != nil {
			tb.Fatal(err)
		}
		fixtures.built[name] = pristine
	}
	copied := filepath.Join(tb.TempDir(), "auditexport.db")
	if err := copyFile(pristine, copied); err != nil {
		tb.Fatal(err)
	}
	return copied, fixtureKey
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// WithJobs is a fixture builder: configs configurations, each with jobsEach finished jobs (their
// records written straight through the engine: the store's own path would take minutes).
func WithJobs(configs, jobsEach int) func(testing.TB, *store.Store, *bolt.Engine) {
	return func(tb testing.TB, st *store.Store, engine *bolt.Engine) {
		ids := make([]string, configs)
		for i := range configs {
			c := store.ExportConfiguration{Kind: store.KindS3AccessKey, Interval: store.EveryHour, Enabled: true,
				Bucket: "audit-bucket", Path: fmt.Sprintf("tenant=%d", i), Region: "us-east-1", AccessKeyID: "AKIAIOSFODNN7EXAMPLE"}
			created, err := st.CreateConfiguration(tb.Context(), c, "YOUR/SECRET/ACCESSKEY", store.Principal{Name: "fixture"})
			if err != nil {
				tb.Fatal(err)
			}
			ids[i] = created.ID
		}
		at := time.Now().Add(-time.Duration(jobsEach) * time.Hour).UTC()
		for range jobsEach {
			err := engine.Update(tb.Context(), func(tx store.Tx) error {
				for _, id := range ids {
					job := store.ExportJob{ID: uuid.Must(uuid.NewV7()).String(), ConfigID: id, Status: store.JobSucceeded,
						Plan: testPlan, CreatedAt: at, StartedAt: at, EndedAt: at.Add(time.Second), Attempts: 1, EventCount: 1000, ObjectCount: 1, Bytes: 50_000}
					if err := tx.PutJob(job); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				tb.Fatal(err)
			}
			at = at.Add(time.Hour)
		}
	}
}

// WithEvents is a fixture builder: n buffered events of Immuta's envelope (~600 bytes each).
func WithEvents(n int) func(testing.TB, *store.Store, *bolt.Engine) {
	return func(tb testing.TB, st *store.Store, _ *bolt.Engine) {
		const batch = 10_000
		var d event.Decoder
		for first := 0; first < n; first += batch {
			b, err := d.NDJSON(eventtest.NDJSON(first, min(batch, n-first), time.Now().Add(-time.Hour), time.Millisecond), time.Now())
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := st.AppendEvents(tb.Context(), b); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// RemoveFixtures deletes the fixtures built by this process; call it from TestMain after the
// tests and benchmarks ran.
func RemoveFixtures() {
	fixtures.Lock()
	defer fixtures.Unlock()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
		fixtures.built, fixtures.dir = nil, ""
	}
}
