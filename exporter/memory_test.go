package exporter_test

import (
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

// exportHeapGrowthBound bounds how far the live heap grows while one job exports, whatever its
// size: chunks of events and a row group of compressed pages per open file, and GC lag
// (measured: 71 to 81 MiB for 300,000 events).
const exportHeapGrowthBound = 128 << 20

// TestExportMemoryIsBounded exports a large job and asserts the heap's growth stays under a
// fixed bound; BenchmarkExportMillionPeakHeap reports the figure for 1,000,000 events. Its file
// is above the multipart threshold, so it also proves multipart uploads need only s3:PutObject.
func TestExportMemoryIsBounded(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	st := storetest.New(t)
	x, stop := runExporterWith(t, st, exporter.ExporterConfig{TempDir: filepath.Join(t.TempDir(), "export")},
		exporter.NewClients(exporter.ClientsConfig{Transport: exporter.LoopbackTransport(t), MultipartThreshold: 6 << 20, PartSize: 5 << 20}))
	defer stop()
	c, err := st.CreateConfiguration(t.Context(), store.ExportConfiguration{Kind: store.KindS3AccessKey, Interval: store.Every24Hours, Enabled: true,
		Bucket: bucket, Path: "memory", Region: "us-east-1", Endpoint: srv.Endpoint, AccessKeyID: key}, secret, store.Principal{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	const events = 300_000 // about 210 MB of events
	fillBuffer(t, st, events)
	runtime.GC()
	before := heapNow()
	measure := peakHeap()
	job, err := x.RunNow(context.Background(), c.ID)
	peak := measure()
	if err != nil || job.Status != store.JobSucceeded || job.EventCount <= events {
		t.Fatalf("export: %+v %v", job, err)
	}
	tasks, err := st.Tasks(t.Context(), job.ID)
	if err != nil || !slices.ContainsFunc(tasks, func(task store.ExportTask) bool { return task.Bytes > 6<<20 && task.Status == store.JobSucceeded }) {
		t.Fatalf("want an object above the multipart threshold, uploaded: %+v %v", tasks, err)
	}
	growth := peak - min(before, peak)
	t.Logf("%d events, %d bytes of Parquet: heap grew by %d MiB (peak %d MiB)", job.EventCount, job.Bytes, growth>>20, peak>>20)
	if growth > exportHeapGrowthBound {
		t.Fatalf("heap grew by %d MiB exporting %d events, over the bound of %d MiB", growth>>20, job.EventCount, exportHeapGrowthBound>>20)
	}
}
