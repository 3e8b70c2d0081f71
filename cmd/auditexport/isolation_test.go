package main

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// isolationArgs keep the server from retrying or re-checking by itself during these tests, so
// every connection to a hung endpoint is one the test asked for.
var isolationArgs = []string{"--check-retry-min", "1h", "--export-retry-min", "1h"}

// createOn creates a configuration exporting to endpoint with the given key.
func createOn(s *testserver.Server, endpoint, bucket, key, secret string) string {
	return s.CreateConfiguration(map[string]any{"interval": "EVERY_24_HOURS", "bucket": bucket, "path": "audit", "region": "us-east-1",
		"accessKeyId": key, "secretAccessKey": secret, "endpoint": endpoint})
}

type jobState struct {
	ID            string
	Status        string
	Attempts      int
	FailureReason string
}

// latestJob is the configuration's newest export job.
func latestJob(t *testing.T, s *testserver.Server, configID string) jobState {
	t.Helper()
	var out struct{ GetAllExportJobs []jobState }
	s.MustGraphQL(s.AdminToken, `query($id: ID!) { getAllExportJobs(exportConfigurationId: $id, limit: 1) { id status attempts failureReason } }`,
		map[string]any{"id": configID}, &out)
	if len(out.GetAllExportJobs) == 0 {
		return jobState{}
	}
	return out.GetAllExportJobs[0]
}

// runExportNow runs the configuration's export and returns its job, failing the test if the
// server does not answer.
func runExportNow(t *testing.T, s *testserver.Server, configID string) jobState {
	t.Helper()
	var out struct{ RunExportNow jobState }
	graphQLWithin(t, s, `mutation($id: ID!) { runExportNow(id: $id) { id status attempts failureReason } }`, map[string]any{"id": configID}, &out)
	return out.RunExportNow
}

// TestHungDestinationsDoNotHoldUpOthersExports: two configurations whose endpoint accepts
// connections and never answers each run an export, which hangs in its upload; with the default
// two export workers, a third, healthy configuration's runExportNow still answers with its job
// done while the other two are still stuck in their first attempt.
func TestHungDestinationsDoNotHoldUpOthersExports(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	hung := newHungEndpoint(t)
	server := testserver.Start(t, testserver.Options{Args: isolationArgs})
	stuck := []string{createOn(server, hung.URL, bucket, key, secret), createOn(server, hung.URL, bucket, key, secret)}
	healthy := createOn(server, srv.Endpoint, bucket, key, secret)
	ingestNDJSON(t, server, eventtest.NDJSON(0, 200, time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC), time.Second))

	hung.hang()
	for _, id := range stuck {
		go startExport(server, id) // never answered while the destination hangs
	}
	waitUntil(t, "both stuck exports are uploading", func() bool {
		held, _ := hung.counts()
		return held >= 2 && latestJob(t, server, stuck[0]).Status == "RUNNING" && latestJob(t, server, stuck[1]).Status == "RUNNING"
	})

	if job := runExportNow(t, server, healthy); job.Status != "SUCCEEDED" {
		t.Fatalf("healthy configuration's runExportNow: %+v, want SUCCEEDED", job)
	}
	for _, id := range stuck {
		if job := latestJob(t, server, id); job.Status != "RUNNING" || job.Attempts != 1 {
			t.Fatalf("stuck configuration's job %+v: want still RUNNING in its first attempt, else the healthy one may have waited for it", job)
		}
	}
	if held, _ := hung.counts(); held < 2 {
		t.Fatalf("the stuck uploads ended (%d held): the test proves nothing", held)
	}
}

