package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/server"
)

// How BenchmarkVersusDuckDB profiles the server: run in this process, as `auditexport serve`
// runs it, with pprof's profiles taken around the end-to-end part:
//
//	scripts/with-s3-server.sh go test -run '^$' -bench 'BenchmarkVersusDuckDB$' -benchtime 1x \
//	  ./cmd/auditexport/ -duckdb.profile=/tmp/prof
//	go tool pprof -top /tmp/prof/end-to-end-cpu.pprof
//	go tool pprof -sample_index=alloc_space -base /tmp/prof/end-to-end-allocs-before.pprof -top /tmp/prof/end-to-end-allocs.pprof

var (
	duckInProcess = flag.Bool("duckdb.inprocess", false,
		"BenchmarkVersusDuckDB runs the server in the benchmark's process (server.Run), as `auditexport serve` does")
	duckProfile = flag.String("duckdb.profile", "",
		"BenchmarkVersusDuckDB writes pprof profiles of each part (end-to-end, ingest, export) to this directory: <part>-cpu.pprof and, to compare with -base, <part>-{allocs,block,mutex}{-before,}.pprof (-duckdb.inprocess implied)")
)

// startInProcess runs server.Run as `auditexport serve` would, in this process.
func startInProcess(b *testing.B) *throughputServer {
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.AllowPrivateEndpoints = "127.0.0.1:0", b.TempDir(), "127.0.0.1"
	listening := make(chan string, 1)
	cfg.Logger = slog.New(listenHandler(listening))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	var addr string
	select {
	case addr = <-listening:
	case err := <-done:
		b.Fatalf("server: %v", err)
	}
	token, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token"))
	if err != nil {
		b.Fatal(err)
	}
	return &throughputServer{url: "http://" + addr, token: strings.TrimSpace(string(token)), pid: os.Getpid(), stop: func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}}
}

// listenHandler is a log handler that passes on the address of the "listening" line and drops
// the rest.
type listenHandler chan<- string

func (h listenHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h listenHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h listenHandler) WithGroup(string) slog.Handler            { return h }
func (h listenHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "listening" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				h <- a.Value.String()
			}
			return true
		})
	}
	return nil
}

// startProfiles starts the profiles -duckdb.profile asks for of one part; the returned function
// writes them. allocs, block and mutex are written before and after, to be compared with pprof
// -base.
func startProfiles(b *testing.B, part string) (stop func()) {
	dir := *duckProfile
	if dir == "" {
		return func() {}
	}
	write := func(name, suffix string) {
		f, err := os.Create(filepath.Join(dir, part+"-"+name+suffix+".pprof"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(10)
	for _, name := range []string{"allocs", "block", "mutex"} {
		write(name, "-before")
	}
	cpu, err := os.Create(filepath.Join(dir, part+"-cpu.pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		for _, name := range []string{"allocs", "block", "mutex"} {
			write(name, "")
		}
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}
}
