package graph

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

// clock is a settable time for the store and the resolvers.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// activityAPI is the GraphQL handler over a real store whose clock the test sets.
type activityAPI struct {
	t     *testing.T
	store *store.Store
	clock *clock
	admin store.Principal
	h     http.Handler
}

func newActivityAPI(t *testing.T, start time.Time) *activityAPI {
	clk := &clock{now: start}
	st := storetest.Open(t, filepath.Join(t.TempDir(), "auditexport.db"), storetest.Key(), func(c *store.Config) { c.Now = clk.Now })
	h := NewHandler(HandlerConfig{Resolver: &Resolver{Store: st, Now: clk.Now}})
	return &activityAPI{t: t, store: st, clock: clk, h: h,
		admin: store.Principal{Name: "admin", Permissions: []store.Permission{store.PermissionAdmin}}}
}

// as is a client of the handler for p, as the server's authentication makes it.
func (a *activityAPI) as(p store.Principal) *client.Client {
	return client.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	}))
}

// post runs query as p and decodes data into out with encoding/json (times included), failing
// on any error.
func (a *activityAPI) post(p store.Principal, query string, out any) {
	a.t.Helper()
	resp, err := a.as(p).RawPost(query)
	if err != nil {
		a.t.Fatalf("%s: %v", query, err)
	}
	if len(resp.Errors) > 0 && string(resp.Errors) != "null" {
		a.t.Fatalf("%s: %s", query, resp.Errors)
	}
	data, err := json.Marshal(resp.Data) // RawPost decoded it into maps
	if err == nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		a.t.Fatalf("%s: decode %s: %v", query, data, err)
	}
}

