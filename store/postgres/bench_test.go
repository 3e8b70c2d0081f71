package postgres_test

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/pgtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/postgres"
	"github.com/auditexport/auditexport/store/storetest"
)

// The event buffer through the store on each engine, PostgreSQL beside bbolt in the same run,
// without HTTP or Parquet around it: what a change to the engine's appends or reads is measured
// by. scripts/bench.sh measures ingest over HTTP and export (server/, exporter/).

var engineNames = []string{"bbolt", "postgres"}

// openStore opens a store with an unbounded buffer on the named engine.
func openStore(tb testing.TB, name string) *store.Store {
	cfg := store.Config{Buffer: store.BufferConfig{MaxEvents: 1 << 40, MaxBytes: 1 << 50}}
	if name == "bbolt" {
		cfg.MasterKey = storetest.Key()
		return storetest.OpenBolt(tb, filepath.Join(tb.TempDir(), "auditexport.db"), cfg, bolt.Options{})
	}
	return storetest.NewPostgres(tb, cfg)
}

// bodies gives every batch of the benchmarks ids never used before.
var bodies = eventtest.NewBodies(1000)

// batches decodes n batches of 1,000 sample events.
func batches(tb testing.TB, n int) []*event.Batch {
	var out []*event.Batch
	for range n {
		var d event.Decoder
		b, err := d.NDJSON(bodies.Next(), time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// BenchmarkAppend appends 200 batches of 1,000 new events per iteration from 4 writers (group
// commit), as ingest does behind its decoding.
func BenchmarkAppend(b *testing.B) {
	for _, name := range engineNames {
		b.Run(name, func(b *testing.B) {
			st := openStore(b, name)
			for b.Loop() {
				b.StopTimer()
				work := make(chan *event.Batch, 200)
				for _, bt := range batches(b, 200) {
					work <- bt
				}
				close(work)
				b.StartTimer()
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for bt := range work {
							if r, err := st.AppendEvents(context.Background(), bt); err != nil || r.Accepted != bt.Len() {
								b.Errorf("append: %+v %v", r, err)
							}
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(200_000*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendResent appends 50 batches of 1,000 events that are all buffered already, as
// a client resending after a failure does: every id is found a duplicate.
func BenchmarkAppendResent(b *testing.B) {
	for _, name := range engineNames {
		b.Run(name, func(b *testing.B) {
			st := openStore(b, name)
			resent := batches(b, 50)
			for _, bt := range resent {
				if _, err := st.AppendEvents(context.Background(), bt); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				for _, bt := range resent {
					if r, err := st.AppendEvents(context.Background(), bt); err != nil || r.Duplicates != bt.Len() {
						b.Fatalf("resend: %+v %v", r, err)
					}
				}
			}
			b.ReportMetric(float64(50_000*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRead reads 100,000 buffered events per iteration, as an export does.
func BenchmarkRead(b *testing.B) {
	for _, name := range engineNames {
		b.Run(name, func(b *testing.B) {
			st := openStore(b, name)
			for _, bt := range batches(b, 100) {
				if _, err := st.AppendEvents(context.Background(), bt); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				n := 0
				if err := st.ReadEvents(context.Background(), 0, 0, func(uint64, []byte) bool { n++; return true }); err != nil || n != 100_000 {
					b.Fatalf("read %d events: %v", n, err)
				}
			}
			b.ReportMetric(float64(100_000*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkOpenWithBufferedEvents opens the engine on a database buffering 1,000,000 events: a
// replica reads every buffered id into its index before it starts (idindex.go). It reports the
// time to open and the index's heap per buffered event.
func BenchmarkOpenWithBufferedEvents(b *testing.B) {
	const events = 1_000_000
	url := pgtest.Require(b).NewDatabase(b)
	engine, err := postgres.Open(b.Context(), url, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.New(b.Context(), engine, store.Config{MasterKey: storetest.Key(), Buffer: store.BufferConfig{MaxEvents: 1 << 40, MaxBytes: 1 << 50}})
	if err != nil {
		b.Fatal(err)
	}
	for range events / 1000 / 10 {
		var wg sync.WaitGroup
		for _, bt := range batches(b, 10) {
			wg.Go(func() {
				if _, err := st.AppendEvents(b.Context(), bt); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	st.Close()
	var heap float64
	for b.Loop() {
		before := liveHeap()
		e, err := postgres.Open(b.Context(), url, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		heap = float64(liveHeap() - before)
		runtime.KeepAlive(e)
		e.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/open")
	b.ReportMetric(heap/events, "index-bytes/event")
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
