package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/exporter"
	s3dest "github.com/auditexport/auditexport/exporter/destination/s3"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

var soakDuration = flag.Duration("soak", 0, "how long the soak test injects faults (make soak); 0 runs the short version")

// TestSoak runs ingestion and exports under injected faults: the server SIGKILLed and restarted,
// MinIO stopped and started, the PutObject policy revoked and restored. At the end every
// acknowledged event must be in every healthy destination exactly once, and the destination with
// wrong credentials must show its error.
func TestSoak(t *testing.T) {
	// The short version (make test) paces its clients harder than make soak does.
	duration, pause := 20*time.Second, 100*time.Millisecond
	if *soakDuration > 0 {
		duration, pause = *soakDuration, 20*time.Millisecond
	}
	minio := s3test.StartPrivate(t)
	serviceKey, serviceSecret := minio.NewUser(t, s3test.PutOnlyPolicy(minio.Bucket))
	proxy := minio.NewSTSProxy(t, 0)
	dataDir := t.TempDir()
	opts := testserver.Options{DataDir: dataDir,
		Env: []string{"AWS_ACCESS_KEY_ID=" + serviceKey, "AWS_SECRET_ACCESS_KEY=" + serviceSecret,
			"AWS_ENDPOINT_URL_STS=" + proxy.URL, "AWS_MAX_ATTEMPTS=2"},
		// Exported events leave the buffer after a second, so a long soak stays within its limits
		// and exercises the trimming too.
		Args: []string{"--export-retry-min", "200ms", "--export-retry-max", "2s", "--check-retry-min", "500ms",
			"--check-retry-max", "2s", "--shutdown-timeout", "3s", "--export-max-file-bytes", "500000",
			"--buffer-min-retention", "1s", "--buffer-trim-interval", "1s"}}
	var current atomic.Pointer[testserver.Server]
	current.Store(testserver.Start(t, opts))
	srv := current.Load()

	destinations := map[string]map[string]any{
		"putonly": {"interval": "EVERY_24_HOURS", "bucket": minio.Bucket, "path": "soak/putonly", "region": "us-east-1",
			"endpoint": minio.Endpoint, "accessKeyId": minio.PutOnlyAccessKey, "secretAccessKey": minio.PutOnlySecret, "name": "putonly"},
		"broken": {"interval": "EVERY_24_HOURS", "bucket": minio.Bucket, "path": "soak/broken", "region": "us-east-1",
			"endpoint": minio.Endpoint, "accessKeyId": minio.PutOnlyAccessKey, "secretAccessKey": "not-the-secret-at-all", "name": "broken"},
	}
	ids := map[string]string{}
	for name, d := range destinations {
		ids[name] = srv.CreateConfiguration(d)
	}
	ids["role"] = srv.CreateConfiguration(map[string]any{"interval": "EVERY_24_HOURS", "bucket": minio.Bucket, "path": "soak/role",
		"region": "us-east-1", "endpoint": minio.Endpoint, "roleArn": "arn:aws:iam::123456789012:role/soak", "name": "role"})
	healthy := []string{"putonly", "role"}

	ctx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	var acked sync.Map // event index -> true
	var ackedCount, nextBatch atomic.Int64
	const batchSize = 200
	for range 3 { // ingest clients: each batch is retried until acknowledged
		load.Go(func() {
			for ctx.Err() == nil {
				n := int(nextBatch.Add(1) - 1)
				body := eventtest.NDJSON(n*batchSize, batchSize, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).Add(time.Duration(n)*time.Minute), time.Second)
				for !postBatch(current.Load(), body) {
					if ctx.Err() != nil {
						return // never acknowledged: not counted
					}
					time.Sleep(100 * time.Millisecond)
				}
				for i := range batchSize {
					acked.Store(n*batchSize+i, true)
				}
				ackedCount.Add(batchSize)
				time.Sleep(pause)
			}
		})
	}
	load.Go(func() { // the schedule, compressed: exports asked for every second
		for ctx.Err() == nil {
			for _, name := range []string{"putonly", "role", "broken"} {
				startExport(current.Load(), ids[name])
			}
			time.Sleep(time.Second)
		}
	})

	faults := map[string]int{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	policyUser := minio.PutOnlyAccessKey
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		switch rng.IntN(3) {
		case 0:
			current.Load().Kill()
			current.Store(testserver.Start(t, opts))
			faults["server SIGKILLed and restarted"]++
		case 1:
			minio.Stop()
			time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
			minio.Start()
			faults["MinIO stopped and started"]++
		case 2:
			minio.DetachPolicy(t, policyUser)
			time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
			minio.MC(t, "admin", "policy", "attach", "private", "p-"+policyUser, "--user", policyUser)
			faults["PutObject policy revoked and restored"]++
		}
	}
	stopLoad()
	load.Wait()

	// Faults over: every healthy destination must catch up, each event exactly once.
	srv = current.Load()
	settle := time.Now().Add(2 * time.Minute)
	for _, name := range healthy {
		for {
			var out struct {
				GetExportConfiguration struct {
					PendingEvents int
					LastExport    *struct{ Status string }
				}
			}
			startExport(srv, ids[name])
			srv.MustGraphQL(srv.AdminToken, `query($id: ID!) { getExportConfiguration(id: $id) { pendingEvents lastExport { status } } }`, map[string]any{"id": ids[name]}, &out)
			g := out.GetExportConfiguration
			if g.PendingEvents == 0 && g.LastExport != nil && g.LastExport.Status == "SUCCEEDED" {
				break
			}
			if time.Now().After(settle) {
				t.Fatalf("%s did not catch up: %+v\n%s", name, g, grepLines(srv.Logs(), "export attempt failed"))
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	var report []string
	report = append(report, fmt.Sprintf("events acknowledged: %d", ackedCount.Load()))
	index := map[string]int{} // event id -> its number
	for i := range int(nextBatch.Load()) * batchSize {
		index[eventtest.ID(i).String()] = i
	}
	var digestKey struct{ DigestPublicKey string }
	srv.MustGraphQL(srv.AdminToken, `{ digestPublicKey }`, nil, &digestKey)
	publicKey, err := parsePublicKey([]byte(digestKey.DigestPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range healthy {
		// The digests survived the faults too: signed, chained, every object as recorded.
		digests, err := exporter.VerifyDigests(context.Background(), s3dest.NewReader(minio.Admin(), minio.Bucket), "soak/"+name, publicKey)
		if err != nil || !digests.OK() || digests.Digests == 0 {
			t.Errorf("%s: digests %+v %v", name, digests, err)
		}
		report = append(report, fmt.Sprintf("digests of %s: %d verified, %d objects, %d problems", name, digests.Digests, digests.Objects, len(digests.Problems)))
		counts := map[int]int{}
		delivered := 0
		for id, n := range exporttest.CountIDs(t, minio.Server, minio.Bucket, "soak/"+name, ids[name]) {
			if i, ok := index[id]; ok {
				counts[i] += n
			}
			delivered += n
		}
		duplicates, lost := 0, 0
		for i, n := range counts {
			if n > 1 {
				duplicates += n - 1
				t.Errorf("%s: event %d delivered %d times", name, i, n)
			}
		}
		acked.Range(func(k, _ any) bool {
			if counts[k.(int)] == 0 {
				lost++
			}
			return true
		})
		if lost > 0 {
			t.Errorf("%s: %d acknowledged events were never delivered", name, lost)
		}
		report = append(report, fmt.Sprintf("delivered to %s: %d (duplicates %d, lost %d)", name, delivered, duplicates, lost))
	}
	var broken struct {
		GetExportConfiguration struct{ ConnectionStatus string }
	}
	srv.MustGraphQL(srv.AdminToken, `query($id: ID!) { getExportConfiguration(id: $id) { connectionStatus } }`, map[string]any{"id": ids["broken"]}, &broken)
	status := broken.GetExportConfiguration.ConnectionStatus
	if !strings.HasPrefix(status, "Error ") || !strings.Contains(status, "SignatureDoesNotMatch") {
		t.Errorf("the broken destination shows %q", status)
	}
	report = append(report, "broken destination: "+status)
	total := 0
	for kind, n := range faults {
		report = append(report, fmt.Sprintf("faults injected: %s ×%d", kind, n))
		total += n
	}
	report = append(report, fmt.Sprintf("faults injected in all: %d over %s", total, duration))
	if total == 0 || ackedCount.Load() == 0 {
		t.Fatal("no fault or no acknowledged event: the soak proved nothing")
	}
	t.Log("soak:\n  " + strings.Join(report, "\n  "))
	if *soakDuration > 0 {
		fmt.Println("soak:\n  " + strings.Join(report, "\n  "))
	}
}

// postBatch sends one NDJSON batch and reports whether it was acknowledged (202).
func postBatch(s *testserver.Server, body []byte) bool {
	req, err := http.NewRequest(http.MethodPost, s.URL+"/api/audit/events", bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusAccepted
}
