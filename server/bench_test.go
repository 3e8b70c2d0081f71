package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
)

// BenchmarkIngestHTTP posts 1,000-event NDJSON batches from 4 concurrent clients to the events
// route over loopback HTTP; each answer is a 202 after the batch is durable.
func BenchmarkIngestHTTP(b *testing.B) {
	const batch, clients = 1000, 4
	api := newTestAPIWith(b, Config{}, store.BufferConfig{MaxEvents: 1 << 40, MaxBytes: 1 << 50})
	srv := httptest.NewServer(api.handler)
	defer srv.Close()
	bodies := eventtest.NewBodies(batch)
	transport := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: transport}
	work := make(chan []byte, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for body := range work {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+EventsPath, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-ndjson")
				req.Header.Set("Authorization", "Bearer "+adminToken)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	b.ResetTimer()
	for b.Loop() {
		work <- bodies.Next()
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "events/s")
}
