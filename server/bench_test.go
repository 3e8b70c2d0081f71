package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

// BenchmarkIngestHTTP posts 1,000-event NDJSON batches from 4 concurrent clients to the events
// route over loopback HTTP; each answer is a 202 after the batch is durable.
func BenchmarkIngestHTTP(b *testing.B) {
	benchIngestHTTP(b, newTestAPIWith(b, Config{}, unboundedBuffer))
}

// BenchmarkIngestHTTPPostgres is BenchmarkIngestHTTP through a replica on PostgreSQL (the test
// server on loopback, synchronous commit, fsync on): each 202 after the database's commit.
func BenchmarkIngestHTTPPostgres(b *testing.B) {
	benchIngestHTTP(b, newTestAPIOn(b, Config{}, storetest.NewPostgres(b, store.Config{Buffer: unboundedBuffer})))
}

var unboundedBuffer = store.BufferConfig{MaxEvents: 1 << 40, MaxBytes: 1 << 50}

func benchIngestHTTP(b *testing.B, api *testAPI) {
	const batch, clients = 1000, 4
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

// BenchmarkGetAllExportConfigurations measures the latency of getAllExportConfigurations over
// loopback HTTP with 1,000 configurations stored, as p50 and p99 in milliseconds.
func BenchmarkGetAllExportConfigurations(b *testing.B) {
	api := newTestAPIWith(b, Config{}, store.BufferConfig{})
	for i := range 1000 {
		c := store.ExportConfiguration{Kind: store.KindS3AccessKey, Interval: store.EveryHour, Enabled: true,
			Bucket: "audit-bucket", Path: fmt.Sprintf("tenant=%d", i), Region: "us-east-1", AccessKeyID: "AKIAIOSFODNN7EXAMPLE"}
		if _, err := api.store.CreateConfiguration(b.Context(), c, "YOUR/SECRET/ACCESSKEY", store.Principal{Name: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(api.handler)
	defer srv.Close()
	body := []byte(`{"query":"{ getAllExportConfigurations { id name interval enabled connectionStatus connectionCheckedAt pendingEvents nextExportAt endpointConfiguration { ... on S3AccessKeyEndpointConfiguration { bucket path region accessKeyId endpoint } } } }"}`)
	client := &http.Client{}
	var latencies []time.Duration
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+GraphQLPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminToken)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		latencies = append(latencies, time.Since(start))
		if resp.StatusCode != http.StatusOK || n < 100_000 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
	slices.Sort(latencies)
	quantile := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(quantile(0.50), "p50-ms")
	b.ReportMetric(quantile(0.99), "p99-ms")
}
