package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/testserver"
)

// startRefusal is a server that would not start: its exit code and what it wrote.
type startRefusal struct {
	code int
	logs string
}

// launchRefused starts the real binary and requires it to exit before listening.
func launchRefused(t *testing.T, opts testserver.Options) startRefusal {
	t.Helper()
	s, err := testserver.Launch(t, opts)
	if err == nil {
		t.Fatalf("the server started on %s", s.URL)
	}
	var exit *exec.ExitError
	if waitErr := s.Wait(10 * time.Second); !errors.As(waitErr, &exit) {
		t.Fatalf("no exit code: %v\n%s", waitErr, s.Logs())
	}
	return startRefusal{exit.ExitCode(), s.Logs()}
}

// once requires what to appear on exactly one line, every line to be a JSON log line (the plain
// "auditexport: …" line printed the error a second time), and no stack trace.
func (r startRefusal) once(t *testing.T, what string) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(r.logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON log line: %q", line)
		}
		if strings.Contains(line, what) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%q on %d lines, want 1:\n%s", what, n, r.logs)
	}
	for _, trace := range []string{"goroutine ", "panic:", "SIGSEGV", "SIGBUS"} {
		if strings.Contains(r.logs, trace) {
			t.Errorf("a stack trace (%q):\n%s", trace, r.logs)
		}
	}
}

// A busy port, or a malformed AUDITEXPORT_* value, refuses to start before anything is written to
// the data directory; the error is printed once.
func TestStartupRefusalsLeaveNoDataDirectory(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	r := launchRefused(t, testserver.Options{DataDir: dataDir, Args: []string{"--listen", busy.Addr().String()}})
	if r.code != exitFailure {
		t.Errorf("busy port: exit %d, want %d", r.code, exitFailure)
	}
	r.once(t, "listen on "+busy.Addr().String())
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(dataDir)
		t.Errorf("a busy port left the data directory behind: %v", entries)
	}

	for env, want := range map[string]string{
		"AUDITEXPORT_CHECK_TIMEOUT=10":           `AUDITEXPORT_CHECK_TIMEOUT="10" is not valid: expected a duration with its unit`,
		"AUDITEXPORT_EXPORT_WORKERS=two":         `AUDITEXPORT_EXPORT_WORKERS="two" is not valid: expected a whole number`,
		"AUDITEXPORT_PLAYGROUND=yes please":      `AUDITEXPORT_PLAYGROUND="yes please" is not valid: expected true or false`,
		"AUDITEXPORT_LOG_LEVEL=verbose":          `AUDITEXPORT_LOG_LEVEL="verbose" is not valid: expected one of debug, info, warn, error`,
		"AUDITEXPORT_ALLOWED_ENDPOINTS=http://x": `AUDITEXPORT_ALLOWED_ENDPOINTS="http://x" is not valid`,
	} {
		t.Run(env, func(t *testing.T) {
			s, err := testserver.Launch(t, testserver.Options{DataDir: dataDir, Env: []string{env}})
			if err == nil {
				t.Fatalf("started on %s", s.URL)
			}
			s.Wait(10 * time.Second)
			if got := s.Logs(); !strings.Contains(got, want) || strings.Count(got, "not valid") != 1 {
				t.Errorf("want %q once in %s", want, got)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Error("a malformed variable left the data directory behind")
			}
		})
	}
	// A flag given on the command line wins over its variable, malformed or not.
	s := testserver.Start(t, testserver.Options{DataDir: dataDir, Env: []string{"AUDITEXPORT_CHECK_TIMEOUT=10"}, Args: []string{"--check-timeout", "5s"}})
	s.Stop()
}

