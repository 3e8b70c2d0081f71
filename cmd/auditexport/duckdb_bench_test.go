package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/duckdbtest"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// The comparison of issue 15: the same NDJSON file turned into snappy Parquet by DuckDB in one
// statement, and by auditexport from the first byte sent to the last object in the bucket.
const (
	duckEvents  = 1_000_000
	duckBatch   = 1_000 // events per request
	duckClients = 4     // keep-alive connections sending at once
)

// BenchmarkVersusDuckDB measures, in each run and on the same file of 1,000,000 events (Immuta's
// envelope, eventtest.Sample, one hour of event time):
//
//   - DuckDB with one thread, then two: COPY (SELECT * FROM read_ndjson(file)) TO a local file
//     (FORMAT parquet, COMPRESSION snappy), timed inside its process;
//   - auditexport end to end: the real binary (bbolt), fed by this process over 4 keep-alive
//     connections in 1,000-event NDJSON batches (each 202 after fsync) while runExportNow is
//     called again and again, exporting to MinIO as a PutObject-only user; timed from the first
//     byte sent to the end of the export that began after the last 202, whose objects are then
//     in the bucket. Every event of the file is then checked to be in the bucket exactly once;
//   - the same two parts apart, on a fresh server: ingest over HTTP alone, then one export of the
//     whole buffer, with the server's peak RSS during it.
//
// The ratio vs-duckdb-1thread is DuckDB's one-thread time over auditexport's end to end: above
// 1.0 auditexport is faster.
func BenchmarkVersusDuckDB(b *testing.B) {
	s3 := s3test.Require(b)
	db := duckdbtest.Require(b)
	dir := b.TempDir()
	file := filepath.Join(dir, "events.ndjson")
	events := writeEventsFile(b, file)
	runtime.GC() // the file's making is over: a server in this process starts from a small heap
	var duck1, duck2, e2e, ingest, export time.Duration
	var rss, exportRSS float64
	var serverCPU, machineCPU, ingestMachine, exportMachine cpuTimes
	for b.Loop() {
		duck1 += duckCopy(b, db, file, dir, 1)
		duck2 += duckCopy(b, db, file, dir, 2)

		srv := startThroughputServer(b)
		bucket := s3.NewBucket(b)
		id := srv.createConfiguration(b, s3, bucket)
		stopProfiles := startProfiles(b, "end-to-end")
		server, machine := processCPU(b, srv.pid), machineBusy(b)
		e2e += srv.endToEnd(b, id, events)
		serverCPU = serverCPU.plus(processCPU(b, srv.pid).minus(server))
		machineCPU = machineCPU.plus(machineBusy(b).minus(machine))
		stopProfiles()
		rss += srv.peakRSS(b)
		srv.stop()
		checkExactlyOnce(b, db, s3, bucket, file, dir)

		srv = startThroughputServer(b)
		bucket = s3.NewBucket(b)
		id = srv.createConfiguration(b, s3, bucket)
		stopProfiles = startProfiles(b, "ingest")
		start, machine := time.Now(), machineBusy(b)
		srv.send(b, events)
		ingest += time.Since(start)
		ingestMachine = ingestMachine.plus(machineBusy(b).minus(machine))
		stopProfiles()
		srv.resetPeakRSS(b)
		stopProfiles = startProfiles(b, "export")
		start, machine = time.Now(), machineBusy(b)
		job := srv.runExportNow(b, id)
		export += time.Since(start)
		exportMachine = exportMachine.plus(machineBusy(b).minus(machine))
		stopProfiles()
		exportRSS += srv.peakRSS(b)
		srv.stop()
		if job.EventCount < duckEvents {
			b.Fatalf("the export of the buffer holds %d events, want %d and the service's own", job.EventCount, duckEvents)
		}
		s3.EmptyBucket(b, bucket)
	}
	n := float64(b.N)
	b.ReportMetric(duck1.Seconds()/n, "duckdb-1thread-s")
	b.ReportMetric(duck2.Seconds()/n, "duckdb-2threads-s")
	b.ReportMetric(e2e.Seconds()/n, "end-to-end-s")
	b.ReportMetric(duck1.Seconds()/e2e.Seconds(), "vs-duckdb-1thread")
	b.ReportMetric(serverCPU.user/n, "e2e-server-user-cpu-s")
	b.ReportMetric(serverCPU.system/n, "e2e-server-sys-cpu-s")
	b.ReportMetric(machineCPU.total()/e2e.Seconds(), "e2e-machine-busy-cores")
	b.ReportMetric(ingestMachine.total()/ingest.Seconds(), "ingest-machine-busy-cores")
	b.ReportMetric(exportMachine.total()/export.Seconds(), "export-machine-busy-cores")
	b.ReportMetric(n*duckEvents/ingest.Seconds(), "ingest-events/s")
	b.ReportMetric(n*duckEvents/export.Seconds(), "export-events/s")
	b.ReportMetric(rss/n, "peak-rss-MiB")
	b.ReportMetric(exportRSS/n, "export-peak-rss-MiB")
	b.ReportMetric(float64(events.size)/duckEvents, "ndjson-bytes/event")
	b.ReportMetric(0, "ns/op") // each run is one comparison: its parts are reported above
}

