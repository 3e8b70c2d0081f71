package bolt_test

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/storetest"
)

// quantiles reports the p50 and p99 of latencies, in milliseconds, with the given prefix.
func quantiles(b *testing.B, prefix string, latencies []time.Duration) {
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	at := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
}

func openFixture(b *testing.B, name string, build func(testing.TB, *store.Store, *bolt.Engine)) *store.Store {
	path, key := storetest.Fixture(b, name, build)
	return storetest.OpenBolt(b, path, store.Config{MasterKey: key, NoTrimLoop: true,
		Buffer: store.BufferConfig{MaxEvents: 1 << 40, MaxBytes: 1 << 50}}, bolt.Options{})
}

// BenchmarkListAtScale is what a list of configurations reads in process, with 1,000
// configurations that ran 100 exports each: every configuration, the newest job of each (one
// read), and the buffer's status (for pendingEvents).
func BenchmarkListAtScale(b *testing.B) {
	st := openFixture(b, "jobs-1000x100", storetest.WithJobs(1000, 100))
	var latencies []time.Duration
	for b.Loop() {
		start := time.Now()
		configs, err := st.Configurations(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, len(configs))
		for i, c := range configs {
			ids[i] = c.ID
		}
		latest, err := st.LatestJobs(b.Context(), ids)
		if err != nil || len(latest) != 1000 {
			b.Fatalf("%d latest jobs, %v", len(latest), err)
		}
		if _, err := st.BufferStatus(b.Context()); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
	}
	quantiles(b, "", latencies)
}

// BenchmarkJobAtScale is one export's store writes with 1,000 configurations × 100 jobs: create
// the job, start its attempt, complete it (which prunes the job past the newest 100).
func BenchmarkJobAtScale(b *testing.B) {
	st := openFixture(b, "jobs-1000x100", storetest.WithJobs(1000, 100))
	configs, err := st.Configurations(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	var d event.Decoder
	var create, complete []time.Duration
	i := 0
	for b.Loop() {
		c := configs[i%len(configs)]
		i++
		b.StopTimer()
		batch, _ := d.NDJSON(eventtest.NDJSON(10_000_000+i, 1, time.Now(), time.Second), time.Now())
		if _, err := st.AppendEvents(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		job, err := st.CreateJob(b.Context(), c.ID, store.ExportPlan{MaxFileEventBytes: 1 << 20, MaxOpenFiles: 4}, true, time.Time{})
		create = append(create, time.Since(start))
		if err == nil {
			job, err = st.StartAttempt(b.Context(), job.ID, "bench", time.Minute)
		}
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if _, err := st.CompleteJob(b.Context(), job.Attempt(), 1, 1, 1, store.DigestRef{}); err != nil {
			b.Fatal(err)
		}
		complete = append(complete, time.Since(start))
	}
	quantiles(b, "create-", create)
	quantiles(b, "complete-", complete)
}

// BenchmarkIngestAtScale is the latency of one durable 1,000-event append, with 1,000
// configurations × 100 jobs stored (jobs) and with an empty store (none): jobs must not slow
// ingestion.
func BenchmarkIngestAtScale(b *testing.B) {
	for _, c := range []struct {
		name  string
		build func(testing.TB, *store.Store, *bolt.Engine)
	}{
		{"none", func(testing.TB, *store.Store, *bolt.Engine) {}},
		{"jobs", storetest.WithJobs(1000, 100)},
	} {
		b.Run(c.name, func(b *testing.B) {
			st := openFixture(b, "ingest-"+c.name, c.build)
			bodies := eventtest.NewBodies(1000)
			var d event.Decoder
			var latencies []time.Duration
			for b.Loop() {
				b.StopTimer()
				batch, err := d.NDJSON(bodies.Next(), time.Now())
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if _, err := st.AppendEvents(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				latencies = append(latencies, time.Since(start))
			}
			quantiles(b, "", latencies)
		})
	}
}

// BenchmarkRestart opens a store holding 5,000,000 buffered events (~3 GB) as the server does
// (the data file's check, then the engine and the store): the time until it serves, and the
// live heap right after.
func BenchmarkRestart(b *testing.B) {
	path, key := storetest.Fixture(b, "events-5m", storetest.WithEvents(5_000_000))
	var opens []time.Duration
	var heap float64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		if err := bolt.Check(path); err != nil {
			b.Fatal(err)
		}
		engine, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st, err := store.New(b.Context(), engine, store.Config{MasterKey: key, NoTrimLoop: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Ready(b.Context()); err != nil {
			b.Fatal(err)
		}
		opens = append(opens, time.Since(start))
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap = float64(after.HeapAlloc) / (1 << 20)
		if s := storetest.Status(b, st); s.Events != 5_000_000 {
			b.Fatalf("%d events buffered", s.Events)
		}
		st.Close()
	}
	quantiles(b, "open-", opens)
	b.ReportMetric(heap, "heap-after-open-MiB")
}