// TestHungChecksDoNotHoldUpOthers: 40 clients at once ask to verify a configuration whose
// endpoint hangs, and leave while its check hangs. One check runs for all of them, those they
// left queued never run, and a healthy configuration's verify and a plain create answer at once,
// though a check may take ten minutes here.
func TestHungChecksDoNotHoldUpOthers(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	hung := newHungEndpoint(t)
	server := testserver.Start(t, testserver.Options{Args: append([]string{"--check-timeout", "10m"}, isolationArgs...)})
	stuck := createOn(server, hung.URL, bucket, key, secret)
	healthy := createOn(server, srv.Endpoint, bucket, key, secret)

	hung.hang()
	const clients = 40
	requests := func() int { return strings.Count(server.Logs(), `"route":"graphql"`) }
	before := requests()
	ctx, leave := context.WithCancel(t.Context())
	answered := make(chan error, clients)
	sent := make(chan struct{}, clients)
	traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { sent <- struct{}{} }})
	for range clients {
		go func() {
			_, err := postGraphQL(traced, http.DefaultClient, server, `mutation($id: ID!) { verifyExportConfiguration(id: $id) { connectionStatus } }`,
				map[string]any{"id": stuck})
			answered <- err
		}()
	}
	for range clients {
		<-sent
	}
	waitUntil(t, "a check of the hung destination is in flight", func() bool {
		_, accepted := hung.counts()
		return accepted >= 1
	})
	leave()
	for range clients {
		if err := <-answered; err == nil {
			t.Fatal("a verify was answered while its check hangs")
		}
	}

	var verified struct {
		VerifyExportConfiguration struct{ ConnectionStatus string }
	}
	graphQLWithin(t, server, `mutation($id: ID!) { verifyExportConfiguration(id: $id) { connectionStatus } }`, map[string]any{"id": healthy}, &verified)
	if verified.VerifyExportConfiguration.ConnectionStatus != "SUCCESS" {
		t.Fatalf("healthy verify: %+v", verified)
	}
	var created struct {
		CreateS3AccessKeyExportConfiguration struct{ ConnectionStatus string }
	}
	graphQLWithin(t, server, `mutation($d: S3AccessKeyExportConfigurationInput!) { createS3AccessKeyExportConfiguration(data: $d) { connectionStatus } }`,
		map[string]any{"d": map[string]any{"interval": "EVERY_HOUR", "bucket": bucket, "region": "us-east-1", "accessKeyId": key,
			"secretAccessKey": secret, "endpoint": srv.Endpoint}}, &created)
	if created.CreateS3AccessKeyExportConfiguration.ConnectionStatus != "SUCCESS" {
		t.Fatalf("plain create: %+v", created)
	}
	waitUntil(t, "the server has finished with the requests that left", func() bool { return requests() >= before+clients+2 })
	if held, accepted := hung.counts(); accepted != 1 || held != 1 {
		t.Fatalf("the hung endpoint got %d check connections (%d still open): want one check for all %d clients, the rest dropped when they left",
			accepted, held, clients)
	}
}

// TestDisableAndDeleteCancelRunningWork: disabling a configuration stops its running export and
// check at once (the job waits, PENDING, for the configuration to be enabled again, the failed
// attempt not counted), and deleting one stops its export; no restart is needed to free them.
func TestDisableAndDeleteCancelRunningWork(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	toDisable, toDelete := newHungEndpoint(t), newHungEndpoint(t)
	server := testserver.Start(t, testserver.Options{Args: append([]string{"--check-timeout", "10m"}, isolationArgs...)})
	disabled := createOn(server, toDisable.URL, bucket, key, secret)
	deleted := createOn(server, toDelete.URL, bucket, key, secret)
	ingestNDJSON(t, server, eventtest.NDJSON(0, 50, time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC), time.Second))

	toDisable.hang()
	toDelete.hang()
	go startExport(server, disabled)
	go startExport(server, deleted)
	verified := make(chan testserver.Response, 1)
	go func() {
		resp, _ := postGraphQL(t.Context(), http.DefaultClient, server, `mutation($id: ID!) { verifyExportConfiguration(id: $id) { connectionStatus } }`,
			map[string]any{"id": disabled})
		verified <- resp
	}()
	waitUntil(t, "the exports and the check are in flight", func() bool {
		a, _ := toDisable.counts()
		b, _ := toDelete.counts()
		return a == 2 && b == 1
	})

	var out struct{ DisableExportConfiguration struct{ Enabled bool } }
	graphQLWithin(t, server, `mutation($id: ID!) { disableExportConfiguration(id: $id) { enabled } }`, map[string]any{"id": disabled}, &out)
	waitUntil(t, "the disabled configuration's upload and check are cut off", func() bool {
		held, _ := toDisable.counts()
		return held == 0
	})
	var job jobState
	waitUntil(t, "the disabled configuration's job is no longer RUNNING", func() bool {
		job = latestJob(t, server, disabled)
		return job.Status != "RUNNING"
	})
	if job.Status != "PENDING" || job.Attempts != 0 {
		t.Fatalf("disabled configuration's job %+v: want PENDING, its cut attempt not counted", job)
	}
	select {
	case resp := <-verified:
		if resp.Status != http.StatusOK {
			t.Fatalf("the verify cut short by disable answered %d: %s", resp.Status, resp.Body)
		}
	case <-time.After(hangLimit):
		t.Fatal("the verify cut short by disable did not answer")
	}
	if held, _ := toDelete.counts(); held != 1 {
		t.Fatalf("disabling one configuration touched another's export (%d connections held)", held)
	}

	var del struct{ DeleteExportConfiguration struct{ ID string } }
	graphQLWithin(t, server, `mutation($id: ID!) { deleteExportConfiguration(id: $id) { id } }`, map[string]any{"id": deleted}, &del)
	waitUntil(t, "the deleted configuration's upload is cut off", func() bool {
		held, _ := toDelete.counts()
		return held == 0
	})
}