func (a *activityAPI) newConfiguration(name string) store.ExportConfiguration {
	a.t.Helper()
	c, err := a.store.CreateConfiguration(a.t.Context(), store.ExportConfiguration{
		Name: name, Kind: store.KindS3AssumedRole, Interval: store.EveryHour, Enabled: true,
		Bucket: "customer-bucket", Region: "us-east-1", RoleARN: "arn:aws:iam::123456789012:role/auditexport",
	}, "", a.admin)
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

// ingest appends n sample events, received now.
func (a *activityAPI) ingest(first, n int) {
	a.t.Helper()
	var d event.Decoder
	b, err := d.NDJSON(eventtest.NDJSON(first, n, a.clock.Now(), time.Second), a.clock.Now())
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.store.AppendEvents(a.t.Context(), b); err != nil {
		a.t.Fatal(err)
	}
}

// export runs a job of configID to the end at the clock's time, as the exporter would, and
// returns how many events it exported.
func (a *activityAPI) export(configID string, fail bool) int64 {
	a.t.Helper()
	ctx := a.t.Context()
	job, err := a.store.CreateJob(ctx, configID, store.ExportPlan{}, true, time.Time{})
	if err != nil {
		a.t.Fatal(err)
	}
	if job.Status == store.JobSucceeded { // nothing was waiting
		return 0
	}
	if job, err = a.store.StartAttempt(ctx, job.ID, "test", time.Minute); err != nil {
		a.t.Fatal(err)
	}
	if fail {
		if _, err := a.store.FailAttempt(ctx, job.Attempt(), "AccessDenied", a.clock.Now().Add(time.Minute)); err != nil {
			a.t.Fatal(err)
		}
		return 0
	}
	events := int64(job.To - job.From)
	if _, err := a.store.CompleteJob(ctx, job.Attempt(), events, 1, 1000, store.DigestRef{}); err != nil {
		a.t.Fatal(err)
	}
	return events
}

type historyResult struct {
	GetExportConfiguration struct {
		ExportHistory struct {
			Hours []struct {
				Start        time.Time
				Events, Jobs int
			}
			IncompleteBefore *time.Time
		}
		ExportLag struct {
			OldestPendingEventReceivedAt *time.Time
			Seconds                      int
		}
	}
}

func (a *activityAPI) history(id string, hours int) historyResult {
	a.t.Helper()
	var out historyResult
	a.post(a.admin, fmt.Sprintf(`{ getExportConfiguration(id: %q) { exportHistory(hours: %d) { hours { start events jobs } incompleteBefore }
		exportLag { oldestPendingEventReceivedAt seconds } } }`, id, hours), &out)
	return out
}

// TestExportHistoryCountsEventsPerHourOfSucceededJobs: each job's events count in the hour it
// succeeded; failed jobs and jobs outside the window count nowhere; hours are UTC, oldest first.
func TestExportHistoryCountsEventsPerHourOfSucceededJobs(t *testing.T) {
	t0 := time.Date(2026, 3, 9, 10, 20, 0, 0, time.UTC)
	a := newActivityAPI(t, t0.Add(-50*time.Hour))
	c := a.newConfiguration("history")
	other := a.newConfiguration("other")

	a.ingest(0, 4)
	a.export(c.ID, false) // 50 hours ago: outside a 48-hour window
	a.clock.Set(t0.Add(-3 * time.Hour))
	a.ingest(10, 5)
	want3h := a.export(c.ID, false)
	a.export(other.ID, false) // another configuration's job counts only for it
	a.clock.Set(t0.Add(-3*time.Hour + 30*time.Minute))
	a.ingest(20, 2)
	want3h += a.export(c.ID, false)
	a.clock.Set(t0.Add(-time.Hour))
	a.ingest(30, 7)
	a.export(c.ID, true) // failed: exported nothing
	a.clock.Set(t0)
	wantNow := a.export(c.ID, false) // the failed job's range, retried and succeeded
	if want3h != 7 || wantNow != 7 {
		t.Fatalf("setup exported %d and %d events", want3h, wantNow)
	}

	h := a.history(c.ID, 48).GetExportConfiguration.ExportHistory
	if len(h.Hours) != 48 || h.IncompleteBefore != nil {
		t.Fatalf("%d hours, incompleteBefore %v; want 48 and null", len(h.Hours), h.IncompleteBefore)
	}
	if first, last := h.Hours[0].Start, h.Hours[47].Start; !first.Equal(time.Date(2026, 3, 7, 11, 0, 0, 0, time.UTC)) || !last.Equal(time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("hours from %v to %v", first, last)
	}
	total := 0
	for i, hour := range h.Hours {
		total += hour.Events
		want := map[int]int{44: int(want3h), 47: int(wantNow)}[i]
		wantJobs := map[int]int{44: 2, 47: 1}[i]
		if hour.Events != want || hour.Jobs != wantJobs {
			t.Errorf("hour %d (%v): %d events in %d jobs, want %d in %d", i, hour.Start, hour.Events, hour.Jobs, want, wantJobs)
		}
	}
	if total != 14 {
		t.Fatalf("%d events in the window, want 14 (the first job's 4 are older)", total)
	}
	if got := a.history(c.ID, 1).GetExportConfiguration.ExportHistory.Hours; len(got) != 1 || got[0].Events != int(wantNow) {
		t.Fatalf("hours: 1 = %+v", got)
	}
}

func TestExportHistoryRefusesOutOfRangeHours(t *testing.T) {
	a := newActivityAPI(t, time.Now())
	c := a.newConfiguration("bounds")
	for _, hours := range []int{0, -1, 169} {
		resp, err := a.as(a.admin).RawPost(fmt.Sprintf(`{ getExportConfiguration(id: %q) { exportHistory(hours: %d) { hours { events } } } }`, c.ID, hours))
		if err != nil {
			t.Fatal(err)
		}
		if body := string(resp.Errors); !strings.Contains(body, "must be between 1 and 168") || !strings.Contains(body, `"hours"`) {
			t.Errorf("hours %d: errors %s", hours, body)
		}
	}
}

// TestExportHistorySaysWhenOldJobsWereRemoved: the store keeps the newest store.JobsKept jobs;
// once it removed some inside the window, the history says from when its counts are whole.
func TestExportHistorySaysWhenOldJobsWereRemoved(t *testing.T) {
	t0 := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)
	a := newActivityAPI(t, t0.Add(-10*time.Hour))
	c := a.newConfiguration("frequent")
	var firstKept time.Time
	for i := range store.JobsKept + 5 { // every 5 minutes, as EVERY_5_MINUTES does
		a.clock.Set(t0.Add(-10*time.Hour + time.Duration(i)*5*time.Minute))
		if i == 5 {
			firstKept = a.clock.Now()
		}
		a.ingest(i*10, 1)
		a.export(c.ID, false)
	}
	h := a.history(c.ID, 48).GetExportConfiguration.ExportHistory
	if h.IncompleteBefore == nil || !h.IncompleteBefore.Equal(firstKept) {
		t.Fatalf("incompleteBefore = %v, want the oldest kept job's creation %v", h.IncompleteBefore, firstKept)
	}
	total := 0
	for _, hour := range h.Hours {
		total += hour.Events
	}
	if total != store.JobsKept {
		t.Fatalf("%d events counted, want one per kept job: %d", total, store.JobsKept)
	}
	// A window that begins after the oldest kept job is whole.
	if h := a.history(c.ID, 1).GetExportConfiguration.ExportHistory; h.IncompleteBefore != nil {
		t.Fatalf("1 hour: incompleteBefore = %v, want null", h.IncompleteBefore)
	}
}