// A data file that bbolt would start blank on (0 bytes beside a master key), or crash on
// (truncated: SIGBUS/SIGSEGV; a damaged page: a panic in bbolt's own goroutine), is refused with
// a message naming the file and what to do, exit 1, no stack trace, and the file left as it was.
func TestDamagedDataFilesAreRefused(t *testing.T) {
	good := t.TempDir()
	s := testserver.Start(t, testserver.Options{DataDir: good})
	s.CreateConfiguration(map[string]any{"interval": "EVERY_HOUR", "bucket": "audit-bucket", "region": "us-east-1", "roleArn": "arn:aws:iam::123456789012:role/r"})
	for i := range 4 { // enough events for a tree of many pages
		ingestNDJSON(t, s, eventtest.NDJSON(i*1000, 1000, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), time.Second))
	}
	s.Stop()
	db, err := os.ReadFile(filepath.Join(good, "auditexport.db"))
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 4096 // bbolt's default: the OS page size here
	if binary.LittleEndian.Uint32(db[16+8:]) != pageSize || len(db) < 20*pageSize {
		t.Fatalf("unexpected data file: page size %d, %d bytes", binary.LittleEndian.Uint32(db[16+8:]), len(db))
	}

	for name, c := range map[string]struct {
		damage func([]byte) []byte
		want   string
	}{
		"empty":     {func([]byte) []byte { return nil }, "is empty (0 bytes)"},
		"truncated": {func(b []byte) []byte { return b[:usedBytes(b, pageSize)/2] }, "is damaged (truncated:"},
		"damaged pages": {func(b []byte) []byte {
			// Each page after the meta pages and free list claims another page id, as a torn or
			// misdirected write leaves it: bbolt's scan at open asserts on the first it reads.
			for off := 3 * pageSize; off < len(b); off += pageSize {
				binary.LittleEndian.PutUint64(b[off:], 0xdead0000+uint64(off/pageSize))
			}
			return b
		}, "is damaged (assertion failed"},
		"both meta pages": {func(b []byte) []byte {
			b[16], b[pageSize+16] = 0, 0 // the magic numbers
			return b
		}, "is damaged (neither of its two meta pages is valid"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"master.key", "admin-token"} {
				copyFile(t, filepath.Join(good, f), filepath.Join(dir, f))
			}
			path := filepath.Join(dir, "auditexport.db")
			damaged := c.damage(append([]byte(nil), db...))
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			r := launchRefused(t, testserver.Options{DataDir: dir})
			if r.code != exitFailure {
				t.Errorf("exit %d, want %d", r.code, exitFailure)
			}
			r.once(t, "data file "+path+" "+c.want)
			if !strings.Contains(r.logs, "backup") {
				t.Errorf("no advice: %s", r.logs)
			}
			if after, _ := os.ReadFile(path); string(after) != string(damaged) {
				t.Error("the refused file was changed")
			}
		})
	}
}

// usedBytes is how much of a bbolt file its newer meta page says is in use (its high-water
// mark): bbolt grows the file ahead of it, so a file cut short of its length may still hold
// every page in use.
func usedBytes(db []byte, pageSize int) int {
	const pgidAt, txidAt = 16 + 40, 16 + 48 // in a meta page: after its header, magic … freelist
	newer := 0
	if binary.LittleEndian.Uint64(db[pageSize+txidAt:]) > binary.LittleEndian.Uint64(db[txidAt:]) {
		newer = pageSize
	}
	return int(binary.LittleEndian.Uint64(db[newer+pgidAt:])) * pageSize
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// `auditexport version`, `--version`, the startup log line and /metrics tell the same build.
func TestVersion(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	cli := newCLI(t, s)
	var info struct{ Version, Revision, Time, GoVersion string }
	if err := json.Unmarshal([]byte(cli.ok("version", "-o", "json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.GoVersion != runtime.Version() || info.Version == "" {
		t.Fatalf("version -o json: %+v, want Go %s", info, runtime.Version())
	}
	line := cli.ok("version")
	if flag := cli.ok("--version"); flag != line || !strings.HasPrefix(line, "auditexport "+info.Version) || !strings.Contains(line, info.GoVersion) {
		t.Errorf("version %q, --version %q", line, flag)
	}
	if info.Revision != "" && !strings.Contains(line, info.Revision) {
		t.Errorf("version %q lacks the revision %s", line, info.Revision)
	}
	var started struct{ Version, Revision, GoVersion string }
	for _, l := range strings.Split(s.Logs(), "\n") {
		var entry struct {
			Msg, Version, Revision string
			GoVersion              string `json:"go_version"`
		}
		if json.Unmarshal([]byte(l), &entry) == nil && entry.Msg == "listening" {
			started = struct{ Version, Revision, GoVersion string }{entry.Version, entry.Revision, entry.GoVersion}
		}
	}
	if started.Version != info.Version || started.Revision != info.Revision || started.GoVersion != info.GoVersion {
		t.Errorf("startup line %+v, version %+v", started, info)
	}
	metric := grepLines(getMetrics(t, s), "auditexport_build_info{")
	for _, label := range []string{`version="` + info.Version + `"`, `revision="` + info.Revision + `"`, `goversion="` + info.GoVersion + `"`} {
		if !strings.Contains(metric, label) || !strings.HasSuffix(metric, " 1") {
			t.Errorf("auditexport_build_info %q lacks %s", metric, label)
		}
	}
}

// TestGarbageCollectorTarget: the server runs its collector at GOGC=200 unless the environment
// sets GOGC, which it then follows (Go's runtime metric, on /metrics).
func TestGarbageCollectorTarget(t *testing.T) {
	if v, set := os.LookupEnv("GOGC"); set { // the servers inherit this test's environment
		os.Unsetenv("GOGC")
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{{nil, "go_gc_gogc_percent 200\n"}, {[]string{"GOGC=100"}, "go_gc_gogc_percent 100\n"}, {[]string{"GOGC=350"}, "go_gc_gogc_percent 350\n"}} {
		server := testserver.Start(t, testserver.Options{Env: tc.env})
		if metrics := getMetrics(t, server); !strings.Contains(metrics, tc.want) {
			t.Errorf("environment %q: want %q in /metrics, got %q", tc.env, tc.want, grepLines(metrics, "go_gc_gogc"))
		}
		server.Stop()
	}
}
