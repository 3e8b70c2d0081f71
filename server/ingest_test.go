package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

var eventsStart = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

type ingestResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Errors     []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func (a *testAPI) ingest(token, contentType, encoding string, body []byte) (*httptest.ResponseRecorder, ingestResponse) {
	a.t.Helper()
	req := httptest.NewRequest(http.MethodPost, EventsPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	var resp ingestResponse
	json.Unmarshal(rec.Body.Bytes(), &resp)
	return rec, resp
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestIngestAccepts(t *testing.T) {
	api := newTestAPI(t)
	ingestToken, _, err := api.store.CreateToken(t.Context(), "platform", []store.Permission{store.PermissionIngest}, store.Principal{Name: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	base := storetest.Status(t, api.store).Events // the token's own audit event

	ndjson := eventtest.NDJSON(0, 50, eventsStart, time.Minute)
	rec, resp := api.ingest(ingestToken, "application/x-ndjson", "", ndjson)
	if rec.Code != http.StatusAccepted || resp.Accepted != 50 || resp.Duplicates != 0 {
		t.Fatalf("ndjson: %d %s", rec.Code, rec.Body)
	}
	// A client retrying after a timeout: every event is a duplicate, nothing is stored twice.
	rec, resp = api.ingest(ingestToken, "application/x-ndjson; charset=utf-8", "", ndjson)
	if rec.Code != http.StatusAccepted || resp.Accepted != 0 || resp.Duplicates != 50 {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}
	array := []byte("[" + strings.Join(strings.Split(strings.TrimSpace(string(eventtest.NDJSON(50, 10, eventsStart, time.Minute))), "\n"), ",") + "]")
	rec, resp = api.ingest(ingestToken, "application/json", "", array)
	if rec.Code != http.StatusAccepted || resp.Accepted != 10 {
		t.Fatalf("array: %d %s", rec.Code, rec.Body)
	}
	rec, resp = api.ingest(ingestToken, "application/x-ndjson", "gzip", gzipped(eventtest.NDJSON(60, 40, eventsStart, time.Minute)))
	if rec.Code != http.StatusAccepted || resp.Accepted != 40 {
		t.Fatalf("gzip: %d %s", rec.Code, rec.Body)
	}
	if got := storetest.Status(t, api.store).Events - base; got != 100 {
		t.Fatalf("%d events buffered, want 100", got)
	}
	// ADMIN implies INGEST.
	if rec, _ := api.ingest(adminToken, "application/x-ndjson", "", eventtest.Sample(1000, eventsStart)); rec.Code != http.StatusAccepted {
		t.Fatalf("admin: %d", rec.Code)
	}
}

func TestIngestRefusesBadRequestsAndStoresNothing(t *testing.T) {
	api := newTestAPIWith(t, Config{MaxEventsBodyBytes: 64 << 10}, store.BufferConfig{})
	audit, _, err := api.store.CreateToken(t.Context(), "auditor", []store.Permission{store.PermissionAudit}, store.Principal{Name: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	before := storetest.Status(t, api.store)
	good := string(eventtest.Sample(1, eventsStart))
	lines := func(ls ...string) []byte { return []byte(strings.Join(ls, "\n")) }
	bomb := gzipped(bytes.Repeat([]byte(" "), 10<<20)) // 10 MiB of spaces, a few KiB compressed
	cases := map[string]struct {
		token, contentType, encoding string
		body                         []byte
		status                       int
		contains                     string
	}{
		"malformed JSON":                {adminToken, "application/x-ndjson", "", lines(good, `{"eventTimestamp": `), 400, "line 2: invalid JSON"},
		"bad line in the middle":        {adminToken, "application/x-ndjson", "", lines(good, good, `{"action":"x"}`, good), 400, "line 3: eventTimestamp is required"},
		"wrong type":                    {adminToken, "application/x-ndjson", "", lines(`{"eventTimestamp":"2026-11-20T00:00:00Z","actorIp":7}`), 400, "line 1: actorIp must be a string, not number"},
		"missing eventTimestamp":        {adminToken, "application/json", "", []byte(`[` + good + `,{"id":"8d1f1d9e-1b7e-4c3a-9f0e-1c2d3e4f5a6b"}]`), 400, "event 2: eventTimestamp is required"},
		"bad timestamp":                 {adminToken, "application/x-ndjson", "", lines(`{"eventTimestamp":"20/11/2026"}`), 400, "line 1: eventTimestamp must be an RFC 3339 timestamp"},
		"empty body":                    {adminToken, "application/x-ndjson", "", nil, 400, "event 0: the body holds no events"},
		"empty array body":              {adminToken, "application/json", "", nil, 400, "event 0: the body holds no events"},
		"oversized body":                {adminToken, "application/x-ndjson", "", bytes.Repeat([]byte(good+"\n"), 200), 413, "exceeds 65536 bytes"},
		"oversized after decompression": {adminToken, "application/x-ndjson", "gzip", bomb, 413, "(decompressed)"},
		"wrong content type":            {adminToken, "text/plain", "", []byte(good), 415, "application/x-ndjson"},
		"no content type":               {adminToken, "", "", []byte(good), 415, "Content-Type"},
		"broken gzip":                   {adminToken, "application/x-ndjson", "gzip", []byte("not gzip at all"), 400, "not valid gzip"},
		"truncated gzip":                {adminToken, "application/x-ndjson", "gzip", gzipped([]byte(good))[:20], 400, "corrupt or truncated"},
		"unknown encoding":              {adminToken, "application/x-ndjson", "br", []byte(good), 415, "Content-Encoding"},
		"no token":                      {"", "application/x-ndjson", "", []byte(good), 401, "UNAUTHENTICATED"},
		"wrong token":                   {"not-a-token-at-all", "application/x-ndjson", "", []byte(good), 401, "UNAUTHENTICATED"},
		"token without INGEST":          {audit, "application/x-ndjson", "", []byte(good), 403, "lacks the INGEST permission"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rec, _ := api.ingest(c.token, c.contentType, c.encoding, c.body)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.contains) {
				t.Fatalf("%d %.300s; want %d containing %q", rec.Code, rec.Body, c.status, c.contains)
			}
		})
	}
	if after := storetest.Status(t, api.store); after.Events != before.Events || after.Head != before.Head {
		t.Fatalf("refused requests stored events: %+v -> %+v", before, after)
	}
	t.Run("every problem of every bad line is named", func(t *testing.T) {
		rec, resp := api.ingest(adminToken, "application/x-ndjson", "", lines(`{}`, good, `[]`, `nope`, `{"id":"x","eventTimestamp":"later"}`))
		if rec.Code != 400 || len(resp.Errors) != 5 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		for i, line := range []float64{1, 3, 4, 5, 5} {
			if resp.Errors[i].Extensions["line"] != line || resp.Errors[i].Extensions["code"] != "BAD_USER_INPUT" {
				t.Errorf("error %d: %+v", i, resp.Errors[i])
			}
		}
		if !strings.Contains(resp.Errors[3].Message, "line 5: id must be a UUID") || !strings.Contains(resp.Errors[4].Message, "line 5: eventTimestamp must be") {
			t.Errorf("line 5's problems: %s", rec.Body)
		}
	})
}

// One event size limit: an event over 1 MiB is refused whether it comes as a line of NDJSON or
// an element of a JSON array.
func TestIngestOneEventSizeLimit(t *testing.T) {
	api := newTestAPI(t)
	big := `{"eventTimestamp":"2026-11-20T00:00:00Z","auditPayload":{"blob":"` + strings.Repeat("x", 10<<20) + `"}}`
	before := storetest.Status(t, api.store)
	for contentType, body := range map[string]string{"application/x-ndjson": big, "application/json": "[" + big + "]"} {
		rec, _ := api.ingest(adminToken, contentType, "", []byte(body))
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "1: event exceeds 1048576 bytes") {
			t.Errorf("%s: %d %.300s", contentType, rec.Code, rec.Body)
		}
	}
	if after := storetest.Status(t, api.store); after.Events != before.Events {
		t.Fatalf("a refused event was stored: %+v -> %+v", before, after)
	}
}

func TestIngestWhenBufferIsFull(t *testing.T) {
	api := newTestAPIWith(t, Config{}, store.BufferConfig{MaxEvents: 30})
	if rec, _ := api.ingest(adminToken, "application/x-ndjson", "", eventtest.NDJSON(0, 25, eventsStart, time.Minute)); rec.Code != http.StatusAccepted {
		t.Fatalf("first batch: %d", rec.Code)
	}
	rec, _ := api.ingest(adminToken, "application/x-ndjson", "", eventtest.NDJSON(100, 10, eventsStart, time.Minute))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "BUFFER_FULL") {
		t.Fatalf("over the limit: %d %s (Retry-After %q)", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if n := storetest.Status(t, api.store).Events; n != 25 {
		t.Fatalf("%d events buffered, want 25", n)
	}
}

func TestAuditEventsQuery(t *testing.T) {
	api := newTestAPI(t)
	c := api.client(adminToken)
	// The admin's own change is audited first.
	var created struct{ CreateS3AssumedRoleExportConfiguration struct{ ID string } }
	c.MustPost(`mutation { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" }) { id } }`, &created)
	if rec, _ := api.ingest(adminToken, "application/x-ndjson", "", eventtest.NDJSON(0, 25, eventsStart, time.Hour)); rec.Code != http.StatusAccepted {
		t.Fatalf("ingest: %d", rec.Code)
	}
	type page struct {
		AuditEvents struct {
			Edges []struct {
				Cursor string
				Node   struct {
					ID, Action, EventTimestamp string
					Actor                      struct{ Name string }
					AuditPayload               any
					Targets                    any
				}
			}
			PageInfo struct {
				EndCursor   *string
				HasNextPage bool
			}
		}
	}
	const fields = `edges { cursor node { id action eventTimestamp actor { name } auditPayload targets } } pageInfo { endCursor hasNextPage }`
	var first page
	c.MustPost(`{ auditEvents(first: 10) { `+fields+` } }`, &first)
	edges := first.AuditEvents.Edges
	if len(edges) != 10 || !first.AuditEvents.PageInfo.HasNextPage || *first.AuditEvents.PageInfo.EndCursor != edges[9].Cursor {
		t.Fatalf("first page: %+v", first.AuditEvents.PageInfo)
	}
	self := edges[0].Node
	payload, _ := json.Marshal(self.AuditPayload)
	targets, _ := json.Marshal(self.Targets)
	if self.Action != "CREATE" || self.Actor.Name != "admin" || !strings.Contains(string(payload), "ExportConfigurationCreatedAuditPayload") ||
		!strings.Contains(string(targets), created.CreateS3AssumedRoleExportConfiguration.ID) {
		t.Fatalf("the first event is not the configuration's creation: %+v", self)
	}
	if edges[1].Node.ID != eventtest.ID(0).String() {
		t.Fatalf("second event = %s, want the first ingested", edges[1].Node.ID)
	}
	// Page through the rest.
	seen := len(edges)
	cursor := *first.AuditEvents.PageInfo.EndCursor
	for {
		var next page
		c.MustPost(`query($after: String) { auditEvents(first: 10, after: $after) { `+fields+` } }`, &next, client.Var("after", cursor))
		seen += len(next.AuditEvents.Edges)
		if !next.AuditEvents.PageInfo.HasNextPage {
			break
		}
		cursor = *next.AuditEvents.PageInfo.EndCursor
	}
	if seen != 26 {
		t.Fatalf("paged through %d events, want 26", seen)
	}
	// Filter by event time: events 3..6 (one per hour from eventsStart).
	var window page
	c.MustPost(fmt.Sprintf(`{ auditEvents(from: "%s", to: "%s") { %s } }`,
		eventsStart.Add(3*time.Hour).Format(time.RFC3339), eventsStart.Add(7*time.Hour).Format(time.RFC3339), fields), &window)
	if len(window.AuditEvents.Edges) != 4 || window.AuditEvents.Edges[0].Node.ID != eventtest.ID(3).String() || window.AuditEvents.PageInfo.HasNextPage {
		t.Fatalf("window: %+v", window.AuditEvents)
	}
	for query, want := range map[string]string{
		`{ auditEvents(first: 0) { pageInfo { hasNextPage } } }`:          "first: must be between 1 and 1000",
		`{ auditEvents(first: 5000) { pageInfo { hasNextPage } } }`:       "first: must be between 1 and 1000",
		`{ auditEvents(after: "bogus") { pageInfo { hasNextPage } } }`:    "after: is not a cursor from this API",
		`{ auditEvents(from: "yesterday") { pageInfo { hasNextPage } } }`: `"yesterday" is not an RFC 3339 timestamp`,
		`{ auditEvents(to: 12) { pageInfo { hasNextPage } } }`:            "DateTime",
	} {
		_, resp := api.query(adminToken, query, nil)
		if resp.code() != "BAD_USER_INPUT" && resp.code() != "GRAPHQL_VALIDATION_FAILED" || !strings.Contains(resp.message(), want) {
			t.Errorf("%s: %s", query, resp.Body)
		}
	}
	var status struct {
		EventBuffer struct {
			Events, DroppedEvents, Segments, MaxEvents, Bytes int
			OldestReceivedAt                                  *string
		}
	}
	c.MustPost(`{ eventBuffer { events droppedEvents segments maxEvents bytes oldestReceivedAt } }`, &status)
	if status.EventBuffer.Events != 26 || status.EventBuffer.DroppedEvents != 0 || status.EventBuffer.Segments != 1 ||
		status.EventBuffer.MaxEvents != 5_000_000 || status.EventBuffer.Bytes <= 0 || status.EventBuffer.OldestReceivedAt == nil {
		t.Fatalf("eventBuffer = %+v", status.EventBuffer)
	}
}

// TestConcurrentIngestKeepsEachBatchApart: requests decoded at once, good and bad mixed, each
// in memory kept from one request to the next, store exactly the events sent, each as sent.
func TestConcurrentIngestKeepsEachBatchApart(t *testing.T) {
	api := newTestAPIWith(t, Config{}, unboundedBuffer)
	before := storetest.Status(t, api.store).Head
	const senders, rounds = 6, 20
	want := map[uuid.UUID]event.Event{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			var d event.Decoder
			for r := range rounds {
				first, n := (s*rounds+r)*100, 1+(s*7+r*13)%100 // sizes differ: buffers grow and shrink
				body := eventtest.NDJSON(first, n, eventsStart, time.Second)
				if r%5 == 4 { // a bad request between good ones
					if rec, _ := api.ingest(adminToken, "application/x-ndjson", "", append(bytes.Clone(body), "{\"x\":1}\n"...)); rec.Code != http.StatusBadRequest {
						t.Errorf("bad batch: %d %s", rec.Code, rec.Body)
					}
				}
				if rec, resp := api.ingest(adminToken, "application/x-ndjson", "", body); rec.Code != http.StatusAccepted || resp.Accepted != n {
					t.Errorf("batch: %d %s", rec.Code, rec.Body)
				}
				b, err := d.NDJSON(body, eventsStart)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i := range b.Len() {
					e, _ := event.Decode(0, b.Record(i))
					want[e.ID] = e
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got := 0
	api.store.ReadEvents(t.Context(), before, 0, func(seq uint64, rec []byte) bool {
		e, err := event.Decode(0, rec)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[e.ID]
		e.ReceivedTimestamp, w.ReceivedTimestamp = time.Time{}, time.Time{}
		if !ok || !reflect.DeepEqual(e, w) {
			t.Fatalf("event %d stored as\n%+v\nsent as\n%+v", seq, e, w)
		}
		delete(want, e.ID)
		got++
		return true
	})
	if len(want) != 0 || got == 0 {
		t.Fatalf("%d events stored, %d sent not stored", got, len(want))
	}
}
