#!/usr/bin/env bash
# Runs every benchmark of the project against a MinIO and a PostgreSQL on loopback (make bench
# starts both), BENCHCOUNT times each
# (default 5), and writes bench/raw.txt (go test output) and bench/REPORT.md (the report, also
# printed). Each benchmark gets the run length it needs: the 1,000,000-event export runs once
# per count, and so does the comparison with DuckDB (AUDITEXPORT_TEST_DUCKDB; make bench sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCHCOUNT:-5}
bench() { # bench PACKAGE PATTERN BENCHTIME
  go test -run '^$' -bench "$2" -benchtime "$3" -count "$count" "$1"
}
{
  bench ./event/ 'BenchmarkDecode$' 1s
  bench ./store/bolt/ 'BenchmarkBoltBatchedAppend$|BenchmarkDecodeAppend$' 2s
  bench ./store/bolt/ 'BenchmarkListAtScale$|BenchmarkJobAtScale$|BenchmarkIngestAtScale$' 200x
  bench ./store/bolt/ 'BenchmarkRestart$' 3x
  bench ./server/ 'BenchmarkIngestHTTP$|BenchmarkIngestHTTPPostgres$|BenchmarkGetAllExportConfigurations$' 2s
  bench ./exporter/ 'BenchmarkPqarrowEncode$|BenchmarkExport$|BenchmarkExportPostgres$' 3x
  # Its own process each time: a process holds one store, as the server does (runs in one
  # process kept the previous run's buffer index in the heap measured).
  for _ in $(seq "$count"); do
    go test -run '^$' -bench 'BenchmarkExportMillionPeakHeap$' -benchtime 1x -count 1 ./exporter/
  done
  bench ./store/postgres/ 'BenchmarkOpenWithBufferedEvents$' 3x
  bench ./cmd/auditexport/ 'BenchmarkLeaseTakeover$' 1x
  bench ./cmd/auditexport/ 'BenchmarkVersusDuckDB$' 1x
} | tee bench/raw.txt
go run ./bench < bench/raw.txt > bench/REPORT.md
echo
cat bench/REPORT.md
