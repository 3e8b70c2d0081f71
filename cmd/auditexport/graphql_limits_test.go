package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/testserver"
)

// TestGraphQLWorkIsBounded replays issue 16's probes ("GraphQL can be made to burn CPU and
// memory") against the real binary: each is refused before it runs, or answered within the
// response limit, and a request stops when its client goes away. It also checks that a browser
// on another site cannot make the API run anything (issue 14).
func TestGraphQLWorkIsBounded(t *testing.T) {
	hanging := hangingListener(t)
	server := testserver.Start(t, testserver.Options{Args: []string{"--check-timeout", "2s", "--allowed-endpoints", "127.0.0.1"}})
	admin, graphql := server.AdminToken, server.URL+"/api/audit/graphql"
	var created struct{ CreateAPIToken string }
	server.MustGraphQL(admin, `mutation { createApiToken(name: "platform", permissions: [INGEST]) }`, nil, &created)
	ingest := created.CreateAPIToken
	refused := func(t *testing.T, token, query, code, limit string) {
		t.Helper()
		resp := server.GraphQL(token, query, nil)
		if resp.Status != http.StatusUnprocessableEntity || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != code ||
			limit != "" && resp.Errors[0].Extensions["limit"] != limit || string(resp.Data) != "null" && len(resp.Data) != 0 {
			t.Fatalf("%d %.400s", resp.Status, resp.Body)
		}
	}

	t.Run("fragments spreading fragments twice, with an INGEST token", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("{ ...G1 }")
		for i := 1; i < 26; i++ {
			fmt.Fprintf(&b, " fragment G%d on Query { ...G%d ...G%d }", i, i+1, i+1)
		}
		b.WriteString(" fragment G26 on Query { eventBuffer { events } }")
		refused(t, ingest, b.String(), "LIMIT_EXCEEDED", "fields")
	})
	t.Run("one field repeated 5,000 times", func(t *testing.T) {
		refused(t, admin, "{"+strings.Repeat(" eventBuffer{events}", 5000)+" }", "LIMIT_EXCEEDED", "tokens")
	})
	t.Run("aliases of getAllExportConfigurations", func(t *testing.T) {
		var b strings.Builder
		for i := range 166 {
			fmt.Fprintf(&b, " c%d: getAllExportConfigurations { id connectionStatus }", i)
		}
		refused(t, admin, "{"+b.String()+" }", "LIMIT_EXCEEDED", "aliases")
		refused(t, admin, `{ a: getAllExportConfigurations { id } b: getAllExportConfigurations { id } }`, "LIMIT_EXCEEDED", "once")
	})

	t.Run("pages of 1 MiB events", func(t *testing.T) {
		day1 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) // apart from the service's own events
		for batch := range 2 {
			if status, body := httpCall(t, http.MethodPost, server.URL+"/api/audit/events", ingest, "application/x-ndjson",
				eventtest.Large(day1.Add(time.Duration(batch)*time.Minute), 10, 900<<10, "x")); status != http.StatusAccepted {
				t.Fatalf("ingest: %d %.300s", status, body)
			}
		}
		var aliases strings.Builder
		for i := range 20 {
			fmt.Fprintf(&aliases, " e%d: auditEvents(first: 105) { edges { node { auditPayload } } }", i)
		}
		refused(t, admin, "{"+aliases.String()+" }", "LIMIT_EXCEEDED", "once")

		// One page of 105: it ends once it holds 8 MiB, and says there is more.
		resp := server.GraphQL(admin, `{ auditEvents(first: 105, from: "2020-01-01T00:00:00Z", to: "2020-01-02T00:00:00Z") {
			edges { node { id auditPayload } } pageInfo { hasNextPage } } }`, nil)
		var page struct {
			AuditEvents struct {
				Edges    []struct{ Node struct{ ID string } }
				PageInfo struct{ HasNextPage bool }
			}
		}
		if err := json.Unmarshal(resp.Data, &page); err != nil || resp.Status != http.StatusOK || len(resp.Errors) > 0 {
			t.Fatalf("%d %v %.300s", resp.Status, err, resp.Body)
		}
		if n := len(page.AuditEvents.Edges); n == 0 || n > 10 || !page.AuditEvents.PageInfo.HasNextPage || len(resp.Body) > 10<<20 {
			t.Fatalf("a page of %d events, %d bytes, hasNextPage %v", n, len(resp.Body), page.AuditEvents.PageInfo.HasNextPage)
		}

		// Events whose answer grows six-fold once escaped: refused whole, with a clear error.
		if status, body := httpCall(t, http.MethodPost, server.URL+"/api/audit/events", ingest, "application/x-ndjson",
			eventtest.Large(day1.AddDate(0, 0, 1), 4, 800<<10, "<")); status != http.StatusAccepted {
			t.Fatalf("ingest: %d %.300s", status, body)
		}
		refused(t, admin, `{ auditEvents(from: "2020-01-02T00:00:00Z", to: "2020-01-03T00:00:00Z") { edges { node { auditPayload } } } }`, "RESPONSE_TOO_LARGE", "")
	})

	t.Run("GraphiQL's introspection", func(t *testing.T) {
		resp := server.GraphQL(admin, testserver.IntrospectionQuery, nil)
		if resp.Status != http.StatusOK || len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), `"ExportConfiguration"`) {
			t.Fatalf("%d %.300s", resp.Status, resp.Body)
		}
	})

	t.Run("cross-site requests run nothing", func(t *testing.T) {
		mutation := `mutation { createApiToken(name: "csrf", permissions: [ADMIN]) }`
		asJSON, _ := json.Marshal(map[string]string{"query": mutation})
		for contentType, body := range map[string]string{
			"text/plain":                        string(asJSON),
			"application/x-www-form-urlencoded": url.Values{"query": {mutation}}.Encode(),
			"multipart/form-data; boundary=b":   "--b\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n" + mutation + "\r\n--b--\r\n",
		} {
			if status, out := httpCall(t, http.MethodPost, graphql, admin, contentType, []byte(body)); status != http.StatusUnsupportedMediaType {
				t.Errorf("POST %s: %d %.200s", contentType, status, out)
			}
		}
		if status, out := httpCall(t, http.MethodGet, graphql+"?"+url.Values{"query": {mutation}}.Encode(), admin, "", nil); status != http.StatusOK || !strings.Contains(out, "<html") {
			t.Errorf("GET with a mutation: %d %.200s", status, out)
		}
		if tokens := server.GraphQL(admin, `{ apiTokens { name } }`, nil); strings.Contains(tokens.Body, `"csrf"`) || !strings.Contains(tokens.Body, `"platform"`) {
			t.Fatalf("tokens: %s", tokens.Body)
		}
	})

	t.Run("a client that goes away stops its request", func(t *testing.T) {
		// The configuration's destination accepts connections and never answers: its check
		// lasts the check timeout, unless the request ends first.
		var c struct{ CreateS3AccessKeyExportConfiguration struct{ ID string } }
		server.MustGraphQL(admin, `mutation($e: String!) { createS3AccessKeyExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket"
			region: "us-east-1" endpoint: $e accessKeyId: "AKIAIOSFODNN7EXAMPLE" secretAccessKey: "YOUR/SECRET/ACCESSKEY" }) { id } }`,
			map[string]any{"e": "http://" + hanging.addr}, &c)
		hanging.drain()
		mutation := func(name string) string {
			return fmt.Sprintf(`mutation { v: verifyExportConfiguration(id: %q) { id } t: createApiToken(name: %q, permissions: [AUDIT]) }`,
				c.CreateS3AccessKeyExportConfiguration.ID, name)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-hanging.accepted // the check is under way
			cancel()
		}()
		// A connection of its own, whose address the server's access log names.
		local := make(chan string, 1)
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				local <- conn.LocalAddr().String()
			}
			return conn, err
		}}}
		body, _ := json.Marshal(map[string]string{"query": mutation("after-the-client-left")})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, graphql, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+admin)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("the request was answered before the client left")
		}
		// The access log's line is written once the request's handler has returned.
		waitForLog(t, server, `"remote":"`+<-local+`"`)
		// Left to finish, the same request creates its token: the check above can fail.
		server.MustGraphQL(admin, mutation("with-the-client-waiting"), nil, nil)
		tokens := server.GraphQL(admin, `{ apiTokens { name } }`, nil)
		if strings.Contains(tokens.Body, "after-the-client-left") || !strings.Contains(tokens.Body, "with-the-client-waiting") {
			t.Fatalf("tokens: %s", tokens.Body)
		}
	})
}

// hanging is a loopback listener that accepts connections and never answers.
type hanging struct {
	addr     string
	accepted chan net.Conn
}

func hangingListener(t *testing.T) *hanging {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hanging{addr: ln.Addr().String(), accepted: make(chan net.Conn, 100)}
	t.Cleanup(func() {
		ln.Close()
		h.drain()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.accepted <- c
		}
	}()
	return h
}

// drain closes the connections accepted so far.
func (h *hanging) drain() {
	for {
		select {
		case c := <-h.accepted:
			c.Close()
		default:
			return
		}
	}
}

// waitForLog waits until the server has logged a line containing text.
func waitForLog(t *testing.T, server *testserver.Server, text string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(server.Logs(), text); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server logged no %s\n%s", text, server.Logs())
		}
	}
}
