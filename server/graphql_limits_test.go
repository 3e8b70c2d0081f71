package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/graph"
)

func (a *testAPI) mustIngest(body []byte) {
	a.t.Helper()
	if rec, resp := a.ingest(adminToken, "application/x-ndjson", "", body); rec.Code != http.StatusAccepted {
		a.t.Fatalf("ingest: %d %+v", rec.Code, resp)
	}
}

// A page of large events ends early, with hasNextPage, once it holds 8 MiB: the request's memory
// stays bounded whatever first asks for, and paging on loses nothing.
func TestAuditEventsPagesAreBounded(t *testing.T) {
	api := newTestAPI(t)
	api.mustIngest(eventtest.Large(eventsStart, 12, 900<<10, "x"))
	seen := map[string]bool{}
	var after *string
	for pages := 0; ; pages++ {
		_, resp := api.query(adminToken, `query($after: String) { auditEvents(first: 100, after: $after) {
			edges { node { id auditPayload } } pageInfo { endCursor hasNextPage } } }`, map[string]any{"after": after})
		var data struct {
			AuditEvents struct {
				Edges []struct {
					Node struct {
						ID           string
						AuditPayload json.RawMessage
					}
				}
				PageInfo struct {
					EndCursor   *string
					HasNextPage bool
				}
			}
		}
		if err := json.Unmarshal(resp.Data, &data); err != nil || len(resp.Errors) > 0 {
			t.Fatalf("page %d: %v %.300s", pages, err, resp.Body)
		}
		if pages == 0 && (len(data.AuditEvents.Edges) >= 12 || !data.AuditEvents.PageInfo.HasNextPage || len(resp.Body) > 9<<20) {
			t.Fatalf("the first page holds %d events (%d bytes)", len(data.AuditEvents.Edges), len(resp.Body))
		}
		for _, e := range data.AuditEvents.Edges {
			if len(e.Node.AuditPayload) < 900<<10 {
				t.Fatalf("event %s lost its payload", e.Node.ID)
			}
			seen[e.Node.ID] = true
		}
		if !data.AuditEvents.PageInfo.HasNextPage || pages > 12 {
			break
		}
		after = data.AuditEvents.PageInfo.EndCursor
	}
	if len(seen) != 12 {
		t.Fatalf("paged through %d events, want 12", len(seen))
	}
}

// An answer larger than 16 MiB once encoded is refused whole, with 422 and a clear error: 3 MiB
// of '<' is 18 MiB once encoding/json escapes it.
func TestResponseTooLarge(t *testing.T) {
	api := newTestAPI(t)
	api.mustIngest(eventtest.Large(eventsStart, 4, 800<<10, "<"))
	status, resp := api.query(adminToken, `{ auditEvents { edges { node { auditPayload } } } }`, nil)
	if status != http.StatusUnprocessableEntity || resp.code() != graph.CodeResponseTooLarge ||
		!strings.Contains(resp.message(), "exceeds the limit of 16777216 bytes") || string(resp.Data) != "null" || len(resp.Body) > 1000 {
		t.Fatalf("%d %.500s", status, resp.Body)
	}
	// Fewer events fit.
	if status, resp := api.query(adminToken, `{ auditEvents(first: 2) { edges { node { auditPayload } } } }`, nil); status != http.StatusOK || len(resp.Errors) > 0 {
		t.Fatalf("%d %.300s", status, resp.Body)
	}
}

// The writer's bound is exact: an answer one byte over it is replaced, one at it passes.
func TestHintedWriterBoundsTheAnswer(t *testing.T) {
	for size, want := range map[int]int{100: http.StatusOK, 101: http.StatusUnprocessableEntity} {
		rec := httptest.NewRecorder()
		w := &hintedWriter{ResponseWriter: rec, hint: &statusHint{}, maxBytes: 100}
		w.Write([]byte(strings.Repeat("x", size)))
		if rec.Code != want || want != http.StatusOK && !strings.Contains(rec.Body.String(), graph.CodeResponseTooLarge) {
			t.Errorf("%d bytes: %d %s", size, rec.Code, rec.Body.String())
		}
	}
}

