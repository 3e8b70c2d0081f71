package exporter_test

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

// benchEvents is how many events one benchmark iteration exports.
const benchEvents = 100_000

// bodies gives every fill ids never used before: with a generator of its own, a benchmark's
// second fill of a store was all duplicates, and its export empty.
var bodies = eventtest.NewBodies(1000)

// fillBuffer appends n sample events with fresh ids, all within one hour of event time, as the
// events of one export interval mostly are: one job writes one file.
func fillBuffer(tb testing.TB, st *store.Store, n int) {
	tb.Helper()
	var d event.Decoder
	for i := 0; i < n; i += 1000 {
		b, err := d.NDJSON(bodies.Next(), time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		if r, err := st.AppendEvents(context.Background(), b); err != nil || r.Accepted != b.Len() {
			tb.Fatalf("fill: %+v %v", r, err)
		}
	}
}

// BenchmarkPqarrowEncode is the raw library limit the export is measured against: the same
// events, already decoded, appended to Arrow builders the ordinary way and encoded by pqarrow with
// the export's writer properties into memory, on one core.
func BenchmarkPqarrowEncode(b *testing.B) {
	st := storetest.New(b)
	fillBuffer(b, st, benchEvents)
	events := decodedEvents(b, st)
	b.ResetTimer()
	for b.Loop() {
		encodeEvents(b, events)
	}
	b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
}

func decodedEvents(tb testing.TB, st *store.Store) []event.Event {
	var events []event.Event
	st.ReadEvents(tb.Context(), 0, 0, func(seq uint64, rec []byte) bool {
		e, err := event.Decode(seq, rec)
		if err != nil {
			tb.Fatal(err)
		}
		events = append(events, e)
		return true
	})
	return events
}

// encodeEvents writes events as one Parquet file to io.Discard, 20,000 rows per row group.
func encodeEvents(tb testing.TB, events []event.Event) {
	w, err := pqarrow.NewFileWriter(exporter.Schema, io.Discard, exporter.WriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		tb.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, exporter.Schema)
	defer b.Release()
	str := func(i int, v string) {
		if v == "" {
			b.Field(i).(*array.StringBuilder).AppendNull()
		} else {
			b.Field(i).(*array.StringBuilder).Append(v)
		}
	}
	flush := func() {
		rec := b.NewRecordBatch()
		defer rec.Release()
		if err := w.Write(rec); err != nil {
			tb.Fatal(err)
		}
	}
	for n, e := range events {
		b.Field(0).(*array.StringBuilder).Append(e.ID.String())
		str(1, e.TenantID)
		str(2, e.Action)
		str(3, e.ActionStatus)
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(e.EventTimestamp.UnixMicro()))
		b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(e.ReceivedTimestamp.UnixMicro()))
		str(6, e.Actor.ID)
		str(7, e.Actor.Name)
		str(8, e.Actor.Type)
		str(9, e.Actor.IdentityProvider)
		str(10, e.Actor.ProfileID)
		str(11, e.ActorIP)
		str(12, e.TargetType)
		str(13, string(e.Targets))
		str(14, string(e.RelatedResources))
		str(15, string(e.AuditPayload))
		str(16, e.RequestID)
		str(17, e.SessionID)
		str(18, string(e.Additional))
		b.Field(19).(*array.Int64Builder).Append(int64(e.Seq))
		if (n+1)%20_000 == 0 {
			flush()
		}
	}
	if len(events)%20_000 != 0 {
		flush()
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkExport is the whole export: events read from the buffer, encoded to snappy Parquet
// partitioned by hour, and uploaded to MinIO by a PutObject-only user.
func BenchmarkExport(b *testing.B) { benchExport(b, storetest.New(b)) }

// BenchmarkExportPostgres is BenchmarkExport from a buffer on PostgreSQL (the test server on
// loopback).
func BenchmarkExportPostgres(b *testing.B) {
	benchExport(b, storetest.NewPostgres(b, store.Config{Buffer: store.BufferConfig{MaxEvents: 1 << 40, MaxBytes: 1 << 50}}))
}

func benchExport(b *testing.B, st *store.Store) {
	srv := s3test.Require(b)
	bucket := srv.NewBucket(b)
	key, secret := srv.NewUser(b, s3test.PutOnlyPolicy(bucket))
	x, stop := runExporter(b, st, exporter.ExporterConfig{})
	defer stop()
	c, err := st.CreateConfiguration(b.Context(), store.ExportConfiguration{Kind: store.KindS3AccessKey, Interval: store.Every24Hours, Enabled: true,
		Bucket: bucket, Path: "bench", Region: "us-east-1", Endpoint: srv.Endpoint, AccessKeyID: key}, secret, store.Principal{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	// Filling the buffer is not part of the export: only the exports are timed.
	var exported, written int64
	var exporting time.Duration
	for b.Loop() {
		fillBuffer(b, st, benchEvents)
		start := time.Now()
		job, err := x.RunNow(context.Background(), c.ID)
		exporting += time.Since(start)
		if err != nil || job.Status != store.JobSucceeded {
			b.Fatalf("export: %+v %v", job, err)
		}
		exported += job.EventCount
		written += job.Bytes
	}
	b.ReportMetric(float64(exported)/exporting.Seconds(), "events/s")
	b.ReportMetric(float64(written)/float64(exported), "parquet-bytes/event")
}

func runExporter(tb testing.TB, st *store.Store, cfg exporter.ExporterConfig) (*exporter.Exporter, func()) {
	cfg.TempDir = filepath.Join(tb.TempDir(), "export")
	return runExporterWith(tb, st, cfg, exporter.NewClients(exporter.ClientsConfig{Transport: exporter.LoopbackTransport(tb)}))
}

// runExporterWith runs an exporter until the returned stop is called.
func runExporterWith(tb testing.TB, st *store.Store, cfg exporter.ExporterConfig, clients *exporter.Clients) (*exporter.Exporter, func()) {
	x := exporter.NewExporter(cfg, st, clients)
	ctx, cancel := context.WithCancel(context.Background())
	done := x.Start(ctx)
	return x, func() { cancel(); <-done }
}

// peakHeap samples the live heap every 5ms until stop is called and returns the highest value.
func peakHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// BenchmarkExportMillionPeakHeap exports 1,000,000 buffered events in one job and reports the
// peak live heap while it runs: it stays near one row group per open file, whatever the job's
// size.
func BenchmarkExportMillionPeakHeap(b *testing.B) {
	srv := s3test.Require(b)
	bucket := srv.NewBucket(b)
	key, secret := srv.NewUser(b, s3test.PutOnlyPolicy(bucket))
	for b.Loop() {
		b.StopTimer()
		st := storetest.New(b)
		x, stop := runExporter(b, st, exporter.ExporterConfig{})
		c, err := st.CreateConfiguration(b.Context(), store.ExportConfiguration{Kind: store.KindS3AccessKey, Interval: store.Every24Hours, Enabled: true,
			Bucket: bucket, Path: "million", Region: "us-east-1", Endpoint: srv.Endpoint, AccessKeyID: key}, secret, store.Principal{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		fillBuffer(b, st, 1_000_000)
		runtime.GC()
		before := heapNow()
		b.StartTimer()
		measure := peakHeap()
		job, err := x.RunNow(context.Background(), c.ID)
		peak := measure()
		if err != nil || job.Status != store.JobSucceeded || job.EventCount < 1_000_000 {
			b.Fatalf("export: %+v %v", job, err)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(peak-min(before, peak))/(1<<20), "heap-growth-MiB")
		stop()
	}
}

func heapNow() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}
