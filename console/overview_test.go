package console_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/browsertest"
	"github.com/auditexport/auditexport/internal/testserver"
)

var updateDocs = flag.Bool("update-docs", false, "write the overview's screenshot to docs/console.png (the README's)")

// TestConsoleOverviewOfSeveralExports: exports in every state at a glance: one exporting (a job,
// events pending again), one failing (its whole error), one disabled; the failing count, the
// lag of each as the API has it. With -update-docs the screenshot becomes the README's.
func TestConsoleOverviewOfSeveralExports(t *testing.T) {
	d := newDestination(t)
	s3, bucket, accessKey, secret := d.s3, d.bucket, d.accessKey, d.secret
	srv := testserver.Start(t, testserver.Options{})
	ingest := newToken(srv, "pipeline", "INGEST")
	s3config := func(name, path string) string {
		return srv.CreateConfiguration(map[string]any{"name": name, "interval": "EVERY_HOUR", "bucket": bucket, "path": path, "region": "us-east-1",
			"accessKeyId": accessKey, "secretAccessKey": secret, "endpoint": s3.Endpoint})
	}
	exporting := s3config("acme-production", "audit/acme")
	postEvents(t, srv, ingest, eventtest.NDJSON(0, 300, time.Now().UTC(), time.Second))
	srv.MustGraphQL(srv.AdminToken, `mutation($id: ID!) { runExportNow(id: $id) { id } }`, map[string]any{"id": exporting}, nil)
	failing := srv.CreateConfiguration(map[string]any{"name": "globex-audit", "interval": "EVERY_6_HOURS", "bucket": "globex-audit-logs", "region": "eu-west-1",
		"roleArn": "arn:aws:iam::210987654321:role/auditexport"})
	disabled := s3config("initech-archive", "archive")
	srv.MustGraphQL(srv.AdminToken, `mutation($id: ID!) { disableExportConfiguration(id: $id) { id } }`, map[string]any{"id": disabled}, nil)
	postEvents(t, srv, ingest, eventtest.NDJSON(1000, 25, time.Now().UTC(), time.Second))

	c := openConsole(t, srv)
	c.signIn(srv.AdminToken)
	c.waitFor(`document.querySelectorAll('tr[data-id]').length === 3`)
	if summary := c.text(".summary"); !strings.Contains(summary, "3 configurations") || !strings.Contains(summary, "1 failing") {
		t.Fatalf("summary %q", summary)
	}
	row := func(id string) string { return c.text(fmt.Sprintf(`tr[data-id=%q]`, id)) }
	if r := row(exporting); !strings.Contains(r, "SUCCEEDED") || !strings.Contains(r, "SUCCESS") {
		t.Errorf("exporting row: %q", r)
	}
	if r := row(failing); !strings.Contains(r, "FAILING") || !strings.Contains(r, "Error testing access to S3 using AssumedRole arn:aws:iam::210987654321:role/auditexport - ") {
		t.Errorf("failing row: %q", r)
	}
	if r := row(disabled); !strings.Contains(r, "Disabled") {
		t.Errorf("disabled row: %q", r)
	}
	var api struct {
		GetAllExportConfigurations []struct {
			ID            string
			PendingEvents int
			ExportLag     struct{ OldestPendingEventReceivedAt *string }
		}
	}
	srv.MustGraphQL(srv.AdminToken, `{ getAllExportConfigurations { id pendingEvents exportLag { oldestPendingEventReceivedAt } } }`, nil, &api)
	for _, cfg := range api.GetAllExportConfigurations {
		shown := c.text(fmt.Sprintf(`.lag-list li[data-config=%q] .lag-value`, cfg.ID))
		if (cfg.ExportLag.OldestPendingEventReceivedAt == nil) != (shown == "nothing pending") || cfg.PendingEvents == 0 {
			t.Errorf("lag of %s shown as %q; the API: %d pending, oldest %v", cfg.ID, shown, cfg.PendingEvents, cfg.ExportLag.OldestPendingEventReceivedAt)
		}
	}
	path := browsertest.Screenshot(t, c.ctx, "overview-several")
	c.noCSPViolations()
	if *updateDocs {
		png, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
