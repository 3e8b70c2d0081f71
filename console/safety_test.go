package console_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/auditexport/auditexport/internal/browsertest"
	"github.com/auditexport/auditexport/internal/testserver"
)

const xss = `<img src=x onerror=alert(1)>`

// hostileS3 is a destination that answers every request with an S3 error whose message is
// markup: a customer controls their endpoint, so whatever it says as S3 (with S3's request id:
// a reply without one is only summarised) reaches connectionStatus.
func hostileS3(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("x-amz-request-id", "1")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>%s</Message><RequestId>1</RequestId></Error>`,
			strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(xss))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestConsoleShowsHostileTextAsText: markup in a failing destination's error (the connection
// status) and in an ingested audit event about the configuration (its action and actor) is shown
// literally on the overview and the configuration's page: no element is made of it, no dialog
// opens, no script runs, and the CSP reports nothing to block.
func TestConsoleShowsHostileTextAsText(t *testing.T) {
	browsertest.Require(t)
	srv := testserver.Start(t, testserver.Options{})
	id := srv.CreateConfiguration(map[string]any{"name": "hostile", "interval": "EVERY_HOUR", "bucket": "hostile-bucket", "region": "us-east-1",
		"accessKeyId": "AKIAHOSTILE", "secretAccessKey": "hostile-secret-key", "endpoint": hostileS3(t)})
	var cfg struct {
		GetExportConfiguration struct{ ConnectionStatus string }
	}
	srv.MustGraphQL(srv.AdminToken, `query($id: ID!) { getExportConfiguration(id: $id) { connectionStatus } }`, map[string]any{"id": id}, &cfg)
	status := cfg.GetExportConfiguration.ConnectionStatus
	if !strings.Contains(status, xss) {
		t.Fatalf("the hostile message did not reach connectionStatus: %q", status)
	}
	event, _ := json.Marshal(map[string]any{"id": "0190a4c2-7d3e-7a51-9a3b-5f4e3d2c1b0a", "action": xss, "eventTimestamp": "2026-03-09T12:00:00Z",
		"actor": map[string]any{"name": `<script>alert(2)</script>`}, "targets": []map[string]any{{"id": id, "type": "EXPORT_CONFIGURATION"}}})
	postEvents(t, srv, newToken(srv, "pipeline", "INGEST"), event)

	c := openConsole(t, srv)
	c.signIn(srv.AdminToken)
	c.waitFor(fmt.Sprintf(`document.querySelector('tr[data-id=%q] .error-text')`, id))
	if shown := c.text(fmt.Sprintf(`tr[data-id=%q] .error-text`, id)); shown != status {
		t.Fatalf("overview shows %q, want the status as text: %q", shown, status)
	}
	c.noMarkupFromData()
	c.screenshot("hostile-overview")

	c.goTo("#/config/" + id)
	c.waitText("#audit-events .event-action", xss)
	if shown := c.text("#connection-status"); shown != status {
		t.Fatalf("the configuration's page shows %q, want %q", shown, status)
	}
	if actor := eval[string](c, `[...document.querySelectorAll('#audit-events .event-actor')].map((e) => e.textContent).join('|')`); !strings.Contains(actor, "<script>alert(2)</script>") {
		t.Fatalf("actors shown: %q", actor)
	}
	c.noMarkupFromData()
	c.screenshot("hostile-configuration")
	c.noCSPViolations()
}

// noMarkupFromData fails if the page holds an element that only data could have made: an img
// but the header's logo, a script but the console's module, an element with an event-handler
// attribute.
func (c *tab) noMarkupFromData() {
	c.t.Helper()
	found := eval[string](c, `[
		...[...document.images].filter((i) => !i.closest('.brand')).map((i) => 'img ' + i.getAttribute('src')),
		...[...document.scripts].filter((s) => s.getAttribute('src') !== '/console/app.js').map((s) => 'script ' + s.outerHTML),
		...[...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).map((e) => 'handler on ' + e.tagName),
	].join('; ')`)
	if found != "" {
		c.t.Fatalf("elements made from data: %s", found)
	}
}

// TestConsoleAssumedRoleSetup: the form creates an assumed-role configuration; its page shows
// the external ID and the exact trust and permission policies to paste, and their copy buttons
// put exactly that text on the clipboard. The destination cannot be reached, and the page shows
// the check's whole error.
func TestConsoleAssumedRoleSetup(t *testing.T) {
	browsertest.Require(t)
	srv := testserver.Start(t, testserver.Options{Args: []string{"--trust-principal", "123456789012"}})
	c := openConsole(t, srv)
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(c.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true}, Setting: browser.PermissionSettingGranted, Origin: srv.URL,
		}); err != nil {
			t.Fatal(err)
		}
	}
	c.signIn(srv.AdminToken)
	c.clickButton("New: Amazon S3 through an assumed IAM role")
	c.waitFor(`document.getElementById('f-roleArn')`)
	if fields := eval[string](c, `[...document.querySelectorAll('form .field')].map((f) => f.dataset.field).join(' ')`); strings.Contains(fields, "accessKeyId") ||
		strings.Contains(fields, "secretAccessKey") || !strings.Contains(fields, "roleArn") {
		t.Fatalf("assumed-role form fields: %s", fields)
	}
	c.fill("#f-bucket", "customer-bucket")
	c.fill("#f-path", "audit")
	c.fill("#f-region", "eu-west-1")
	c.fill("#f-roleArn", "arn:aws:iam::210987654321:role/auditexport")
	c.click("button[type=submit]")
	c.waitFor(`location.hash.startsWith('#/config/') && document.getElementById('policy-trustPolicy')`)
	id := strings.TrimPrefix(eval[string](c, `location.hash`), "#/config/")
	if ext := c.text("#external-id"); ext != id {
		t.Fatalf("external ID shown %q, want the id %s", ext, id)
	}
	var trust struct {
		Statement []struct {
			Principal map[string]string
			Action    string
			Condition map[string]map[string]string
		}
	}
	trustText := c.text("#policy-trustPolicy")
	if err := json.Unmarshal([]byte(trustText), &trust); err != nil || len(trust.Statement) != 1 ||
		trust.Statement[0].Principal["AWS"] != "arn:aws:iam::123456789012:root" || trust.Statement[0].Action != "sts:AssumeRole" ||
		trust.Statement[0].Condition["StringEquals"]["sts:ExternalId"] != id {
		t.Fatalf("trust policy shown (%v):\n%s", err, trustText)
	}
	var api struct {
		GetExportConfiguration struct {
			EndpointConfiguration struct{ TrustPolicy, PermissionPolicy string }
		}
	}
	srv.MustGraphQL(srv.AdminToken, `query($id: ID!) { getExportConfiguration(id: $id) { endpointConfiguration {
		... on S3AssumedRoleEndpointConfiguration { trustPolicy permissionPolicy } } } }`, map[string]any{"id": id}, &api)
	if trustText != api.GetExportConfiguration.EndpointConfiguration.TrustPolicy || c.text("#policy-permissionPolicy") != api.GetExportConfiguration.EndpointConfiguration.PermissionPolicy ||
		!strings.Contains(c.text("#policy-permissionPolicy"), `"arn:aws:s3:::customer-bucket/audit/*"`) {
		t.Fatalf("policies shown differ from the API's:\n%s\n%s", trustText, c.text("#policy-permissionPolicy"))
	}
	for _, button := range []string{"Copy trust policy of the role", "Copy permission policy", "Copy external ID"} {
		c.clickButton(button)
		c.waitFor(fmt.Sprintf(`document.querySelector('button[data-label=%q][data-copied]')`, button))
		want := map[string]string{"Copy trust policy of the role": trustText, "Copy permission policy": api.GetExportConfiguration.EndpointConfiguration.PermissionPolicy,
			"Copy external ID": id}[button]
		if got := eval[string](c, `navigator.clipboard.readText()`); got != want {
			t.Errorf("%s put %q on the clipboard, want %q", button, got, want)
		}
	}
	status := c.text("#connection-status")
	if !strings.HasPrefix(status, "Error testing access to S3 using AssumedRole arn:aws:iam::210987654321:role/auditexport - ") ||
		c.text(".head-status .badge") != "FAILING" {
		t.Fatalf("connection shown as %q / %q", status, c.text(".head-status .badge"))
	}
	c.screenshot("assumed-role")
	narrow(t, c, "assumed-role-narrow")
	c.noCSPViolations()
}