// writeEventsFile writes duckEvents sample events to path as NDJSON, their event times spread
// over one hour, and returns the file cut into duckBatch-event request bodies. The bodies are
// read from the file as they are sent: held in memory, they would make this process's heap
// large, and with it, in -duckdb.inprocess, the server's garbage collection rare.
func writeEventsFile(b *testing.B, path string) *eventsFile {
	start := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	step := time.Hour / duckEvents
	parts := make([][]byte, 2)
	var wg sync.WaitGroup
	for p := range parts { // two halves at once: json.Marshal of a million maps takes seconds
		wg.Go(func() {
			first := p * duckEvents / len(parts)
			n := duckEvents / len(parts)
			parts[p] = eventtest.NDJSON(first, n, start.Add(time.Duration(first)*step), step)
		})
	}
	wg.Wait()
	data := bytes.Join(parts, nil)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	f := &eventsFile{path: path, size: len(data)}
	for at := 0; at < len(data); {
		end := at
		for range duckBatch {
			end += bytes.IndexByte(data[end:], '\n') + 1
		}
		f.bodies = append(f.bodies, [2]int64{int64(at), int64(end - at)})
		at = end
	}
	return f
}

// eventsFile is the NDJSON file and where each request body lies in it (offset, length).
type eventsFile struct {
	path   string
	size   int
	bodies [][2]int64
}

// duckCopy is DuckDB's time to turn the file into one snappy Parquet file with threads threads.
func duckCopy(b *testing.B, db *duckdbtest.DB, file, dir string, threads int) time.Duration {
	out := filepath.Join(dir, "duckdb.parquet")
	defer os.Remove(out)
	times := db.Time(b, fmt.Sprintf("SET threads = %d", threads),
		fmt.Sprintf("COPY (SELECT * FROM read_ndjson('%s')) TO '%s' (FORMAT parquet, COMPRESSION snappy)", file, out))
	return times[1]
}

// checkExactlyOnce reads the bucket's Parquet files back with DuckDB: every event of the file
// once, and no event twice (the service's own audit events are exported too).
func checkExactlyOnce(b *testing.B, db *duckdbtest.DB, s3 *s3test.Server, bucket, file, dir string) {
	copied := filepath.Join(dir, "bucket")
	defer os.RemoveAll(copied)
	exporttest.Download(b, s3, bucket, "bench", copied)
	rows := db.Query(b, fmt.Sprintf(`SELECT count(*) AS objects_rows, count(DISTINCT id) AS ids,
		count(*) FILTER (WHERE id IN (SELECT CAST(id AS VARCHAR) FROM read_ndjson('%s', columns = {id: 'VARCHAR'}))) AS sent
		FROM read_parquet('%s/**/*.parquet')`, file, copied))[0][0]
	count := func(k string) int64 {
		v, _ := strconv.ParseInt(fmt.Sprint(rows[k]), 10, 64)
		return v
	}
	if count("sent") != duckEvents || count("ids") != count("objects_rows") {
		b.Fatalf("in the bucket: %d rows, %d distinct ids, %d of the %d events sent", count("objects_rows"), count("ids"), count("sent"), duckEvents)
	}
	s3.EmptyBucket(b, bucket)
}

// throughputServer is the server under test: the real binary, or (-duckdb.inprocess) server.Run
// in this process.
type throughputServer struct {
	url, token string
	pid        int
	stop       func()
}

func startThroughputServer(b *testing.B) *throughputServer {
	if *duckInProcess || *duckProfile != "" {
		return startInProcess(b)
	}
	s := testserver.Start(b, testserver.Options{})
	return &throughputServer{url: s.URL, token: s.AdminToken, pid: s.Pid(), stop: s.Stop}
}

func (s *throughputServer) createConfiguration(b *testing.B, s3 *s3test.Server, bucket string) string {
	key, secret := s3.NewUser(b, s3test.PutOnlyPolicy(bucket))
	var out struct{ CreateS3AccessKeyExportConfiguration struct{ ID string } }
	s.graphQL(b, `mutation($d: S3AccessKeyExportConfigurationInput!) { createS3AccessKeyExportConfiguration(data: $d) { id } }`,
		map[string]any{"d": map[string]any{"interval": "EVERY_24_HOURS", "bucket": bucket, "path": "bench", "region": "us-east-1",
			"accessKeyId": key, "secretAccessKey": secret, "endpoint": s3.Endpoint}}, &out)
	return out.CreateS3AccessKeyExportConfiguration.ID
}

type benchJob struct {
	ID            string
	Status        string
	EventCount    int64
	FailureReason *string
}

