package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/exporter"
	s3dest "github.com/auditexport/auditexport/exporter/destination/s3"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/pgtest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
	"github.com/auditexport/auditexport/store"
)

// cluster is replicas of the real binary sharing one PostgreSQL database, as an operator runs
// them: one master key and one admin token for all, each its own data directory.
type cluster struct {
	t       testing.TB
	url     string
	db      *pgx.Conn // for reading what the API does not show
	env     []string
	args    []string
	servers []*testserver.Server
}

func newCluster(t testing.TB, url string, n int, args ...string) *cluster {
	t.Helper()
	key := make([]byte, store.MasterKeySize)
	rand.Read(key)
	c := &cluster{t: t, url: url, db: pgtest.Connect(t, url), args: args, env: []string{
		"AUDITEXPORT_DATABASE_URL=" + url,
		"AUDITEXPORT_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key),
		"AUDITEXPORT_ADMIN_TOKEN=replicas-admin-token-" + rand.Text(),
	}}
	for range n {
		c.servers = append(c.servers, c.start())
	}
	return c
}

func (c *cluster) start() *testserver.Server {
	return testserver.Start(c.t, testserver.Options{Env: c.env, Args: c.args})
}

// byPID is the replica with the process id pid, or nil.
func (c *cluster) byPID(pid int) *testserver.Server {
	for _, s := range c.servers {
		if s.Pid() == pid {
			return s
		}
	}
	return nil
}

// dbJob is a job as the database holds it, with the lease the API does not show.
type dbJob struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	From       uint64    `json:"from"`
	To         uint64    `json:"to"`
	Attempts   int       `json:"attempts"`
	Owner      string    `json:"owner"`
	LeaseUntil time.Time `json:"leaseUntil"`
}

// ownerPID is the process id in a lease's owner (host/pid/random).
func (j dbJob) ownerPID() int {
	parts := strings.Split(j.Owner, "/")
	if len(parts) != 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[1])
	return pid
}