func TestGraphQLWorkLimits(t *testing.T) {
	api := newTestAPI(t)
	doubling := "{ ...G0 }"
	for i := range 26 {
		doubling += fmt.Sprintf(" fragment G%d on Query { ...G%d ...G%d }", i, i+1, i+1)
	}
	doubling += " fragment G26 on Query { eventBuffer { events } }"
	for name, c := range map[string]struct{ query, limit string }{
		"fragments spreading fragments twice": {doubling, "fields"},
		"one field 5,000 times":               {"{" + strings.Repeat(" eventBuffer { events }", 5000) + " }", "tokens"},
		"an expensive field twice":            {`{ a: getAllExportConfigurations { id } b: getAllExportConfigurations { id } }`, "once"},
		"two pages of events":                 {`{ a: auditEvents(first: 105) { edges { node { auditPayload } } } b: auditEvents(first: 105) { edges { node { auditPayload } } } }`, "once"},
		"a page of 1,000 events, every field twice": {`{ auditEvents(first: 1000) { edges { node { id tenantId action actionStatus eventTimestamp receivedTimestamp actorIp targetType targets
			relatedResources auditPayload requestId sessionId additionalFields a: id b: tenantId c: action d: actionStatus e: eventTimestamp
			f: receivedTimestamp g: actorIp h: targetType i: targets j: relatedResources k: auditPayload } } } }`, "complexity"},
	} {
		t.Run(name, func(t *testing.T) {
			status, resp := api.query(adminToken, c.query, nil)
			if status != http.StatusUnprocessableEntity || resp.code() != graph.CodeLimitExceeded || resp.Errors[0].Extensions["limit"] != c.limit {
				t.Fatalf("%d %.300s", status, resp.Body)
			}
		})
	}
}

// A browser sends a cross-site request without asking first (CORS preflight) only as a form post
// or text/plain: every such request is refused before GraphQL, and GET serves only the
// playground page, so a page on another site cannot make a signed-in console run a mutation.
func TestCrossSiteRequestsRunNothing(t *testing.T) {
	api := newTestAPI(t)
	mutation := `mutation { createApiToken(name: "csrf", permissions: [ADMIN]) }`
	jsonBody, _ := json.Marshal(map[string]string{"query": mutation})
	form := url.Values{"query": {mutation}}.Encode()
	for contentType, body := range map[string]string{
		"text/plain":                        string(jsonBody),
		"text/plain; charset=utf-8":         string(jsonBody),
		"application/x-www-form-urlencoded": form,
		"multipart/form-data; boundary=b":   "--b\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n" + mutation + "\r\n--b--\r\n",
		"":                                  string(jsonBody),
	} {
		status, resp := api.raw(http.MethodPost, GraphQLPath, adminToken, contentType, []byte(body))
		if status != http.StatusUnsupportedMediaType || !strings.Contains(resp.message(), "application/json") {
			t.Errorf("POST %q: %d %s", contentType, status, resp.Body)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req := httptest.NewRequest(method, GraphQLPath+"?"+url.Values{"query": {mutation}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		rec := httptest.NewRecorder()
		api.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") || strings.Contains(rec.Body.String(), `"data"`) {
			t.Errorf("%s with a query: %d %s %.100s", method, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		}
	}
	// No CORS: a preflight is not answered with permission, so browsers send no JSON cross-site.
	req := httptest.NewRequest(http.MethodOptions, GraphQLPath, nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	rec := httptest.NewRecorder()
	api.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}
	tokens, err := api.store.Tokens(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok.Name == "csrf" {
			t.Fatal("a refused request created a token")
		}
	}
	// The same mutation as JSON runs: the refusals above are about how it was sent.
	if _, resp := api.query(adminToken, mutation, nil); len(resp.Errors) > 0 {
		t.Fatalf("as JSON: %s", resp.Body)
	}
}
