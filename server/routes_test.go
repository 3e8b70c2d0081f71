package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/auditexport/auditexport/internal/testserver"
	"github.com/auditexport/auditexport/store"
)

func TestRequestLimits(t *testing.T) {
	api := newTestAPI(t)
	t.Run("body over 1 MiB", func(t *testing.T) {
		big := `{"query":"{ getAllExportConfigurations { id } }","variables":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`
		status, resp := api.raw(http.MethodPost, GraphQLPath, adminToken, "application/json", []byte(big))
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(resp.message(), "exceeds") {
			t.Fatalf("status %d: %.200s", status, resp.Body)
		}
	})
	t.Run("body over 1 MiB without Content-Length", func(t *testing.T) {
		big := `{"query":"{ getAllExportConfigurations { id } }","variables":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`
		// Hiding the reader's type keeps httptest from setting Content-Length.
		req := httptest.NewRequest(http.MethodPost, GraphQLPath, struct{ io.Reader }{bytes.NewReader([]byte(big))})
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminToken)
		rec := httptest.NewRecorder()
		api.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", rec.Code)
		}
	})
	t.Run("wrong content type", func(t *testing.T) {
		status, resp := api.raw(http.MethodPost, GraphQLPath, adminToken, "text/plain", []byte(`{"query":"{ __typename }"}`))
		if status != http.StatusUnsupportedMediaType || !strings.Contains(resp.message(), "application/json") {
			t.Fatalf("status %d: %s", status, resp.Body)
		}
	})
	t.Run("malformed JSON is not echoed", func(t *testing.T) {
		body := `{"query":"mutation { createS3AccessKeyExportConfiguration(data: { secretAccessKey: \"` + testSecret + `\" `
		status, resp := api.raw(http.MethodPost, GraphQLPath, adminToken, "application/json", []byte(body))
		if status != http.StatusBadRequest || resp.message() != "request body is not valid JSON" || strings.Contains(resp.Body, testSecret) {
			t.Fatalf("status %d: %s", status, resp.Body)
		}
	})
	t.Run("JSON of the wrong shape", func(t *testing.T) {
		status, resp := api.raw(http.MethodPost, GraphQLPath, adminToken, "application/json", []byte(`{"query": 42}`))
		if status != http.StatusBadRequest || len(resp.Errors) == 0 {
			t.Fatalf("status %d: %s", status, resp.Body)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		// Introspection types nest without bound: ofType { ofType { … } }.
		q := "{ __schema { types { " + strings.Repeat("ofType { ", 20) + "name" + strings.Repeat(" }", 20) + " } } }"
		_, resp := api.query(adminToken, q, nil)
		if len(resp.Errors) == 0 || !strings.Contains(resp.message(), "more than the limit of 15") || string(resp.Data) != "null" && len(resp.Data) != 0 {
			t.Fatalf("deep query: %s", resp.Body)
		}
	})
	t.Run("deep nesting hidden in fragments", func(t *testing.T) {
		q := "query { __schema { types { ...A } } } fragment A on __Type { ofType { ...B } } fragment B on __Type { ofType { ...C } } " +
			"fragment C on __Type { ofType { " + strings.Repeat("ofType { ", 12) + "name" + strings.Repeat(" }", 12) + " } }"
		_, resp := api.query(adminToken, q, nil)
		if !strings.Contains(resp.message(), "more than the limit") {
			t.Fatalf("deep fragment query: %s", resp.Body)
		}
	})
	t.Run("many aliases", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("{")
		for i := range 200 {
			fmt.Fprintf(&b, " a%d: getAllExportConfigurations { id interval }", i)
		}
		b.WriteString(" }")
		_, resp := api.query(adminToken, b.String(), nil)
		if !strings.Contains(resp.message(), "200 fields under aliases, which exceeds the limit of 50") {
			t.Fatalf("complex query: %.300s", resp.Body)
		}
	})
	t.Run("GraphiQL introspection passes the limits", func(t *testing.T) {
		status, resp := api.query(adminToken, testserver.IntrospectionQuery, nil)
		if status != http.StatusOK || len(resp.Errors) != 0 || !strings.Contains(string(resp.Data), "ExportConfiguration") {
			t.Fatalf("introspection: %d %.300s", status, resp.Body)
		}
	})
}

func TestRoutes(t *testing.T) {
	api := newTestAPI(t)
	metricsToken, _, err := api.store.CreateToken(t.Context(), "prometheus", []store.Permission{store.PermissionMetrics}, store.Principal{Name: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		method, path, token string
		status              int
		contains            string
	}{
		"healthz":                {"GET", "/healthz", "", 200, "ok"},
		"readyz":                 {"GET", "/readyz", "", 200, "ok"},
		"playground":             {"GET", GraphQLPath, "", 200, "<html"},
		"metrics without token":  {"GET", "/metrics", "", 401, "UNAUTHENTICATED"},
		"metrics with bad token": {"GET", "/metrics", "bad-token-value", 401, "UNAUTHENTICATED"},
		"metrics with admin":     {"GET", "/metrics", adminToken, 200, "auditexport_buffer_events "},
		"metrics with METRICS":   {"GET", "/metrics", metricsToken, 200, "go_goroutines"},
		"unknown route":          {"GET", "/nope", "", 404, "no such route"},
		"wrong method":           {"DELETE", GraphQLPath, adminToken, 405, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			status, resp := api.raw(c.method, c.path, c.token, "", nil)
			if status != c.status || !strings.Contains(resp.Body, c.contains) {
				t.Fatalf("%s %s: %d %.200s", c.method, c.path, status, resp.Body)
			}
		})
	}
	t.Run("metrics without the permission", func(t *testing.T) {
		audit, _, err := api.store.CreateToken(t.Context(), "auditor", []store.Permission{store.PermissionAudit}, store.Principal{Name: "admin"})
		if err != nil {
			t.Fatal(err)
		}
		status, resp := api.raw("GET", "/metrics", audit, "", nil)
		if status != http.StatusForbidden || resp.code() != "FORBIDDEN" {
			t.Fatalf("%d %s", status, resp.Body)
		}
	})
	t.Run("access log has no token", func(t *testing.T) {
		logs := api.logs.String()
		if !strings.Contains(logs, `"route":"metrics"`) || strings.Contains(logs, adminToken) || strings.Contains(logs, metricsToken) {
			t.Fatalf("logs: %s", logs)
		}
		var line map[string]any
		first, _, _ := strings.Cut(logs, "\n")
		if err := json.Unmarshal([]byte(first), &line); err != nil || line["msg"] != "http request" {
			t.Fatalf("log line is not structured JSON: %q", first)
		}
	})
}