// runExportNow exports what is pending and waits for the job; it must succeed.
func (s *throughputServer) runExportNow(b *testing.B, id string) benchJob {
	var out struct{ RunExportNow benchJob }
	s.graphQL(b, `mutation($id: ID!) { runExportNow(id: $id) { id status eventCount failureReason } }`, map[string]any{"id": id}, &out)
	if out.RunExportNow.Status != "SUCCEEDED" {
		b.Errorf("export job: %+v", out.RunExportNow)
	}
	return out.RunExportNow
}

// endToEnd sends the batches while exporting again and again, and returns the time from the
// first byte sent to the end of the first export that began after the last batch was accepted.
func (s *throughputServer) endToEnd(b *testing.B, id string, events *eventsFile) time.Duration {
	start := time.Now()
	var sent atomic.Bool
	type total struct{ events, jobs int64 }
	exported := make(chan total)
	go func() {
		var t total
		for !b.Failed() {
			last := sent.Load()
			t.events += s.runExportNow(b, id).EventCount
			t.jobs++
			if last {
				break
			}
		}
		exported <- t
	}()
	s.send(b, events)
	sent.Store(true)
	ingested := time.Since(start)
	t := <-exported
	took := time.Since(start)
	b.Logf("end to end: %d events exported by %d jobs in %v, the last accepted after %v", t.events, t.jobs, took, ingested)
	if t.events < duckEvents {
		b.Fatalf("exported %d events, want %d and the service's own", t.events, duckEvents)
	}
	return took
}

// send posts the file's bodies over duckClients keep-alive connections; each must be accepted
// whole.
func (s *throughputServer) send(b *testing.B, events *eventsFile) {
	file, err := os.Open(events.path)
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	transport := &http.Transport{MaxIdleConnsPerHost: duckClients, MaxConnsPerHost: duckClients, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	work := make(chan [2]int64)
	var wg sync.WaitGroup
	for range duckClients {
		wg.Go(func() {
			for body := range work {
				req, _ := http.NewRequest(http.MethodPost, s.url+"/api/audit/events", io.NewSectionReader(file, body[0], body[1]))
				req.ContentLength = body[1]
				req.Header.Set("Content-Type", "application/x-ndjson")
				req.Header.Set("Authorization", "Bearer "+s.token)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					continue
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted || !bytes.Contains(answer, []byte(`"accepted":1000,`)) {
					b.Errorf("ingest: %d %s", resp.StatusCode, answer)
				}
			}
		})
	}
	for _, body := range events.bodies {
		work <- body
	}
	close(work)
	wg.Wait()
}

func (s *throughputServer) graphQL(b *testing.B, query string, vars map[string]any, out any) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/audit/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var answer struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.Unmarshal(raw, &answer); err != nil || resp.StatusCode != http.StatusOK || len(answer.Errors) > 0 {
		b.Fatalf("graphql: %d %s", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(answer.Data, out); err != nil {
		b.Fatal(err)
	}
}

// peakRSS is the server's peak resident set since it started or since resetPeakRSS, in MiB.
func (s *throughputServer) peakRSS(b *testing.B) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kib / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// cpuTimes are CPU seconds in user and kernel mode.
type cpuTimes struct{ user, system float64 }

func (c cpuTimes) plus(o cpuTimes) cpuTimes  { return cpuTimes{c.user + o.user, c.system + o.system} }
func (c cpuTimes) minus(o cpuTimes) cpuTimes { return cpuTimes{c.user - o.user, c.system - o.system} }
func (c cpuTimes) total() float64            { return c.user + c.system }

// clockTicks is Linux's USER_HZ, the unit of /proc's CPU times.
const clockTicks = 100

// processCPU is the CPU time process pid has used (with its threads), from /proc/PID/stat.
func processCPU(b *testing.B, pid int) cpuTimes {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command, which is in parentheses and may hold spaces: utime and stime
	// are the 14th and 15th of the line, the 12th and 13th after it.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return cpuTimes{ticksToSeconds(b, fields[11]), ticksToSeconds(b, fields[12])}
}

// machineBusy is the CPU time every process and the kernel have used, from /proc/stat.
func machineBusy(b *testing.B) cpuTimes {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	var t cpuTimes
	for _, i := range []int{1, 2} {
		t.user += ticksToSeconds(b, f[i])
	}
	for _, i := range []int{3, 6, 7} {
		t.system += ticksToSeconds(b, f[i])
	}
	return t
}

func ticksToSeconds(b *testing.B, field string) float64 {
	ticks, err := strconv.ParseFloat(field, 64)
	if err != nil {
		b.Fatalf("/proc: %q is not a count of clock ticks", field)
	}
	return ticks / clockTicks
}

// resetPeakRSS starts the peak resident set over from the current one (Linux's clear_refs).
func (s *throughputServer) resetPeakRSS(b *testing.B) {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid), []byte("5"), 0); err != nil {
		b.Fatal(err)
	}
}
