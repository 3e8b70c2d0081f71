package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/auditexport/auditexport/console"
)

// TestConsoleRoutes: the console is served at / and /console/<file> with its security headers,
// needs no token (it holds no data), and leaves every other path not found.
func TestConsoleRoutes(t *testing.T) {
	api := newTestAPI(t)
	get := func(method, path string, header http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		api.handler.ServeHTTP(rec, req)
		return rec
	}
	page := get("GET", "/", nil)
	if page.Code != http.StatusOK || page.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", page.Code, page.Header().Get("Content-Type"))
	}
	for header, want := range map[string]string{
		"Content-Security-Policy": console.ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := page.Header().Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	for _, directive := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(console.ContentSecurityPolicy, directive) {
			t.Errorf("the CSP lacks %s", directive)
		}
	}
	if strings.Contains(console.ContentSecurityPolicy, "unsafe") {
		t.Errorf("the CSP allows something unsafe: %s", console.ContentSecurityPolicy)
	}
	body := page.Body.String()
	for _, script := range regexp.MustCompile(`<script[^>]*>[^<]*`).FindAllString(body, -1) {
		if !strings.Contains(script, ` src="/console/`) || !strings.HasSuffix(script, ">") {
			t.Errorf("index.html has an inline script: %s", script)
		}
	}
	if regexp.MustCompile(`<style|\sstyle=|\son[a-z]+=`).MatchString(body) {
		t.Errorf("index.html has inline style or event handlers:\n%s", body)
	}
	// Every file the page references is served, with its type and the headers.
	refs := regexp.MustCompile(`(?:src|href)="(/console/[^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html references %d console files", len(refs))
	}
	for _, ref := range refs {
		rec := get("GET", ref[1], nil)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Security-Policy") == "" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d %v", ref[1], rec.Code, rec.Header())
		}
	}
	if ct := get("GET", console.AssetsPrefix+"app.js", nil).Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("app.js Content-Type %q", ct)
	}
	etag := page.Header().Get("ETag")
	if rec := get("GET", "/", http.Header{"If-None-Match": {etag}}); etag == "" || rec.Code != http.StatusNotModified {
		t.Errorf("revalidation with ETag %q: %d", etag, rec.Code)
	}
	for path, status := range map[string]int{"/console/": 404, "/console/nope.js": 404, "/index.html": 404} {
		if rec := get("GET", path, nil); rec.Code != status || !strings.Contains(rec.Body.String(), "no such route") {
			t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	if rec := get("POST", "/", nil); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET" {
		t.Errorf("POST /: %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

// TestGraphQLRefusesCrossSiteRequests: what a page on another site can make a browser send
// without a preflight (a form post, text/plain, multipart, a GET) never reaches the executor,
// even carrying a valid token, and a preflight is not answered with CORS permission.
func TestGraphQLRefusesCrossSiteRequests(t *testing.T) {
	api := newTestAPI(t)
	mutation := `mutation { createApiToken(name: "planted", permissions: [ADMIN]) }`
	jsonBody := `{"query":` + strconv.Quote(mutation) + `}`
	for name, c := range map[string]struct{ contentType, body string }{
		"text/plain":              {"text/plain", jsonBody},
		"text/plain with charset": {"text/plain;charset=UTF-8", jsonBody},
		"form post":               {"application/x-www-form-urlencoded", url.Values{"query": {mutation}}.Encode()},
		"multipart form":          {"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n" + mutation + "\r\n--x--\r\n"},
		"no content type":         {"", jsonBody},
	} {
		for _, token := range []string{"", adminToken} {
			status, resp := api.raw(http.MethodPost, GraphQLPath, token, c.contentType, []byte(c.body))
			want := http.StatusUnsupportedMediaType
			if token == "" {
				want = http.StatusUnauthorized
			}
			if status != want || len(resp.Data) != 0 {
				t.Errorf("%s (token %v): %d %s, want %d and no data", name, token != "", status, resp.Body, want)
			}
		}
	}
	// GET serves the playground page, never an operation, whatever the query string says.
	req := httptest.NewRequest(http.MethodGet, GraphQLPath+"?query="+url.QueryEscape(mutation), nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	api.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") || strings.Contains(rec.Body.String(), `"data"`) {
		t.Errorf("GET with a query: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	// A cross-origin preflight gets no permission: the browser then sends nothing.
	pre := httptest.NewRequest(http.MethodOptions, GraphQLPath, nil)
	pre.Header.Set("Origin", "https://evil.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	rec = httptest.NewRecorder()
	api.handler.ServeHTTP(rec, pre)
	if rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Code < 400 {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}
	tokens, err := api.store.Tokens(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok.Name == "planted" {
			t.Fatalf("a cross-site request created a token")
		}
	}
}
