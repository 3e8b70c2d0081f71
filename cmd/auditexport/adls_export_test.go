package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/azuritetest"
	"github.com/auditexport/auditexport/internal/duckdbtest"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/testserver"
)

// TestADLSExportSurvivesSIGKILL exports to Azurite through the real binary, configured with the
// CLI, and kills it with SIGKILL at random moments during the export; after the restarts the
// export completes with the keys its tasks recorded, every event is in the file system exactly
// once (read back by parquet-go and by DuckDB), and `digest verify` passes with a read-only token.
func TestADLSExportSurvivesSIGKILL(t *testing.T) {
	az := azuritetest.Require(t)
	duck := duckdbtest.Require(t)
	container, token := az.NewContainerWithSAS(t, createWrite, time.Now().Add(time.Hour))
	dataDir := t.TempDir()
	// Small files and blocks: many objects, several in blocks, so kills land between and during uploads.
	args := []string{"--export-max-file-bytes", "400000", "--export-row-group-bytes", "100000", "--export-multipart-threshold", "100000",
		"--export-retry-min", "200ms", "--export-retry-max", "1s"}
	server := testserver.Start(t, testserver.Options{DataDir: dataDir, Args: args})
	cli := newCLI(t, server)
	file := writeFile(t, "adls.json", fmt.Sprintf(`{"name":"lake","interval":"EVERY_24_HOURS","storageAccount":%q,"fileSystem":%q,"path":"audit","endpoint":%q,"sasTokenEnv":"LAKE_SAS"}`,
		az.Account, container, az.Endpoint))
	res := cli.run("", []string{"LAKE_SAS=?" + token}, "exportConfig", "create:adls:sasToken", file, "-o", "json")
	var cfg exportConfig
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &cfg) != nil || cfg.ConnectionStatus != "SUCCESS" || cfg.kind() != typeADLS {
		t.Fatalf("create:adls:sasToken: %d %s%s", res.code, res.stdout, res.stderr)
	}
	const events = 80_000
	start := time.Date(2026, 11, 20, 22, 0, 0, 0, time.UTC)
	for i := 0; i < events; i += 10_000 {
		ingestNDJSON(t, server, eventtest.NDJSON(i, 10_000, start.Add(time.Duration(i)*time.Second/4), 250*time.Millisecond))
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for round := range 3 {
		go startExport(server, cfg.ID)
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		server.Kill()
		t.Logf("round %d: killed; %d blobs so far", round, len(az.ListBlobs(t, container, "audit/year=")))
		server = testserver.Start(t, testserver.Options{DataDir: dataDir, Args: args})
	}
	cli = newCLI(t, server)
	deadline := time.Now().Add(90 * time.Second)
	var job exportJob
	for job.Status != "SUCCEEDED" {
		if time.Now().After(deadline) {
			t.Fatalf("export did not finish: %+v\n%s", job, server.Logs())
		}
		cli.json(&job, "exportConfig", "run", "lake")
	}
	if job.Attempts < 2 {
		t.Fatalf("no kill landed during the export: %+v", job)
	}
	t.Logf("job %s finished after 3 kills with %d attempts", job.ID, job.Attempts)

	// Every blob is one of the job's tasks, at the key the task recorded before its upload.
	var tasks []exportTask
	cli.json(&tasks, "exportConfig", "tasks", job.ID)
	var keys []string
	for _, task := range tasks {
		keys = append(keys, task.Key)
	}
	slices.Sort(keys)
	if blobs := az.ListBlobs(t, container, "audit/year="); !slices.Equal(blobs, keys) {
		t.Fatalf("blobs %v\ntask keys %v", blobs, keys)
	}
	src := exporttest.Azure(az, container)
	seen := map[string]int{}
	for _, r := range exporttest.ExportedFrom(t, src, "audit", cfg.ID) {
		seen[r.ID]++
	}
	for i := range events {
		if n := seen[eventtest.ID(i).String()]; n != 1 {
			t.Fatalf("event %d exported %d times", i, n)
		}
	}
	dir := t.TempDir()
	exporttest.DownloadFrom(t, src, "audit", dir)
	counts := duck.Query(t, fmt.Sprintf("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM read_parquet('%s/**/*.parquet')", filepath.ToSlash(dir)))[0]
	if fmt.Sprint(counts) != fmt.Sprintf("[map[ids:%d n:%d]]", len(seen), len(seen)) {
		t.Fatalf("DuckDB counts %v, want %d", counts, len(seen))
	}

	pem := writeFile(t, "key.pem", cli.ok("digest", "public-key"))
	readToken := az.ContainerSAS(t, container, sas.ContainerPermissions{Read: true, List: true}, time.Time{}, time.Now().Add(time.Hour))
	verify := cli.run("", []string{"AZURE_STORAGE_SAS_TOKEN=" + readToken}, "digest", "verify", "--storage-account", az.Account,
		"--file-system", container, "--endpoint", az.Endpoint, "--path", "audit", "--public-key", pem)
	if verify.code != 0 || !strings.Contains(verify.stdout, fmt.Sprintf("%d objects checked, 0 problems", len(keys))) {
		t.Fatalf("digest verify: %d\n%s%s", verify.code, verify.stdout, verify.stderr)
	}
	// The same with a token that cannot read: the check cannot run, and says why.
	denied := cli.run("", []string{"AZURE_STORAGE_SAS_TOKEN=" + token}, "digest", "verify", "--storage-account", az.Account,
		"--file-system", container, "--endpoint", az.Endpoint, "--path", "audit", "--public-key", pem)
	if denied.code != 1 || !strings.Contains(denied.stderr, "AuthorizationPermissionMismatch") {
		t.Fatalf("digest verify with a write-only token: %d\n%s%s", denied.code, denied.stdout, denied.stderr)
	}
}