// jobsOf reads a configuration's jobs from the database, oldest first.
func (c *cluster) jobsOf(configID string) []dbJob {
	t := c.t
	t.Helper()
	rows, err := c.db.Query(context.Background(), "SELECT record FROM export_jobs WHERE config_id = $1 ORDER BY id", configID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var jobs []dbJob
	for rows.Next() {
		var raw []byte
		var j dbJob
		if err := rows.Scan(&raw); err != nil || json.Unmarshal(raw, &j) != nil {
			t.Fatalf("read job: %v", err)
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// taskKeys reads the object keys a job's tasks recorded, by index.
func (c *cluster) taskKeys(jobID string) map[int]string {
	t := c.t
	t.Helper()
	rows, err := c.db.Query(context.Background(), "SELECT task_index, record->>'key' FROM export_tasks WHERE job_id = $1", jobID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	keys := map[int]string{}
	for rows.Next() {
		var i int
		var key string
		if err := rows.Scan(&i, &key); err != nil {
			t.Fatal(err)
		}
		keys[i] = key
	}
	return keys
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicasShareTheWork: three replicas on one PostgreSQL take batches alike; the replica
// holding an export's lease is SIGKILLed in the middle of its uploads; another takes the job over
// once the lease runs out and finishes it with the same object keys and one digest; every
// acknowledged event is in the bucket exactly once, the digest chain verifies, and the cursor
// moved once.
func TestReplicasShareTheWork(t *testing.T) {
	srv := s3test.Require(t)
	url := pgtest.Require(t).NewDatabase(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	// Small files, so the export is many uploads; a short lease, so the takeover is quick.
	c := newCluster(t, url, 3, "--export-max-file-bytes", "150000", "--export-row-group-bytes", "50000",
		"--export-lease-ttl", "3s", "--export-retry-min", "200ms", "--export-retry-max", "1s")
	id := c.servers[0].CreateConfiguration(map[string]any{"interval": "EVERY_24_HOURS", "bucket": bucket, "path": "audit",
		"region": "us-east-1", "accessKeyId": key, "secretAccessKey": secret, "endpoint": srv.Endpoint})
	before, err := c.storedConfig(id)
	if err != nil {
		t.Fatal(err)
	}

	const events, batch = 90_000, 5000
	start := time.Date(2026, 11, 20, 22, 0, 0, 0, time.UTC)
	for i := 0; i < events; i += batch { // round robin, as a load balancer would
		ingestNDJSON(t, c.servers[(i/batch)%3], eventtest.NDJSON(i, batch, start.Add(time.Duration(i)*100*time.Millisecond), 100*time.Millisecond))
	}
	go startExport(c.servers[1], id)

	// Whichever replica took the lease is killed once it has uploaded a few objects.
	var job dbJob
	waitFor(t, 60*time.Second, "the export to be uploading", func() bool {
		jobs := c.jobsOf(id)
		if len(jobs) == 1 {
			job = jobs[0]
		}
		return job.Status == "RUNNING" && len(c.taskKeys(job.ID)) >= 3
	})
	holder := c.byPID(job.ownerPID())
	if holder == nil {
		t.Fatalf("the lease's owner %q is no replica", job.Owner)
	}
	holder.Kill()
	killedAt := time.Now()
	keysBefore := c.taskKeys(job.ID)
	if jobs := c.jobsOf(id); jobs[0].Status != "RUNNING" {
		t.Fatalf("the job finished before the kill: %+v", jobs[0])
	}

	var done dbJob
	waitFor(t, 90*time.Second, "another replica to finish the job", func() bool {
		done = c.jobsOf(id)[0]
		return done.Status == "SUCCEEDED"
	})
	t.Logf("job %s: %d objects uploaded before the kill; finished %v after it, attempt %d", job.ID, len(keysBefore), time.Since(killedAt).Round(time.Millisecond), done.Attempts)
	if done.Attempts < 2 || done.From != job.From || done.To != job.To {
		t.Fatalf("the finished job %+v is not the killed one %+v taken over", done, job)
	}
	final := c.taskKeys(job.ID)
	for i, k := range keysBefore {
		if final[i] != k {
			t.Errorf("task %d: key %q before the kill, %q after", i, k, final[i])
		}
	}
	if jobs := c.jobsOf(id); len(jobs) != 1 {
		t.Fatalf("%d jobs, want the one: %+v", len(jobs), jobs)
	}
	after, err := c.storedConfig(id)
	if err != nil || after.Cursor != job.To || before.Cursor != job.From {
		t.Fatalf("cursor %d -> %d (%v), want %d -> %d: it moves once, with the job", before.Cursor, after.Cursor, err, job.From, job.To)
	}

	counts := exporttest.CountIDs(t, srv, bucket, "audit", id)
	for i := range events {
		if n := counts[eventtest.ID(i).String()]; n != 1 {
			t.Fatalf("event %d exported %d times", i, n)
		}
	}
	var digestKey struct{ DigestPublicKey string }
	c.servers[0].MustGraphQL(c.servers[0].AdminToken, `{ digestPublicKey }`, nil, &digestKey)
	publicKey, err := parsePublicKey([]byte(digestKey.DigestPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	report, err := exporter.VerifyDigests(context.Background(), s3dest.NewReader(srv.Admin(), bucket), "audit", publicKey)
	if err != nil || !report.OK() || report.Digests != 1 || report.Objects != len(final) {
		t.Fatalf("digests: %+v %v; want one digest of %d objects", report, err, len(final))
	}
	if after.LastDigest.Key == "" {
		t.Fatal("the configuration records no digest")
	}
}

// storedConfig is a configuration's cursor and digest as the database holds them.
type storedConfig struct {
	Cursor     uint64          `json:"cursor"`
	LastDigest store.DigestRef `json:"lastDigest"`
}

func (c *cluster) storedConfig(id string) (storedConfig, error) {
	var raw []byte
	var sc storedConfig
	err := c.db.QueryRow(context.Background(), "SELECT record FROM export_configurations WHERE id = $1", id).Scan(&raw)
	if err == nil {
		err = json.Unmarshal(raw, &sc)
	}
	return sc, err
}

// loadClients posts batches of batchSize events to the replicas in turn, each batch retried
// until acknowledged, until stop; acked holds the first index of each acknowledged batch.
type loadClients struct {
	acked, refused atomic.Int64 // batches answered 202, and 503
	mu             sync.Mutex
	ackedBatches   []int
	other          []string
}

const loadBatch = 100

func (l *loadClients) run(ctx context.Context, servers []*testserver.Server, clients int, wg *sync.WaitGroup) {
	var next atomic.Int64
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := int(next.Add(1) - 1)
				body := eventtest.NDJSON(n*loadBatch, loadBatch, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).Add(time.Duration(n)*time.Minute), time.Second)
				for try := 0; ; try++ {
					code := postStatus(servers[(n+try)%len(servers)], body)
					if code == http.StatusAccepted {
						l.acked.Add(1)
						l.mu.Lock()
						l.ackedBatches = append(l.ackedBatches, n)
						l.mu.Unlock()
						break
					}
					if code == http.StatusServiceUnavailable {
						l.refused.Add(1)
					} else {
						l.mu.Lock()
						l.other = append(l.other, fmt.Sprint(code))
						l.mu.Unlock()
					}
					if ctx.Err() != nil {
						return // never acknowledged: not counted
					}
					time.Sleep(100 * time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// ackedIDs lists the ids of every acknowledged event.
func (l *loadClients) ackedIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, n := range l.ackedBatches {
		for i := range loadBatch {
			ids = append(ids, eventtest.ID(n*loadBatch+i).String())
		}
	}
	return ids
}

// postStatus sends one NDJSON batch and returns the answer's status (0 when none came).
func postStatus(s *testserver.Server, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, s.URL+"/api/audit/events", strings.NewReader(string(body)))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// readyStatus is /readyz's status.
func readyStatus(s *testserver.Server) int {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.URL + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