// TestExportLagIsTheAgeOfTheOldestPendingEvent: null and 0 with nothing waiting; the received time
// of the first event after the cursor, however many follow; back to null once they are exported.
func TestExportLagIsTheAgeOfTheOldestPendingEvent(t *testing.T) {
	t0 := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)
	a := newActivityAPI(t, t0.Add(-time.Minute))
	c := a.newConfiguration("lag")
	a.export(c.ID, false) // the audit event of its own creation
	a.clock.Set(t0)
	if lag := a.history(c.ID, 1).GetExportConfiguration.ExportLag; lag.OldestPendingEventReceivedAt != nil || lag.Seconds != 0 {
		t.Fatalf("nothing pending: lag %+v", lag)
	}
	a.ingest(0, 3)
	a.clock.Set(t0.Add(40 * time.Second))
	a.ingest(10, 3)
	a.clock.Set(t0.Add(95 * time.Second))
	lag := a.history(c.ID, 1).GetExportConfiguration.ExportLag
	if lag.OldestPendingEventReceivedAt == nil || !lag.OldestPendingEventReceivedAt.Equal(t0) || lag.Seconds != 95 {
		t.Fatalf("lag %+v, want received %v, 95 s", lag, t0)
	}
	// In a list, each configuration has its own lag: one created now waits only for the audit
	// event of its creation, received now.
	later := a.newConfiguration("later")
	var all struct {
		GetAllExportConfigurations []struct {
			ID        string
			ExportLag struct{ Seconds int }
		}
	}
	a.post(a.admin, `{ getAllExportConfigurations { id exportLag { seconds } } }`, &all)
	for _, got := range all.GetAllExportConfigurations {
		if want := map[string]int{c.ID: 95, later.ID: 0}[got.ID]; got.ExportLag.Seconds != want {
			t.Errorf("configuration %s: lag %d s, want %d", got.ID, got.ExportLag.Seconds, want)
		}
	}
	a.export(c.ID, false)
	if lag := a.history(c.ID, 1).GetExportConfiguration.ExportLag; lag.OldestPendingEventReceivedAt != nil || lag.Seconds != 0 {
		t.Fatalf("after the export: lag %+v", lag)
	}
}

