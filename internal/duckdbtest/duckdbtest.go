// Package duckdbtest runs SQL with DuckDB, one of the engines customers query the exported files
// with, so tests can prove the files read as intended without help. DuckDB runs through its
// Node.js client, pinned and installed by scripts/duckdb.sh; `make test` sets
// AUDITEXPORT_TEST_DUCKDB to its directory.
package duckdbtest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/auditexport/auditexport/internal/testneed"
)

// DB runs statements, each call in a fresh in-memory DuckDB.
type DB struct {
	script string
}

// Require returns a DB, or skips the test when DuckDB is not installed (a failure under CI=true).
func Require(t testing.TB) *DB {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	db := &DB{script: filepath.Join(filepath.Dir(self), "query.cjs")}
	_, nodeErr := exec.LookPath("node")
	if os.Getenv("AUDITEXPORT_TEST_DUCKDB") == "" || nodeErr != nil {
		testneed.Missing(t, "no DuckDB for the tests: run `make test`, or set AUDITEXPORT_TEST_DUCKDB=$(scripts/duckdb.sh install) (needs node and npm)")
	}
	return db
}

// Query runs the statements in order in one session and returns the rows of each, as DuckDB
// renders them in JSON: integers wider than 32 bits and timestamps as strings, NULL as nil.
func (db *DB) Query(t testing.TB, statements ...string) [][]map[string]any {
	t.Helper()
	var results [][]map[string]any
	db.run(t, statements, &results)
	return results
}

// Time runs the statements in order in one session, as Query does, and returns how long each
// took, measured inside the Node.js process (its start and DuckDB's are not counted).
func (db *DB) Time(t testing.TB, statements ...string) []time.Duration {
	t.Helper()
	var millis []float64
	db.run(t, statements, &millis, "--timed")
	times := make([]time.Duration, len(millis))
	for i, ms := range millis {
		times[i] = time.Duration(ms * float64(time.Millisecond))
	}
	return times
}

// run feeds the statements to the script and decodes what it prints into out.
func (db *DB) run(t testing.TB, statements []string, out any, flags ...string) {
	t.Helper()
	input, err := json.Marshal(statements)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", append([]string{db.script}, flags...)...)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	output, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, stderr.Bytes())
	}
	if err := json.Unmarshal(output, out); err != nil {
		t.Fatalf("duckdb output: %v\n%s", err, output)
	}
}
