package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

func ingestNDJSON(t testing.TB, server *testserver.Server, body []byte) {
	t.Helper()
	if status, _, answer := postEvents(t, server, body); status != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", status, answer)
	}
}

// startExport asks for an export without waiting for, or caring about, the answer.
func startExport(s *testserver.Server, configID string) {
	body := fmt.Sprintf(`{"query":"mutation { runExportNow(id: \"%s\") { id } }"}`, configID)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/audit/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

var exportedKey = regexp.MustCompile(`^audit/year=\d{4}/month=\d{2}/day=\d{2}/hour=\d{2}/\d{20}-\d{20}-[0-9a-f-]{36}-snappy\.parquet$`)

// TestExportSurvivesSIGKILL exports through the real binary and kills it with SIGKILL at random
// moments during the export, three times; after the restarts the export completes and every
// event is in the bucket exactly once.
func TestExportSurvivesSIGKILL(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	dataDir := t.TempDir()
	// Small files: many objects, so kills land between and during uploads.
	args := []string{"--export-max-file-bytes", "400000", "--export-row-group-bytes", "100000", "--export-retry-min", "200ms", "--export-retry-max", "1s"}
	server := testserver.Start(t, testserver.Options{DataDir: dataDir, Args: args})
	id := server.CreateConfiguration(map[string]any{"interval": "EVERY_24_HOURS", "bucket": bucket, "path": "audit", "region": "us-east-1",
		"accessKeyId": key, "secretAccessKey": secret, "endpoint": srv.Endpoint})
	const events = 60_000
	start := time.Date(2026, 11, 20, 22, 0, 0, 0, time.UTC)
	for i := 0; i < events; i += 10_000 {
		ingestNDJSON(t, server, eventtest.NDJSON(i, 10_000, start.Add(time.Duration(i)*time.Second/4), 250*time.Millisecond))
	}
	runNow := func(s *testserver.Server) exportJob {
		var out struct{ RunExportNow exportJob }
		s.MustGraphQL(s.AdminToken, `mutation($id: ID!) { runExportNow(id: $id) { id status eventCount attempts } }`, map[string]any{"id": id}, &out)
		return out.RunExportNow
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	kills := 0
	for round := range 3 {
		go startExport(server, id) // its answer is lost in the kill
		time.Sleep(time.Duration(100+rng.IntN(700)) * time.Millisecond)
		server.Kill()
		kills++
		t.Logf("round %d: killed; %d objects in the bucket so far", round, len(srv.Keys(t, bucket, "audit/year=")))
		server = testserver.Start(t, testserver.Options{DataDir: dataDir, Args: args})
	}
	// The unfinished job resumes by itself; runExportNow waits for it.
	deadline := time.Now().Add(90 * time.Second)
	job := runNow(server)
	for job.Status != "SUCCEEDED" {
		if time.Now().After(deadline) {
			t.Fatalf("export did not finish: %+v\n%s", job, server.Logs())
		}
		time.Sleep(200 * time.Millisecond)
		job = runNow(server)
	}
	server.Stop()
	t.Logf("job %s finished after %d kills with %d attempts", job.ID, kills, job.Attempts)

	keys := srv.Keys(t, bucket, "audit/year=")
	for _, k := range keys {
		if !exportedKey.MatchString(k) {
			t.Errorf("unexpected object %q", k)
		}
	}
	rows := exporttest.Exported(t, srv, bucket, "audit", id)
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.ID]++
	}
	for i := range events {
		if n := seen[eventtest.ID(i).String()]; n != 1 {
			t.Errorf("event %d exported %d times", i, n)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s exported %d times", id, n)
		}
	}
	t.Logf("%d objects, %d rows", len(keys), len(rows))
}

// TestExportResumesAfterSIGTERM stops the server with SIGTERM during an export: it exits cleanly
// within its shutdown bound, and after a restart the job resumes and every event arrives once.
func TestExportResumesAfterSIGTERM(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	dataDir := t.TempDir()
	args := []string{"--export-max-file-bytes", "300000", "--shutdown-timeout", "3s", "--export-retry-min", "200ms"}
	server := testserver.Start(t, testserver.Options{DataDir: dataDir, Args: args})
	id := server.CreateConfiguration(map[string]any{"interval": "EVERY_24_HOURS", "bucket": bucket, "path": "audit", "region": "us-east-1",
		"accessKeyId": key, "secretAccessKey": secret, "endpoint": srv.Endpoint})
	const events = 40_000
	for i := 0; i < events; i += 10_000 {
		ingestNDJSON(t, server, eventtest.NDJSON(i, 10_000, time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC), time.Second/5))
	}
	go startExport(server, id)
	time.Sleep(150 * time.Millisecond)
	stopping := time.Now()
	server.Stop() // SIGTERM; fails the test unless the process exits cleanly
	if took := time.Since(stopping); took > 10*time.Second {
		t.Fatalf("stopping took %v, more than the shutdown bound allows", took)
	}

	server = testserver.Start(t, testserver.Options{DataDir: dataDir, Args: args})
	deadline := time.Now().Add(60 * time.Second)
	var jobs struct{ GetAllExportJobs []exportJob }
	for len(jobs.GetAllExportJobs) == 0 || jobs.GetAllExportJobs[0].Status != "SUCCEEDED" {
		if time.Now().After(deadline) {
			t.Fatalf("the job did not resume: %+v", jobs)
		}
		time.Sleep(200 * time.Millisecond)
		server.MustGraphQL(server.AdminToken, `query($id: ID!) { getAllExportJobs(exportConfigurationId: $id) { id status eventCount attempts } }`, map[string]any{"id": id}, &jobs)
	}
	// The attempt either finished within the drain or was cut short and resumed here; both
	// leave exactly one job. (exporter.TestShutdownInterruptsAndResumes forces the second.)
	if len(jobs.GetAllExportJobs) != 1 {
		t.Fatalf("want the one job, finished, got %+v", jobs.GetAllExportJobs)
	}
	t.Logf("job finished after %d attempt(s)", jobs.GetAllExportJobs[0].Attempts)
	seen := map[string]int{}
	for _, r := range exporttest.Exported(t, srv, bucket, "audit", id) {
		seen[r.ID]++
	}
	for i := range events {
		if n := seen[eventtest.ID(i).String()]; n != 1 {
			t.Fatalf("event %d exported %d times", i, n)
		}
	}
	ingestNDJSON(t, server, eventtest.NDJSON(events, 10, time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC), time.Second))
	server.MustGraphQL(server.AdminToken, `mutation($id: ID!) { runExportNow(id: $id) { id } }`, map[string]any{"id": id}, nil)
	metrics := getMetrics(t, server)
	if !strings.Contains(metrics, `auditexport_export_events_total{configuration="`+id+`"}`) ||
		!strings.Contains(metrics, `auditexport_export_lag_events{configuration="`+id+`"} 0`) {
		t.Fatalf("export metrics missing:\n%s", grepLines(metrics, "auditexport_export"))
	}
}

func getMetrics(t *testing.T, s *testserver.Server) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