// TestViewerIsAnyTokensOwnIdentity: viewer answers every valid token, whatever it may do, with its
// name and permissions as issued.
func TestViewerIsAnyTokensOwnIdentity(t *testing.T) {
	a := newActivityAPI(t, time.Now())
	for _, p := range []store.Principal{
		a.admin,
		{Name: "pipeline", Permissions: []store.Permission{store.PermissionIngest}},
		{Name: "dashboards", Permissions: []store.Permission{store.PermissionAudit, store.PermissionMetrics}},
	} {
		var out struct {
			Viewer struct {
				Name        string
				Permissions []string
			}
		}
		a.post(p, `{ viewer { name permissions } }`, &out)
		if got, _ := json.Marshal(out.Viewer.Permissions); out.Viewer.Name != p.Name || string(got) != mustJSON(p.Permissions) {
			t.Errorf("viewer of %s = %+v", p.Name, out.Viewer)
		}
	}
	resp, err := client.New(a.h).RawPost(`{ viewer { name } }`)
	if err != nil || !strings.Contains(string(resp.Errors), CodeUnauthenticated) {
		t.Fatalf("without a token: %v %s", err, resp.Errors)
	}
}

func mustJSON(v any) string {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// TestAuditEventsOfOneTarget: targetId keeps the audit events of one configuration's changes, and
// an ingested event naming it among its targets, and nothing else.
func TestAuditEventsOfOneTarget(t *testing.T) {
	a := newActivityAPI(t, time.Now())
	c := a.newConfiguration("audited")
	other := a.newConfiguration("unrelated")
	if _, err := a.store.SetEnabled(t.Context(), c.ID, a.admin, false); err != nil {
		t.Fatal(err)
	}
	a.ingest(0, 20) // sample events name other targets
	var d event.Decoder
	mention := fmt.Sprintf(`{"id":"0190a4c2-7d3e-7a51-9a3b-5f4e3d2c1b0a","action":"READ","eventTimestamp":"2026-03-09T12:00:00Z","targets":[{"id":"x"},{"id":%q,"type":"EXPORT_CONFIGURATION"}]}`, c.ID)
	b, err := d.NDJSON([]byte(mention), a.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.AppendEvents(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.SetEnabled(t.Context(), other.ID, a.admin, false); err != nil {
		t.Fatal(err)
	}
	var out struct {
		AuditEvents struct {
			Edges []struct{ Node struct{ Action string } }
		}
	}
	a.post(a.admin, fmt.Sprintf(`{ auditEvents(targetId: %q) { edges { node { action } } } }`, c.ID), &out)
	var actions []string
	for _, e := range out.AuditEvents.Edges {
		actions = append(actions, e.Node.Action)
	}
	if got := strings.Join(actions, " "); got != "CREATE DISABLE READ" {
		t.Fatalf("events of %s: %q, want CREATE DISABLE READ", c.ID, got)
	}
	a.post(a.admin, `{ auditEvents(targetId: "no-such-target") { edges { node { action } } } }`, &out)
	if len(out.AuditEvents.Edges) != 0 {
		t.Fatalf("an unknown target matched %d events", len(out.AuditEvents.Edges))
	}
}

// TestConflictIsShownAsTheStoreSaysIt: forms show a conflict beside its field, so its message is
// the store's sentence alone, without gqlgen's location and path or the sentinel's ": conflict".
func TestConflictIsShownAsTheStoreSaysIt(t *testing.T) {
	a := newActivityAPI(t, time.Now())
	q := `mutation { createApiToken(name: "ci", permissions: [AUDIT]) }`
	a.post(a.admin, q, &struct{}{})
	resp, err := a.as(a.admin).RawPost(q)
	if err != nil {
		t.Fatal(err)
	}
	var errs []struct {
		Message    string
		Extensions map[string]any
	}
	if err := json.Unmarshal(resp.Errors, &errs); err != nil || len(errs) != 1 {
		t.Fatalf("errors %s: %v", resp.Errors, err)
	}
	if errs[0].Message != `a token named "ci" already exists` || errs[0].Extensions["code"] != CodeConflict {
		t.Fatalf("conflict presented as %+v", errs[0])
	}
}
