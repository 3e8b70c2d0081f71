package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/disk"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// onTinyDisk runs the server in a mount namespace of its own in which dir is a tmpfs of size,
// so that a test can fill the server's disk. It needs no root: unshare maps the user to root in
// a new user namespace.
func onTinyDisk(t *testing.T, dir, size string) []string {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed to give the server a small disk: %v", err)
	}
	return []string{"unshare", "--user", "--map-root-user", "--mount", "sh", "-c", `mount -t tmpfs -o size=` + size + ` tmpfs "$0" && exec "$@"`, dir}
}

// fillDisk writes path until the disk refuses more, down to its last page.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for chunk := 1 << 20; chunk >= 1<<10; {
		if _, err := f.Write(make([]byte, chunk)); err != nil {
			if !disk.Full(err) {
				t.Fatal(err)
			}
			chunk /= 2
		}
	}
}

// postEvents sends an NDJSON batch and returns the status, the Retry-After header and the body.
func postEvents(t testing.TB, s *testserver.Server, body []byte) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/audit/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(raw)
}

func readyz(t *testing.T, s *testserver.Server) (int, string) {
	t.Helper()
	resp, err := http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(raw))
}

// TestFullDiskRefusesThenRecovers fills the disk of the real server's data directory (a small
// tmpfs). Ingest answers 503 with Retry-After, /readyz answers 503, and an export fails saying
// the service's disk is full, naming no path and not blaming the destination. Once space is
// freed, without a restart, it is ready again, ingests, and exports every acknowledged event
// exactly once, and none it refused.
func TestFullDiskRefusesThenRecovers(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	dataDir := t.TempDir()
	server := testserver.Start(t, testserver.Options{
		DataDir: dataDir, Wrap: onTinyDisk(t, dataDir, "16m"),
		Env:  []string{"AUDITEXPORT_ADMIN_TOKEN=full-disk-test-admin-token"},
		Args: []string{"--disk-min-free-bytes", "65536", "--export-retry-min", "200ms", "--export-retry-max", "1s"},
	})
	seen := fmt.Sprintf("/proc/%d/root%s", server.Pid(), dataDir) // the server's data directory, from here
	id := createOn(server, srv.Endpoint, bucket, key, secret)
	start := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	acknowledged := map[string]bool{}
	send := func(first, n int) (int, string, string) {
		status, retry, body := postEvents(t, server, eventtest.NDJSON(first, n, start, time.Second))
		if status == http.StatusAccepted {
			for i := first; i < first+n; i++ {
				acknowledged[eventtest.ID(i).String()] = true
			}
		}
		return status, retry, body
	}
	if status, _, body := send(0, 1000); status != http.StatusAccepted {
		t.Fatalf("ingest before the disk fills: %d %s", status, body)
	}
	if status, body := readyz(t, server); status != http.StatusOK {
		t.Fatalf("readyz before the disk fills: %d %s", status, body)
	}

	ballast := filepath.Join(seen, "ballast")
	fillDisk(t, ballast)
	status, retry, body := send(1000, 2000)
	if status != http.StatusServiceUnavailable || retry == "" || !strings.Contains(body, "DISK_FULL") {
		t.Fatalf("ingest on a full disk: %d, Retry-After %q: %s", status, retry, body)
	}
	if status, body := readyz(t, server); status != http.StatusServiceUnavailable || !strings.Contains(body, "disk") {
		t.Fatalf("readyz on a full disk: %d %s", status, body)
	}
	job := runExportNow(t, server, id)
	if job.Status == "SUCCEEDED" {
		t.Fatalf("an export succeeded on a full disk: %+v", job)
	}
	waitUntil(t, "the export's attempt fails", func() bool {
		job = latestJob(t, server, id)
		return job.FailureReason != ""
	})
	if !strings.Contains(job.FailureReason, "disk is full") || strings.Contains(job.FailureReason, "/") || strings.Contains(job.FailureReason, "S3") {
		t.Fatalf("failureReason %q: want the service's full disk named, no path, no blame on S3", job.FailureReason)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if status, body := readyz(t, server); status != http.StatusOK {
		t.Fatalf("readyz once space is freed: %d %s", status, body)
	}
	if status, _, body := send(3000, 1000); status != http.StatusAccepted {
		t.Fatalf("ingest once space is freed: %d %s", status, body)
	}
	waitUntil(t, "the failed job is retried and succeeds", func() bool { return latestJob(t, server, id).Status == "SUCCEEDED" })
	if job := runExportNow(t, server, id); job.Status != "SUCCEEDED" {
		t.Fatalf("export after recovery: %+v", job)
	}
	counts := exporttest.CountIDs(t, srv, bucket, "audit", id)
	for id := range acknowledged {
		if counts[id] != 1 {
			t.Errorf("acknowledged event %s exported %d times", id, counts[id])
		}
	}
	for i := 1000; i < 3000; i++ {
		if counts[eventtest.ID(i).String()] != 0 {
			t.Fatalf("event %d of the refused batch was exported", i)
		}
	}
	if len(acknowledged) != 2000 {
		t.Fatalf("%d events acknowledged, want 2000", len(acknowledged))
	}
}
