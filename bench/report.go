// Command report turns the output of the project's benchmarks (scripts/bench.sh) into one report:
// each figure the median of its runs, beside the reference measured in the same run, ending with
// machine-readable ratio lines.
//
//	go run ./bench < bench/raw.txt > bench/REPORT.md
package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

// medians maps "<benchmark>/<unit>" (the benchmark name without its -N suffix) to the median of
// its runs, and counts the runs.
type medians struct {
	values map[string][]float64
	config map[string]string
}

func read(r io.Reader) (*medians, error) {
	m := &medians{values: map[string][]float64{}, config: map[string]string{}}
	br := benchfmt.NewReader(r, "benchmarks")
	for br.Scan() {
		switch rec := br.Result().(type) {
		case *benchfmt.Result:
			base, parts := rec.Name.Parts() // without the -GOMAXPROCS suffix
			name := "Benchmark" + strings.TrimPrefix(string(base), "Benchmark")
			for _, part := range parts {
				if !strings.HasPrefix(string(part), "-") { // the -GOMAXPROCS part
					name += string(part)
				}
			}
			for _, v := range rec.Values {
				m.values[name+"/"+v.Unit] = append(m.values[name+"/"+v.Unit], v.Value)
			}
			for _, c := range rec.Config {
				if c.File {
					m.config[c.Key] = string(c.Value)
				}
			}
		case *benchfmt.SyntaxError:
			fmt.Fprintln(os.Stderr, "report:", rec)
		}
	}
	return m, br.Err()
}

// get is the median of a figure, and its number of runs; ok is false when it was not measured.
func (m *medians) get(bench, unit string) (median float64, runs int, ok bool) {
	v := slices.Clone(m.values[bench+"/"+unit])
	if len(v) == 0 {
		return 0, 0, false
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], len(v), true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, len(v), true
}

