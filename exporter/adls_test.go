package exporter_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/exporter/destination/adls"
	"github.com/auditexport/auditexport/internal/azuritetest"
	"github.com/auditexport/auditexport/internal/duckdbtest"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

// An export to ADLS (Azurite) writes the same layout as to S3: every event exactly once, read
// back from the blobs by parquet-go and by DuckDB, files above the threshold in blocks, and a
// digest chain that verifies with a read-only SAS token.
func TestExportToADLS(t *testing.T) {
	az := azuritetest.Require(t)
	duck := duckdbtest.Require(t)
	container, token := az.NewContainerWithSAS(t, sas.ContainerPermissions{Create: true, Write: true}, time.Now().Add(time.Hour))
	st := storetest.New(t)
	x, stop := runExporterWith(t, st, exporter.ExporterConfig{TempDir: filepath.Join(t.TempDir(), "export"), MaxFileEventBytes: 600 << 10, RowGroupBytes: 100 << 10},
		exporter.NewClients(exporter.ClientsConfig{Transport: exporter.LoopbackTransport(t), MultipartThreshold: 100 << 10, PartSize: 32 << 10}))
	defer stop()
	c, err := st.CreateConfiguration(t.Context(), store.ExportConfiguration{Kind: store.KindADLSSASToken, Interval: store.Every12Hours, Enabled: true,
		StorageAccount: az.Account, FileSystem: container, Path: "audit/tenant=acme", Endpoint: az.Endpoint}, "?"+token, store.Principal{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 30, 21, 30, 0, 0, time.UTC)
	var jobs []store.ExportJob
	for round := range 2 {
		ingest(t, st, eventtest.NDJSON(round*3000, 3000, start.Add(time.Duration(round)*3*time.Hour), 3*time.Second))
		job, err := x.RunNow(context.Background(), c.ID)
		if err != nil || job.Status != store.JobSucceeded || job.ObjectCount < 3 {
			t.Fatalf("export %d: %+v %v", round, job, err)
		}
		jobs = append(jobs, job)
	}
	src := exporttest.Azure(az, container)
	want := exporttest.Buffered(t, st, c.Cursor)
	exporttest.CheckExactlyOnce(t, exporttest.ExportedFrom(t, src, "audit/tenant=acme", c.ID), want)

	// The blobs are the tasks' objects, no more: retries overwrite.
	var keys []string
	var largest int64
	for _, job := range jobs {
		tasks, err := st.Tasks(t.Context(), job.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			keys = append(keys, task.Key)
			largest = max(largest, task.Bytes)
		}
	}
	if largest <= 100<<10 {
		t.Fatalf("no file above the block threshold (largest %d bytes)", largest)
	}
	slices.Sort(keys)
	if blobs := az.ListBlobs(t, container, "audit/tenant=acme/year="); !slices.Equal(blobs, keys) {
		t.Fatalf("blobs %v\ntasks %v", blobs, keys)
	}

	dir := t.TempDir()
	exporttest.DownloadFrom(t, src, "audit/tenant=acme", dir)
	rows := duck.Query(t, fmt.Sprintf("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM read_parquet('%s/**/*.parquet', hive_partitioning = true)", filepath.ToSlash(dir)))[0]
	if fmt.Sprint(rows) != fmt.Sprintf("[map[ids:%d n:%d]]", len(want), len(want)) {
		t.Fatalf("DuckDB counts %v, want %d events", rows, len(want))
	}

	key, err := st.DigestSigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	readToken := az.ContainerSAS(t, container, sas.ContainerPermissions{Read: true, List: true}, time.Time{}, time.Now().Add(time.Hour))
	reader, err := adls.NewReader(az.Endpoint, container, readToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	report, err := exporter.VerifyDigests(t.Context(), reader, "audit/tenant=acme", key.Public().(ed25519.PublicKey))
	if err != nil || !report.OK() || report.Digests != 2 || report.Objects != len(keys) {
		t.Fatalf("digest verify: %+v %v", report, err)
	}
	// The signature is in the digest's metadata under Azure's names.
	digests := az.ListBlobs(t, container, "audit/tenant=acme/"+exporter.DigestDir+"/")
	if len(digests) != 2 || !strings.HasSuffix(digests[0], "-digest.json") {
		t.Fatalf("digests %v", digests)
	}
}

func ingest(t *testing.T, st *store.Store, ndjson []byte) {
	t.Helper()
	f := exportFixture{store: st}
	f.ingest(t, ndjson)
}
