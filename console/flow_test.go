package console_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/testserver"
)

// TestConsoleExportLifecycle drives the console as an operator would, against the real server
// and MinIO: sign in from the keyboard, a form refused field by field then accepted, SUCCESS,
// events sent, Run now, the job, its tasks and the chart's points equal to what the API says,
// edit, disable, delete, sign out. Screenshots of each page are kept.
func TestConsoleExportLifecycle(t *testing.T) {
	d := newDestination(t)
	s3, bucket, accessKey, secret := d.s3, d.bucket, d.accessKey, d.secret
	srv := testserver.Start(t, testserver.Options{})
	c := openConsole(t, srv)

	c.screenshot("signin")
	c.signIn(srv.AdminToken)
	c.waitFor(`document.querySelector('main h1') && document.querySelector('main h1').textContent === 'Exports'`)
	// The token is in this tab's sessionStorage only: no URL, cookie or localStorage holds it.
	if where := eval[string](c, fmt.Sprintf(`[location.href.includes(%[1]q) && 'url', document.cookie !== '' && 'cookie',
		localStorage.length > 0 && 'localStorage', sessionStorage.getItem('auditexport.token') !== %[1]q && 'not in sessionStorage'].filter(Boolean).join(' ')`,
		srv.AdminToken)); where != "" {
		t.Fatalf("token storage: %s", where)
	}
	if nav := c.text("#nav"); nav != "ExportsTokens" {
		t.Fatalf("an ADMIN token's navigation: %q", nav)
	}
	c.screenshot("overview-empty")

	// A form the server refuses: the bucket's error is shown beside the bucket.
	c.clickButton("New: Amazon S3 with an access key")
	c.waitFor(`document.getElementById('f-bucket')`)
	c.fill("#f-name", "acme-production")
	c.do(chromedp.SetValue(chromedp.CSS("#f-interval"), "EVERY_24_HOURS"))
	c.fill("#f-bucket", "Not_A_Bucket")
	c.fill("#f-path", "audit/acme")
	c.fill("#f-region", "us-east-1")
	c.fill("#f-accessKeyId", accessKey)
	c.fill("#f-secretAccessKey", secret)
	c.fill("#f-endpoint", s3.Endpoint)
	c.click("button[type=submit]")
	c.waitFor(`!document.getElementById('err-bucket').hidden`)
	if msg := c.text("#err-bucket"); !strings.Contains(msg, "lower-case letters, digits, dots and hyphens") {
		t.Fatalf("bucket error %q", msg)
	}
	if invalid := eval[string](c, `[...document.querySelectorAll('[aria-invalid=true]')].map((e) => e.id).join(' ')`); invalid != "f-bucket" {
		t.Fatalf("fields marked invalid: %q, want only f-bucket", invalid)
	}
	c.screenshot("form-errors")
	var count struct{ GetAllExportConfigurations []struct{ ID string } }
	srv.MustGraphQL(srv.AdminToken, `{ getAllExportConfigurations { id } }`, nil, &count)
	if len(count.GetAllExportConfigurations) != 0 {
		t.Fatalf("a refused form stored a configuration")
	}

	c.fill("#f-bucket", bucket)
	c.click("button[type=submit]")
	c.waitFor(`location.hash.startsWith('#/config/') && document.getElementById('connection-status')`)
	if status := c.text("#connection-status"); status != "SUCCESS" {
		t.Fatalf("connection status %q, want SUCCESS", status)
	}
	id := strings.TrimPrefix(eval[string](c, `location.hash`), "#/config/")
	c.screenshot("configuration-created")

	// Events arrive; Run now exports them.
	ingest := newToken(srv, "pipeline", "INGEST")
	postEvents(t, srv, ingest, eventtest.NDJSON(0, 40, time.Now().UTC(), time.Second))
	c.goTo("#/")
	c.tabTo(fmt.Sprintf(`tr[data-id=%q] a.config-link`, id)) // keyboard alone: Tab to the link, Enter
	c.do(chromedp.KeyEvent("\r"))
	c.waitFor(`location.hash.startsWith('#/config/') && document.getElementById('export-lag')`)
	if lag := eval[int](c, `Number(document.getElementById('export-lag').dataset.seconds)`); lag < 0 ||
		eval[string](c, `document.getElementById('export-lag').dataset.oldest || ''`) == "" {
		t.Fatalf("export lag with events pending: %d s", lag)
	}
	c.clickButton("Run now")
	c.waitFor(`document.querySelector('tbody[data-job]')`)
	var jobs struct {
		GetAllExportJobs []struct {
			ID, Status              string
			EventCount, ObjectCount int
		}
	}
	srv.MustGraphQL(srv.AdminToken, `query($id: ID!) { getAllExportJobs(exportConfigurationId: $id) { id status eventCount objectCount } }`,
		map[string]any{"id": id}, &jobs)
	if len(jobs.GetAllExportJobs) != 1 || jobs.GetAllExportJobs[0].Status != "SUCCEEDED" || jobs.GetAllExportJobs[0].EventCount < 40 {
		t.Fatalf("jobs after Run now: %+v", jobs)
	}
	job := jobs.GetAllExportJobs[0]
	if shown := c.text(fmt.Sprintf(`tbody[data-job=%q] .job-events`, job.ID)); shown != fmt.Sprint(job.EventCount) {
		t.Fatalf("the page shows %q events for job %s, the API %d", shown, job.ID, job.EventCount)
	}
	if status := c.text(fmt.Sprintf(`tbody[data-job=%q] .badge`, job.ID)); status != "SUCCEEDED" {
		t.Fatalf("job status shown %q", status)
	}

	// Its tasks: keys, sizes and SHA-256 as the API has them.
	c.click(fmt.Sprintf(`button[data-job=%q]`, job.ID))
	c.waitFor(`document.querySelector('.task')`)
	var tasks struct {
		GetAllExportJobTasks []struct {
			ID, Key, Sha256 string
			Bytes           int
		}
	}
	srv.MustGraphQL(srv.AdminToken, `query($j: String!) { getAllExportJobTasks(exportJobId: $j) { id key sha256 bytes } }`,
		map[string]any{"j": job.ID}, &tasks)
	if len(tasks.GetAllExportJobTasks) != job.ObjectCount || job.ObjectCount == 0 {
		t.Fatalf("%d tasks for %d objects", len(tasks.GetAllExportJobTasks), job.ObjectCount)
	}
	for _, task := range tasks.GetAllExportJobTasks {
		sel := fmt.Sprintf(`li[data-task=%q]`, task.ID)
		if key, sha, bytes := c.text(sel+" .task-key"), c.text(sel+" .task-sha256"), c.text(sel+" .task-bytes"); key != task.Key || sha != task.Sha256 ||
			eval[int](c, fmt.Sprintf(`Number(document.querySelector(%q).dataset.bytes)`, sel+" .task-bytes")) != task.Bytes || bytes == "" {
			t.Errorf("task %s shown as %q %q %q, the API says %s %s %d", task.ID, key, sha, bytes, task.Key, task.Sha256, task.Bytes)
		}
	}

	// The chart's points are the API's exportHistory, hour by hour.
	checkChartMatchesAPI(t, c, srv, id, job.EventCount)
	c.waitText("#audit-events li .event-action", "CREATE")
	c.screenshot("configuration-exported")

	c.goTo("#/")
	c.waitFor(fmt.Sprintf(`document.querySelector('tr[data-id=%q]')`, id))
	if row := c.text(fmt.Sprintf(`tr[data-id=%q]`, id)); !strings.Contains(row, "SUCCESS") || !strings.Contains(row, "SUCCEEDED") ||
		!strings.Contains(row, "s3://"+bucket+"/audit/acme") || !strings.Contains(row, "every 24 hours") {
		t.Fatalf("overview row: %q", row)
	}
	c.screenshot("overview")
	narrow(t, c, "overview-narrow")

	// Edit: only the interval changes.
	c.goTo("#/edit/" + id)
	c.do(chromedp.SetValue(chromedp.CSS("#f-interval"), "EVERY_HOUR"))
	c.screenshot("edit")
	c.click("button[type=submit]")
	c.waitFor(`location.hash.startsWith('#/config/') && document.getElementById('connection-status')`)
	c.waitText("main dd", "EVERY_HOUR")

	// Disable, then delete after confirming.
	c.clickButton("Disable")
	c.waitText(".head-status", "Disabled")
	var got struct{ GetExportConfiguration struct{ Enabled bool } }
	srv.MustGraphQL(srv.AdminToken, `query($id: ID!) { getExportConfiguration(id: $id) { enabled } }`, map[string]any{"id": id}, &got)
	if got.GetExportConfiguration.Enabled {
		t.Fatalf("still enabled after Disable")
	}
	c.clickButton("Delete…")
	c.waitFor(`document.querySelector('dialog[open]')`)
	c.screenshot("delete-confirm")
	c.do(chromedp.KeyEvent("\x1b")) // Escape cancels
	c.waitFor(`!document.querySelector('dialog')`)
	srv.MustGraphQL(srv.AdminToken, `{ getAllExportConfigurations { id } }`, nil, &count)
	if len(count.GetAllExportConfigurations) != 1 {
		t.Fatalf("Escape deleted the configuration")
	}
	c.clickButton("Delete…")
	c.click("dialog[open] button[data-confirm]")
	c.waitFor(`location.hash === '#/' && document.querySelector('main .empty')`)
	srv.MustGraphQL(srv.AdminToken, `{ getAllExportConfigurations { id } }`, nil, &count)
	if len(count.GetAllExportConfigurations) != 0 {
		t.Fatalf("the configuration is still there after Delete")
	}

	c.click("#signout")
	c.waitFor(`document.getElementById('token')`)
	if left := eval[int](c, `sessionStorage.length + localStorage.length`); left != 0 {
		t.Fatalf("%d storage entries left after sign-out", left)
	}
	c.noCSPViolations()
}