func (m *medians) must(bench, unit string) float64 {
	v, _, ok := m.get(bench, unit)
	if !ok {
		fmt.Fprintf(os.Stderr, "report: %s was not measured (%s)\n", bench, unit)
		os.Exit(1)
	}
	return v
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func main() {
	m, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	_, runs, _ := m.get("BenchmarkDecodeAppend", "events/s")
	w := os.Stdout
	fmt.Fprintf(w, "# auditexport benchmark report\n\n")
	fmt.Fprintf(w, "%s, %s/%s, %d CPUs (%s), %s; every figure is the median of %d runs, each beside its reference measured in the same run. Re-run with `make bench`.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), cmp.Or(m.config["go"], runtime.Version()), runs)

	versusDuckDB(w, m)

	appendRef := m.must("BenchmarkBoltBatchedAppend", "events/s")
	decodeAppend := m.must("BenchmarkDecodeAppend", "events/s")
	overHTTP := m.must("BenchmarkIngestHTTP", "events/s")
	fmt.Fprintf(w, "## Ingest\n\n| | events/s | ratio to the reference |\n| --- | ---: | ---: |\n")
	fmt.Fprintf(w, "| raw bbolt batched append of the same records, 1,000 per transaction (reference) | %s | 1.00 |\n", thousands(appendRef))
	fmt.Fprintf(w, "| decode + durable append, 4 writers, group commit | %s | %.2f |\n", thousands(decodeAppend), decodeAppend/appendRef)
	fmt.Fprintf(w, "| HTTP over loopback, 4 clients, 1,000-event NDJSON batches, 202 after fsync | %s | %.2f |\n", thousands(overHTTP), overHTTP/appendRef)
	if service, _, ok := m.get("BenchmarkDecode/service", "events/s"); ok {
		fmt.Fprintf(w, "| JSON decode alone, the service's decoder (a one-pass scanner; fastjson for the events it declines) | %s | |\n", thousands(service))
		for _, c := range []struct{ bench, name string }{{"fastjson", "fastjson alone (validate, parse, serialize again)"}, {"encoding-json", "encoding/json (through its API)"},
			{"goccy-go-json", "goccy/go-json (through encoding/json's API)"}, {"sonic", "bytedance/sonic (through encoding/json's API)"}} {
			if other, _, ok := m.get("BenchmarkDecode/"+c.bench, "events/s"); ok {
				fmt.Fprintf(w, "| JSON decode alone, %s | %s | the service's %.1f× faster |\n", c.name, thousands(other), service/other)
			}
		}
	}

	encodeRef := m.must("BenchmarkPqarrowEncode", "events/s")
	export := m.must("BenchmarkExport", "events/s")
	fmt.Fprintf(w, "\n## Export\n\n| | events/s | ratio to the reference |\n| --- | ---: | ---: |\n")
	fmt.Fprintf(w, "| pqarrow encoding the same events (decoded, appended to Arrow builders, snappy), one core (reference) | %s | 1.00 |\n", thousands(encodeRef))
	fmt.Fprintf(w, "| export: buffer → hour-partitioned snappy Parquet → MinIO, PutObject-only user, 100,000 events per job | %s | %.2f |\n", thousands(export), export/encodeRef)
	if peak, _, ok := m.get("BenchmarkExportMillionPeakHeap", "peak-heap-MiB"); ok {
		growth := m.must("BenchmarkExportMillionPeakHeap", "heap-growth-MiB")
		fmt.Fprintf(w, "\nPeak live heap while exporting 1,000,000 buffered events in one job: **%.0f MiB** (%.0f MiB of it grown during the export, GC lag included; the rest is the buffer's id index).\n", peak, growth)
	}

	pgIngest := m.must("BenchmarkIngestHTTPPostgres", "events/s")
	pgExport := m.must("BenchmarkExportPostgres", "events/s")
	fmt.Fprintf(w, "\n## PostgreSQL (replicas) beside bbolt\n\nThe same benchmarks through the PostgreSQL engine (the test server on loopback: fsync and synchronous commit on), beside bbolt in the same run.\n\n")
	fmt.Fprintf(w, "| | bbolt events/s | PostgreSQL events/s | PostgreSQL / bbolt | goal |\n| --- | ---: | ---: | ---: | ---: |\n")
	fmt.Fprintf(w, "| ingest over HTTP through one replica, 4 clients, 1,000-event batches | %s | %s | %.2f | ≥ 0.50 |\n", thousands(overHTTP), thousands(pgIngest), pgIngest/overHTTP)
	fmt.Fprintf(w, "| export to MinIO, 100,000 events per job | %s | %s | %.2f | ≥ 0.80 |\n", thousands(export), thousands(pgExport), pgExport/export)
	if takeover, n, ok := m.get("BenchmarkLeaseTakeover", "takeover-s"); ok {
		lease := m.must("BenchmarkLeaseTakeover", "lease-s")
		fmt.Fprintf(w, "\nLease takeover after a SIGKILL of the replica holding an export (real binaries, %.0f s lease renewed every third of it): **%.1f s** (median of %d kills).\n", lease, takeover, n)
	}
	if open, _, ok := m.get("BenchmarkOpenWithBufferedEvents", "ms/open"); ok {
		fmt.Fprintf(w, "\nA replica starting on a database buffering 1,000,000 events reads their ids into its index in **%.0f ms**; the index takes **%.1f bytes** per buffered event.\n",
			open, m.must("BenchmarkOpenWithBufferedEvents", "index-bytes/event"))
	}

	if p50, _, ok := m.get("BenchmarkGetAllExportConfigurations", "p50-ms"); ok {
		p99 := m.must("BenchmarkGetAllExportConfigurations", "p99-ms")
		fmt.Fprintf(w, "\n## Control plane\n\n`getAllExportConfigurations` with 1,000 configurations, over loopback HTTP: p50 **%.1f ms**, p99 **%.1f ms**.\n", p50, p99)
	}
	storeAtScale(w, m)
	fmt.Fprintf(w, "\nratio export/encode: %.2f\nratio ingest/append: %.2f\n", export/encodeRef, decodeAppend/appendRef)
	fmt.Fprintf(w, "ratio ingest-postgres/bbolt: %.2f\nratio export-postgres/bbolt: %.2f\n", pgIngest/overHTTP, pgExport/export)
	if r, _, ok := m.get("BenchmarkVersusDuckDB", "vs-duckdb-1thread"); ok {
		fmt.Fprintf(w, "ratio end-to-end/duckdb-1thread: %.2f\n", r)
	}
}

// versusDuckDB reports issue 15's comparison: the same NDJSON file made into snappy Parquet by
// DuckDB and, end to end, by auditexport, each run measuring both.
func versusDuckDB(w io.Writer, m *medians) {
	const bench = "BenchmarkVersusDuckDB"
	vs, runs, ok := m.get(bench, "vs-duckdb-1thread")
	if !ok {
		return
	}
	get := func(unit string) float64 { return m.must(bench, unit) }
	events := 1e6
	fmt.Fprintf(w, "## NDJSON in, Parquet in the bucket, beside DuckDB\n\n")
	fmt.Fprintf(w, "The same file of 1,000,000 events (Immuta's envelope, %.0f bytes of NDJSON each, one hour of event time), DuckDB and auditexport measured one after the other in each of %d runs; medians, the ratio being the median of each run's own.\n\n", get("ndjson-bytes/event"), runs)
	fmt.Fprintf(w, "| | seconds | events/s | goal |\n| --- | ---: | ---: | --- |\n")
	for _, d := range []struct{ unit, name string }{{"duckdb-1thread-s", "one thread"}, {"duckdb-2threads-s", "two threads"}} {
		s := get(d.unit)
		fmt.Fprintf(w, "| DuckDB 1.5, %s: `COPY (SELECT * FROM read_ndjson(file)) TO file (FORMAT parquet, COMPRESSION snappy)` | %.2f | %s | |\n", d.name, s, thousands(events/s))
	}
	e2e := get("end-to-end-s")
	fmt.Fprintf(w, "| **auditexport end to end**: the real binary (bbolt) fed by another process over 4 keep-alive connections in 1,000-event NDJSON batches (each 202 after fsync), exporting while events arrive (`runExportNow` again and again) to MinIO as a PutObject-only user; from the first byte sent to the last object in the bucket, every event then checked to be there once | %.2f | %s | ≥ 1.0× DuckDB's one thread: **%.2f×** |\n", e2e, thousands(events/e2e), vs)
	fmt.Fprintf(w, "| ingest over HTTP alone, from another process, same batches, 202 after fsync | | %s | ≥ 300,000 |\n", thousands(get("ingest-events/s")))
	fmt.Fprintf(w, "| export alone: the 1,000,000 buffered events → MinIO in one `runExportNow`, from another process | | %s | ≥ 500,000 |\n", thousands(get("export-events/s")))
	fmt.Fprintf(w, "\nEnd to end, the server used %.2f s of CPU in user mode and %.2f s in the kernel, and the machine %.2f of its cores (ingest alone %.2f, export alone %.2f): the rest waited.",
		get("e2e-server-user-cpu-s"), get("e2e-server-sys-cpu-s"), get("e2e-machine-busy-cores"), get("ingest-machine-busy-cores"), get("export-machine-busy-cores"))
	fmt.Fprintf(w, " The server's peak RSS: %.0f MiB end to end, %.0f MiB exporting the 1,000,000 buffered events.", get("peak-rss-MiB"), get("export-peak-rss-MiB"))
	if peak, _, ok := m.get("BenchmarkExportMillionPeakHeap", "peak-heap-MiB"); ok {
		fmt.Fprintf(w, " Peak live heap exporting 1,000,000 buffered events in one job (in process, sampled every 5 ms): **%.0f MiB** (goal < 128).", peak)
	}
	fmt.Fprintf(w, "\n\n")
}

// storeAtScale reports the store with 1,000 configurations × 100 jobs, and its restart with
// 5,000,000 buffered events.
func storeAtScale(w io.Writer, m *medians) {
	list, _, ok := m.get("BenchmarkListAtScale", "p99-ms")
	if !ok {
		return
	}
	fmt.Fprintf(w, "\n## Store at scale\n\n1,000 configurations that ran 100 exports each, in process (p99 of each run, median of the runs):\n\n")
	fmt.Fprintf(w, "| | p50 ms | p99 ms | goal |\n| --- | ---: | ---: | --- |\n")
	fmt.Fprintf(w, "| list: every configuration, the newest job of each, the buffer's status | %.2f | %.2f | p99 < 10 |\n",
		m.must("BenchmarkListAtScale", "p50-ms"), list)
	fmt.Fprintf(w, "| create a job | %.2f | %.2f | p99 < 5 |\n", m.must("BenchmarkJobAtScale", "create-p50-ms"), m.must("BenchmarkJobAtScale", "create-p99-ms"))
	fmt.Fprintf(w, "| complete a job (cursor, status, pruning past 100) | %.2f | %.2f | p99 < 5 |\n", m.must("BenchmarkJobAtScale", "complete-p50-ms"), m.must("BenchmarkJobAtScale", "complete-p99-ms"))
	none, jobs := m.must("BenchmarkIngestAtScale/none", "p50-ms"), m.must("BenchmarkIngestAtScale/jobs", "p50-ms")
	fmt.Fprintf(w, "| durable 1,000-event append, empty store (reference) | %.2f | %.2f | |\n", none, m.must("BenchmarkIngestAtScale/none", "p99-ms"))
	fmt.Fprintf(w, "| durable 1,000-event append, with the jobs | %.2f | %.2f | ≤ 1.1× the reference: %.2f× |\n", jobs, m.must("BenchmarkIngestAtScale/jobs", "p99-ms"), jobs/none)
	if open, _, ok := m.get("BenchmarkRestart", "open-p50-ms"); ok {
		fmt.Fprintf(w, "\nRestart with 5,000,000 buffered events: ready in **%.0f ms** (goal < 2,000), live heap after start **%.0f MiB** (goal < 128).\n",
			open, m.must("BenchmarkRestart", "heap-after-open-MiB"))
	}
}
