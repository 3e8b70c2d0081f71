package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/auditexport/auditexport/event/eventtest"
)

// The exporter is not running in these tests: runExportNow records the job and returns it
// PENDING. Exports to a real S3 server are tested in exporter and cmd/auditexport.
func TestExportJobOperations(t *testing.T) {
	api := newTestAPI(t)
	c := api.client(adminToken)
	var created struct {
		CreateS3AssumedRoleExportConfiguration struct {
			ID            string
			PendingEvents int
			NextExportAt  *string
			LastExport    *struct{ ID string }
		}
	}
	c.MustPost(`mutation { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_2_HOURS bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" }) { id pendingEvents nextExportAt lastExport { id } } }`, &created)
	cfg := created.CreateS3AssumedRoleExportConfiguration
	next, err := time.Parse(time.RFC3339, *cfg.NextExportAt)
	if err != nil || next.Hour()%2 != 0 || next.Minute() != 0 || !next.After(time.Now()) || time.Until(next) > 2*time.Hour {
		t.Fatalf("nextExportAt %v (%v): want the next even UTC hour", next, err)
	}
	if cfg.PendingEvents != 1 || cfg.LastExport != nil { // its own creation event
		t.Fatalf("new configuration: %+v", cfg)
	}
	if rec, _ := api.ingest(adminToken, "application/x-ndjson", "", eventtest.NDJSON(0, 30, eventsStart, time.Minute)); rec.Code != http.StatusAccepted {
		t.Fatalf("ingest: %d", rec.Code)
	}

	var run struct {
		RunExportNow struct {
			ID, ExportConfigurationID, Status                                    string
			Attempts, EventCount, PlannedEventCount, FirstSequence, LastSequence int
		}
	}
	c.MustPost(`mutation($id: ID!) { runExportNow(id: $id) { id exportConfigurationId status attempts eventCount plannedEventCount firstSequence lastSequence } }`, &run, client.Var("id", cfg.ID))
	if job := run.RunExportNow; job.ExportConfigurationID != cfg.ID || job.Status != "PENDING" ||
		job.PlannedEventCount != 31 || job.LastSequence-job.FirstSequence+1 != 31 || job.FirstSequence < 1 || job.EventCount != 0 {
		t.Fatalf("runExportNow = %+v, want PENDING with 31 events planned", job)
	}
	// Asking again returns the same unfinished job: one job at a time per destination.
	var again struct{ RunExportNow struct{ ID string } }
	c.MustPost(`mutation($id: ID!) { runExportNow(id: $id) { id } }`, &again, client.Var("id", cfg.ID))
	if again.RunExportNow.ID != run.RunExportNow.ID {
		t.Fatalf("a second job %s while %s is unfinished", again.RunExportNow.ID, run.RunExportNow.ID)
	}

	var jobs struct{ GetAllExportJobs []map[string]any }
	c.MustPost(`query($id: ID!) { getAllExportJobs(exportConfigurationId: $id, limit: 5) { id status startTimestamp endTimestamp eventCount objectCount bytes attempts failureReason nextAttemptTimestamp skippedEvents } }`, &jobs, client.Var("id", cfg.ID))
	if len(jobs.GetAllExportJobs) != 1 || jobs.GetAllExportJobs[0]["id"] != run.RunExportNow.ID || jobs.GetAllExportJobs[0]["attempts"] != 0.0 ||
		jobs.GetAllExportJobs[0]["skippedEvents"] != 0.0 {
		t.Fatalf("getAllExportJobs = %+v", jobs)
	}
	var tasks struct{ GetAllExportJobTasks []map[string]any }
	c.MustPost(`query($id: String!) { getAllExportJobTasks(exportJobId: $id) { id key offset limit status attempts } }`, &tasks, client.Var("id", run.RunExportNow.ID))
	if len(tasks.GetAllExportJobTasks) != 0 {
		t.Fatalf("tasks of a job not yet run: %+v", tasks)
	}
	var got struct {
		GetExportConfiguration struct {
			PendingEvents int
			SkippedEvents *int
			LastExport    struct{ ID, Status string }
		}
	}
	c.MustPost(`query($id: ID!) { getExportConfiguration(id: $id) { pendingEvents skippedEvents lastExport { id status } } }`, &got, client.Var("id", cfg.ID))
	if got.GetExportConfiguration.PendingEvents != 31 || got.GetExportConfiguration.LastExport.ID != run.RunExportNow.ID ||
		got.GetExportConfiguration.SkippedEvents == nil || *got.GetExportConfiguration.SkippedEvents != 0 {
		t.Fatalf("configuration after runExportNow: %+v", got)
	}

	for query, want := range map[string]string{
		`{ getAllExportJobs(exportConfigurationId: "` + cfg.ID + `", limit: 0) { id } }`: "limit: must be between 1 and 100",
		`{ getAllExportJobs(exportConfigurationId: "nope") { id } }`:                     `export configuration "nope" not found`,
		`{ getAllExportJobTasks(exportJobId: "nope") { id } }`:                           `export job "nope" not found`,
		`mutation { runExportNow(id: "01a1ffdb-3f23-7df1-80b5-645a8cda7506") { id } }`:   "not found",
	} {
		if _, resp := api.query(adminToken, query, nil); !strings.Contains(resp.message(), want) {
			t.Errorf("%s: %s", query, resp.Body)
		}
	}
	c.MustPost(`mutation($id: ID!) { disableExportConfiguration(id: $id) { id nextExportAt } }`, &map[string]any{}, client.Var("id", cfg.ID))
	var disabled struct {
		GetExportConfiguration struct{ NextExportAt *string }
	}
	c.MustPost(`query($id: ID!) { getExportConfiguration(id: $id) { nextExportAt } }`, &disabled, client.Var("id", cfg.ID))
	if disabled.GetExportConfiguration.NextExportAt != nil {
		t.Fatalf("a disabled configuration has a next export: %v", *disabled.GetExportConfiguration.NextExportAt)
	}
	if _, resp := api.query(adminToken, `mutation($id: ID!) { runExportNow(id: $id) { id } }`, map[string]any{"id": cfg.ID}); !strings.Contains(resp.message(), "disabled") {
		t.Fatalf("runExportNow of a disabled configuration: %s", resp.Body)
	}
}

// A configuration created with a startTime in the past starts with the events buffered since.
func TestCreateWithStartTime(t *testing.T) {
	api := newTestAPI(t)
	if rec, _ := api.ingest(adminToken, "application/x-ndjson", "", eventtest.NDJSON(0, 40, eventsStart, time.Minute)); rec.Code != http.StatusAccepted {
		t.Fatalf("ingest: %d", rec.Code)
	}
	var created struct {
		WithStart    struct{ PendingEvents int }
		WithoutStart struct{ PendingEvents int }
	}
	api.client(adminToken).MustPost(`mutation($start: DateTime!) {
		withStart: createS3AssumedRoleExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" startTime: $start }) { pendingEvents }
		withoutStart: createS3AssumedRoleExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" }) { pendingEvents } }`,
		&created, client.Var("start", time.Now().Add(-time.Hour).Format(time.RFC3339)))
	// The 40 events and its own creation event; without a start time, only the creation event.
	if created.WithStart.PendingEvents != 41 || created.WithoutStart.PendingEvents != 1 {
		t.Fatalf("pending events with a start time %d (want 41), without %d (want 1)", created.WithStart.PendingEvents, created.WithoutStart.PendingEvents)
	}
}