// checkChartMatchesAPI compares the bars of the configuration page's hourly chart with
// exportHistory: the same 48 hours, the same counts, the job's events in the current hour.
func checkChartMatchesAPI(t *testing.T, c *tab, srv *testserver.Server, id string, jobEvents int) {
	t.Helper()
	type hour struct {
		Start  string
		Events int
		Jobs   int
	}
	var api struct {
		GetExportConfiguration struct{ ExportHistory struct{ Hours []hour } }
	}
	srv.MustGraphQL(srv.AdminToken, `query($id: ID!) { getExportConfiguration(id: $id) { exportHistory(hours: 48) { hours { start events jobs } } } }`,
		map[string]any{"id": id}, &api)
	bars := eval[[]hour](c, `[...document.querySelectorAll('svg.hourly rect.bar')].map((r) => ({start: r.dataset.start, events: Number(r.dataset.events), jobs: Number(r.dataset.jobs)}))`)
	want := api.GetExportConfiguration.ExportHistory.Hours
	if len(bars) != 48 || len(want) != 48 {
		t.Fatalf("%d bars, %d hours from the API; want 48", len(bars), len(want))
	}
	for i := range want {
		if bars[i] != want[i] {
			t.Errorf("bar %d = %+v, the API says %+v", i, bars[i], want[i])
		}
	}
	if last := want[47]; last.Events != jobEvents || last.Jobs < 1 {
		t.Errorf("the current hour: %+v, want the job's %d events", last, jobEvents)
	}
}

// narrow shows the current page on a phone-sized screen: it must fit without sideways scrolling.
func narrow(t *testing.T, c *tab, name string) {
	t.Helper()
	c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	defer c.do(chromedp.EmulateViewport(1280, 800))
	c.waitFor(`window.innerWidth === 390`)
	if over := eval[int](c, `document.documentElement.scrollWidth - window.innerWidth`); over > 0 {
		t.Errorf("%s: the page is %d px wider than a 390 px screen", name, over)
	}
	c.screenshot(name)
}
