package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/auditexport/auditexport/internal/testserver"
)

// hungEndpoint is an S3 endpoint on loopback that accepts connections. At first it closes each
// at once, so the check on create fails fast; after hang() it holds each one open and never
// answers, as a stuck destination does. It counts the connections it holds and sees the server
// close them.
type hungEndpoint struct {
	URL string

	mu       sync.Mutex
	hanging  bool
	held     int // connections held open now
	accepted int // connections held since hang()
}

func newHungEndpoint(t *testing.T) *hungEndpoint {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hungEndpoint{URL: "http://" + ln.Addr().String()}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			hanging := h.hanging
			if hanging {
				h.held++
				h.accepted++
			}
			h.mu.Unlock()
			if !hanging {
				conn.Close()
				continue
			}
			conns.Go(func() {
				// Whatever the client sends is read and dropped; the read ends when the client
				// closes the connection (or at the test's end).
				stop := context.AfterFunc(t.Context(), func() { conn.Close() })
				defer stop()
				io.Copy(io.Discard, conn)
				conn.Close()
				h.mu.Lock()
				h.held--
				h.mu.Unlock()
			})
		}
	}()
	return h
}

// hang makes the endpoint hold every new connection without answering.
func (h *hungEndpoint) hang() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hanging = true
}

// counts returns the connections held now and those accepted since hang().
func (h *hungEndpoint) counts() (held, accepted int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held, h.accepted
}

// hangLimit bounds how long these tests wait for something that must happen: far more than it
// takes, so reaching it means the server hangs, never that it is slow.
const hangLimit = 60 * time.Second

// waitUntil polls cond until it holds, failing the test with what once hangLimit has passed.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v until %s", hangLimit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// graphQLWithin posts an operation as the admin and decodes its data into out; the test fails
// when the server does not answer within hangLimit or answers with errors.
func graphQLWithin(t *testing.T, s *testserver.Server, query string, vars map[string]any, out any) {
	t.Helper()
	resp, err := postGraphQL(t.Context(), &http.Client{Timeout: hangLimit}, s, query, vars)
	if err != nil {
		t.Fatalf("%s: no answer: %v", query, err)
	}
	if resp.Status != http.StatusOK || len(resp.Errors) > 0 {
		t.Fatalf("%s: status %d: %s", query, resp.Status, resp.Body)
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		t.Fatal(err)
	}
}

// postGraphQL posts an operation as the admin within ctx.
func postGraphQL(ctx context.Context, client *http.Client, s *testserver.Server, query string, vars map[string]any) (testserver.Response, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/api/audit/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	resp, err := client.Do(req)
	if err != nil {
		return testserver.Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	out := testserver.Response{Status: resp.StatusCode, Body: string(raw)}
	if err == nil {
		err = json.Unmarshal(raw, &out)
	}
	return out, err
}
