package main

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/pgtest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// allReady waits until every replica's /readyz answers want.
func allReady(t *testing.T, servers []*testserver.Server, want int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "/readyz to answer "+http.StatusText(want)+" on every replica", func() bool {
		for _, s := range servers {
			if readyStatus(s) != want {
				return false
			}
		}
		return true
	})
}

// TestReplicasRideOutADatabaseOutage stops PostgreSQL for 10 s while two replicas ingest and
// export: meanwhile /readyz and ingestion answer 503 and nothing is acknowledged; once the
// database is back both serve again without a restart, and every acknowledged event is exported
// exactly once.
func TestReplicasRideOutADatabaseOutage(t *testing.T) {
	srv := s3test.Require(t)
	pg := pgtest.NewServer(t)
	url := pg.NewDatabase(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	c := newCluster(t, url, 2, "--export-max-file-bytes", "100000", "--export-lease-ttl", "3s",
		"--export-retry-min", "200ms", "--export-retry-max", "1s")
	id := c.servers[0].CreateConfiguration(map[string]any{"interval": "EVERY_24_HOURS", "bucket": bucket, "path": "audit",
		"region": "us-east-1", "accessKeyId": key, "secretAccessKey": secret, "endpoint": srv.Endpoint})

	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var load loadClients
	load.run(ctx, c.servers, 3, &wg)
	wg.Go(func() { // exports asked for all along, of either replica
		for i := 0; ctx.Err() == nil; i++ {
			startExport(c.servers[i%2], id)
			time.Sleep(500 * time.Millisecond)
		}
	})
	waitFor(t, 30*time.Second, "batches to be acknowledged", func() bool { return load.acked.Load() >= 20 })

	pg.Stop(t)
	stopped := time.Now()
	allReady(t, c.servers, http.StatusServiceUnavailable, 10*time.Second)
	// Any answer in flight when the server stopped has arrived by now: from here until the
	// database is back, nothing may be acknowledged.
	ackedWhileDown, refusedWhileDown := load.acked.Load(), load.refused.Load()
	time.Sleep(time.Until(stopped.Add(10 * time.Second)))
	if n := load.acked.Load() - ackedWhileDown; n != 0 {
		t.Errorf("%d batches acknowledged while the database was down", n)
	}
	if load.refused.Load() == refusedWhileDown {
		t.Error("no batch was refused with 503 while the database was down")
	}
	pg.Start(t)
	allReady(t, c.servers, http.StatusOK, 30*time.Second)
	ackedAfter := load.acked.Load()
	waitFor(t, 30*time.Second, "ingestion to resume", func() bool { return load.acked.Load() >= ackedAfter+20 })
	stopLoad()
	wg.Wait()
	for _, s := range c.servers {
		if !s.Running() {
			t.Fatalf("a replica exited:\n%s", s.Logs())
		}
	}
	if len(load.other) > 0 {
		t.Errorf("ingestion answered other than 202 or 503: %v", load.other)
	}
	waitCaughtUp(t, c.servers[1], id, 2*time.Minute)
	counts := exporttest.CountIDs(t, srv, bucket, "audit", id)
	acked := load.ackedIDs()
	for _, e := range acked {
		if counts[e] != 1 {
			t.Errorf("acknowledged event %s exported %d times", e, counts[e])
		}
	}
	for e, n := range counts {
		if n > 1 {
			t.Errorf("event %s exported %d times", e, n)
		}
	}
	t.Logf("%d batches acknowledged, %d answers 503, %d events exported", load.acked.Load(), load.refused.Load(), len(counts))
}

// TestReplicasFollowAFailover: the replicas' URL names a primary and its synchronous standby with
// target_session_attrs=read-write. The primary dies mid-ingest and the standby is promoted: the
// replicas find it by themselves, without a restart, and every acknowledged event is on it.
func TestReplicasFollowAFailover(t *testing.T) {
	primary := pgtest.NewServer(t)
	url := primary.NewDatabase(t)
	standby := primary.StartStandby(t)
	c := newCluster(t, pgtest.FailoverURL(t, url, primary, standby), 2)

	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var load loadClients
	load.run(ctx, c.servers, 3, &wg)
	waitFor(t, 30*time.Second, "batches to be acknowledged", func() bool { return load.acked.Load() >= 20 })
	primary.Crash(t)
	allReady(t, c.servers, http.StatusServiceUnavailable, 10*time.Second)
	standby.Promote(t)
	allReady(t, c.servers, http.StatusOK, 30*time.Second)
	ackedAtPromotion := load.acked.Load()
	waitFor(t, 30*time.Second, "ingestion to resume on the promoted standby", func() bool { return load.acked.Load() >= ackedAtPromotion+20 })
	stopLoad()
	wg.Wait()
	if len(load.other) > 0 {
		t.Errorf("ingestion answered other than 202 or 503: %v", load.other)
	}

	rows, err := pgtest.Connect(t, standby.SameDatabase(t, url)).Query(context.Background(), "SELECT id::text FROM event_chunks, unnest(ids) AS id") // the ids of the stored events, committed with them
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		stored[id] = true
	}
	rows.Close()
	lost := 0
	for _, e := range load.ackedIDs() {
		if !stored[e] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged events are not on the promoted standby", lost)
	}
	t.Logf("%d batches acknowledged (%d before the promotion), %d answers 503, %d events stored", load.acked.Load(), ackedAtPromotion, load.refused.Load(), len(stored))
}

// waitCaughtUp asks s for exports of the configuration until nothing is pending and its last
// export succeeded.
func waitCaughtUp(t *testing.T, s *testserver.Server, id string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "the export to catch up", func() bool {
		var out struct {
			GetExportConfiguration struct {
				PendingEvents int
				LastExport    *struct{ Status string }
			}
		}
		startExport(s, id)
		s.MustGraphQL(s.AdminToken, `query($id: ID!) { getExportConfiguration(id: $id) { pendingEvents lastExport { status } } }`, map[string]any{"id": id}, &out)
		g := out.GetExportConfiguration
		return g.PendingEvents == 0 && g.LastExport != nil && g.LastExport.Status == "SUCCEEDED"
	})
}
