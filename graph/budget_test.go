package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/store"
)

// eventStore buffers events in memory; its other methods are nil and panic if called.
type eventStore struct {
	Store
	records [][]byte
}

func (s eventStore) ReadEvents(_ context.Context, after uint64, _ int, fn func(seq uint64, record []byte) bool) error {
	for i := after; i < uint64(len(s.records)); i++ {
		if !fn(i+1, s.records[i]) {
			break
		}
	}
	return nil
}

// bigEvents are n events whose auditPayload is a JSON string of size bytes of c.
func bigEvents(n, size int, c string) eventStore {
	var s eventStore
	s.add(n, size, c, time.Now())
	return s
}

// add buffers n events of time at whose auditPayload is a JSON string of size bytes of c.
func (s *eventStore) add(n, size int, c string, at time.Time) {
	payload, _ := json.Marshal(strings.Repeat(c, size))
	for range n {
		s.records = append(s.records, event.Encode(event.Event{ID: uuid.New(), EventTimestamp: at, ReceivedTimestamp: at, AuditPayload: payload}))
	}
}

// post serves one GraphQL request and returns the status and body.
func post(h http.Handler, ctx context.Context, query string) (int, string) {
	body, _ := json.Marshal(map[string]string{"query": query})
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	asAdmin(h).ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// An answer growing past the limit stops at the first field past it: the fields after it are
// not resolved, and the client gets an error instead of a partial answer.
func TestResponseBudgetStopsResolving(t *testing.T) {
	srv := NewHandler(HandlerConfig{Resolver: &Resolver{Store: bigEvents(1, 16<<10, "x")}, Limits: Limits{MaxResponseBytes: 64 << 10}})
	var payloads atomic.Int32 // resolved after the budget's check
	srv.AroundFields(func(ctx context.Context, next graphql.Resolver) (any, error) {
		if graphql.GetFieldContext(ctx).Field.Name == "auditPayload" {
			payloads.Add(1)
		}
		return next(ctx)
	})
	// The fields of one object resolve in order: 16 KiB each, the fourth passes 64 KiB.
	aliases := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, " a%d: auditPayload", i)
		}
		return "{ auditEvents(first: 1) { edges { node {" + b.String() + " } } } }"
	}
	status, body := post(srv, context.Background(), aliases(40))
	if !strings.Contains(body, `"code":"RESPONSE_TOO_LARGE"`) || !strings.Contains(body, "exceeds the limit of 65536 bytes") ||
		!strings.Contains(body, `"data":null`) || strings.Count(body, `"message"`) != 1 || strings.Contains(body, "xxxx") {
		t.Fatalf("%d %.500s", status, body)
	}
	if n := payloads.Load(); n != 4 {
		t.Fatalf("%d of 40 payloads were resolved: execution went on past the budget", n)
	}

	// Under the budget the answer is whole.
	status, body = post(srv, context.Background(), aliases(3))
	if status != http.StatusOK || strings.Count(body, strings.Repeat("x", 16<<10)) != 3 || strings.Contains(body, "errors") {
		t.Fatalf("%d %.300s", status, body)
	}
}

// The estimate counts the escapes encoding/json adds when gqlgen's transport writes the answer:
// 2 MiB of '<' is 12 MiB on the wire.
func TestResponseBudgetCountsEscapes(t *testing.T) {
	srv := NewHandler(HandlerConfig{Resolver: &Resolver{Store: bigEvents(2, 1<<20, "<")}, Limits: Limits{MaxResponseBytes: 8 << 20}})
	_, body := post(srv, context.Background(), `{ auditEvents { edges { node { auditPayload } } } }`)
	if !strings.Contains(body, `"code":"RESPONSE_TOO_LARGE"`) || len(body) > 1000 {
		t.Fatalf("%.300s", body)
	}
}

// blockingChecker holds CheckNow until the request's context ends, as a check of a destination
// that never answers would if the request did not end first.
type blockingChecker struct {
	started chan struct{}
	ended   chan error // the context's error when CheckNow returned
}

func (c blockingChecker) CheckNow(ctx context.Context, _ string) (store.ExportConfiguration, error) {
	close(c.started)
	<-ctx.Done()
	c.ended <- ctx.Err()
	return store.ExportConfiguration{}, ctx.Err()
}

func (blockingChecker) Forget(string) {}
func (blockingChecker) Cancel(string) {}

// tokenStore records the tokens it is asked to create; its other methods are nil.
type tokenStore struct {
	Store
	mu      sync.Mutex
	created []string
}

func (s *tokenStore) Configuration(_ context.Context, id string) (store.ExportConfiguration, error) {
	return store.ExportConfiguration{ID: id}, nil
}

func (s *tokenStore) CreateToken(_ context.Context, name string, _ []store.Permission, _ store.Principal) (string, store.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.created = append(s.created, name)
	return "token", store.Token{Name: name}, nil
}

// When the client goes away the request's context ends: the resolver running sees it, and the
// fields after it are not resolved (mutations run in order, so the token is never created).
func TestClientGoneStopsTheRequest(t *testing.T) {
	checker := blockingChecker{started: make(chan struct{}), ended: make(chan error, 1)}
	st := &tokenStore{}
	srv := NewHandler(HandlerConfig{Resolver: &Resolver{Store: st, Checker: checker}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-checker.started
		cancel() // what net/http does when the connection closes
	}()
	_, body := post(srv, ctx, `mutation { a: verifyExportConfiguration(id: "c1") { id } b: createApiToken(name: "after", permissions: [AUDIT]) }`)
	if err := <-checker.ended; err != context.Canceled {
		t.Fatalf("the resolver's context ended with %v", err)
	}
	if len(st.created) != 0 || !strings.Contains(body, `"code":"REQUEST_CANCELLED"`) {
		t.Fatalf("tokens created: %v; answer %s", st.created, body)
	}

	// The same request left to finish creates the token: the test above can fail.
	st2 := &tokenStore{}
	srv2 := NewHandler(HandlerConfig{Resolver: &Resolver{Store: st2, Checker: instantChecker{}}})
	post(srv2, context.Background(), `mutation { a: verifyExportConfiguration(id: "c1") { id } b: createApiToken(name: "after", permissions: [AUDIT]) }`)
	if len(st2.created) != 1 {
		t.Fatalf("without cancellation the token was not created: %v", st2.created)
	}
}

// instantChecker answers at once.
type instantChecker struct{}

func (instantChecker) CheckNow(_ context.Context, id string) (store.ExportConfiguration, error) {
	return store.ExportConfiguration{ID: id}, nil
}

func (instantChecker) Forget(string) {}
func (instantChecker) Cancel(string) {}
