package main

import (
	"net"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/pgtest"
)

// BenchmarkLeaseTakeover is how long after a SIGKILL of the replica holding an export's lease
// another replica takes the job over (its attempt starts), with a 10 s lease renewed every third
// of it: between two thirds of the lease and the lease, plus one scan (1 s). The destination
// accepts connections and never answers, so every attempt holds its job until its replica dies.
func BenchmarkLeaseTakeover(b *testing.B) {
	const ttl = 10 * time.Second
	url := pgtest.Require(b).NewDatabase(b)
	hole := blackhole(b)
	c := newCluster(b, url, 2, "--export-lease-ttl", ttl.String())
	id := c.servers[0].CreateConfiguration(map[string]any{"interval": "EVERY_24_HOURS", "bucket": "audit-bucket", "region": "us-east-1",
		"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "endpoint": "http://" + hole})
	ingestNDJSON(b, c.servers[1], eventtest.NDJSON(0, 10, time.Now(), time.Second))
	go startExport(c.servers[0], id) // it waits for the job, which never ends
	var job dbJob
	running := func() bool {
		jobs := c.jobsOf(id)
		if len(jobs) == 0 {
			return false
		}
		job = jobs[0]
		return job.Status == "RUNNING" && c.byPID(job.ownerPID()) != nil
	}
	waitFor(b, 30*time.Second, "an attempt to hold the job", running)
	var total time.Duration
	kills := 0
	for b.Loop() {
		holder, attempt := c.byPID(job.ownerPID()), job.Attempts
		holder.Kill()
		killed := time.Now()
		waitFor(b, 3*ttl, "another replica to take the job over", func() bool { return running() && job.Attempts > attempt })
		total += time.Since(killed)
		kills++
		for i, s := range c.servers { // a new replica replaces the one killed
			if s == holder {
				c.servers[i] = c.start()
			}
		}
	}
	b.ReportMetric(total.Seconds()/float64(kills), "takeover-s")
	b.ReportMetric(ttl.Seconds(), "lease-s")
}

// blackhole listens on loopback and accepts connections it never answers, until the test ends.
func blackhole(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn)
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
