package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/testserver"
)

// batchOutcome is what a client learned about one batch.
type batchOutcome int

const (
	acked   batchOutcome = iota // 202: must be stored, whole
	refused                     // 4xx/5xx: must not be stored at all
	unknown                     // the connection broke: stored whole or not at all
)

// TestIngestSurvivesSIGKILL sends batches from several clients, kills the server with SIGKILL
// at a random moment, restarts it, and checks every acknowledged event is there, nothing of a
// refused batch is, and no batch is half stored. Three rounds.
func TestIngestSurvivesSIGKILL(t *testing.T) {
	dataDir := t.TempDir()
	const clients, batchSize = 4, 100
	outcomes := map[int]batchOutcome{} // batch number -> outcome
	var mu sync.Mutex
	nextBatch := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	for round := range 3 {
		server := testserver.Start(t, testserver.Options{DataDir: dataDir})
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for ctx.Err() == nil {
					mu.Lock()
					n := nextBatch
					nextBatch++
					mu.Unlock()
					outcome := sendBatch(ctx, server, n, batchSize)
					mu.Lock()
					outcomes[n] = outcome
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(150+rng.IntN(500)) * time.Millisecond)
		server.Kill()
		stop()
		wg.Wait()
		t.Logf("round %d: killed after %d batches", round, nextBatch)
	}

	server := testserver.Start(t, testserver.Options{DataDir: dataDir})
	stored := storedEventIDs(t, server)
	var ackedBatches, ackedEvents int
	for n, outcome := range outcomes {
		present := 0
		for i := range batchSize {
			if stored[eventtest.ID(n*batchSize+i).String()] {
				present++
			}
		}
		switch {
		case outcome == acked && present != batchSize:
			t.Errorf("batch %d was acknowledged but %d of its %d events are stored", n, present, batchSize)
		case outcome == refused && present != 0:
			t.Errorf("batch %d was refused but %d of its events are stored", n, present)
		case outcome == unknown && present != 0 && present != batchSize:
			t.Errorf("batch %d is half stored: %d of %d events", n, present, batchSize)
		}
		if outcome == acked {
			ackedBatches++
			ackedEvents += batchSize
		}
	}
	if ackedBatches == 0 {
		t.Fatal("no batch was acknowledged: the test proved nothing")
	}
	t.Logf("%d batches sent, %d acknowledged (%d events), %d events stored", len(outcomes), ackedBatches, ackedEvents, len(stored))
}

// sendBatch posts batch n: its events are numbered n*size..; every seventh batch carries a bad
// line and must be refused.
func sendBatch(ctx context.Context, server *testserver.Server, n, size int) batchOutcome {
	body := eventtest.NDJSON(n*size, size, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), time.Second)
	if n%7 == 3 {
		body = append(body, []byte(`{"action":"no timestamp"}`+"\n")...)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server.URL+"/api/audit/events", bytes.NewReader(body))
	if err != nil {
		return unknown
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+server.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return unknown
	}
	resp.Body.Close()
	switch {
	case n%7 == 3: // must be refused whatever the server said: the check finds it if stored
		return refused
	case resp.StatusCode == http.StatusAccepted:
		return acked
	case resp.StatusCode >= 400:
		return refused
	}
	return unknown
}

// storedEventIDs reads every buffered event id through the API, failing on duplicates.
func storedEventIDs(t *testing.T, server *testserver.Server) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	var after *string
	for {
		var page struct {
			AuditEvents struct {
				Edges    []struct{ Node struct{ ID string } }
				PageInfo struct {
					EndCursor   *string
					HasNextPage bool
				}
			}
		}
		server.MustGraphQL(server.AdminToken, `query($after: String) { auditEvents(first: 1000, after: $after) { edges { node { id } } pageInfo { endCursor hasNextPage } } }`,
			map[string]any{"after": after}, &page)
		for _, e := range page.AuditEvents.Edges {
			if ids[e.Node.ID] {
				t.Errorf("event %s is stored twice", e.Node.ID)
			}
			ids[e.Node.ID] = true
		}
		if !page.AuditEvents.PageInfo.HasNextPage {
			return ids
		}
		after = page.AuditEvents.PageInfo.EndCursor
	}
}
