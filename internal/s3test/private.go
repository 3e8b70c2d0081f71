package s3test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Private is a MinIO of a test's own, which the test may stop and start again (same port, same
// data) to simulate an outage.
type Private struct {
	*Server
	dataDir string
	addr    string
	cmd     *exec.Cmd
	t       testing.TB
}

// StartPrivate starts a MinIO for this test only, with a bucket and a PutObject-only user like
// the shared one. It is stopped when the test ends.
func StartPrivate(t testing.TB) *Private {
	t.Helper()
	shared := Require(t)
	if shared.MinioBin == "" {
		t.Fatal("AUDITEXPORT_TEST_MINIO is not set: run the tests through scripts/with-s3-server.sh")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &Private{
		Server: &Server{
			Endpoint: "http://" + addr, RootUser: "private-root", RootPassword: "private-root-" + randomSuffix(),
			MinioBin: shared.MinioBin, mc: shared.mc, mcConfigDir: filepath.Join(dir, "mc"), alias: "private",
		},
		dataDir: filepath.Join(dir, "data"), addr: addr, t: t,
	}
	p.Start()
	t.Cleanup(p.Stop)
	p.MC(t, "alias", "set", p.alias, p.Endpoint, p.RootUser, p.RootPassword)
	p.Bucket = p.NewBucket(t)
	p.PutOnlyAccessKey, p.PutOnlySecret = p.NewUser(t, PutOnlyPolicy(p.Bucket))
	return p
}

// Start starts the server and waits until it is healthy.
func (p *Private) Start() {
	p.t.Helper()
	consoleLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	console := consoleLn.Addr().String()
	consoleLn.Close()
	p.cmd = exec.Command(p.MinioBin, "server", "--quiet", "--address", p.addr, "--console-address", console, p.dataDir)
	p.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+p.RootUser, "MINIO_ROOT_PASSWORD="+p.RootPassword,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start minio: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("minio on %s did not become healthy: %v", p.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the server; Start brings it back with its data.
func (p *Private) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

func (p *Private) String() string { return fmt.Sprintf("private minio %s", p.addr) }
