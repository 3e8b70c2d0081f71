package pgtest

import (
	"errors"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// NewServer starts a PostgreSQL of this test's own, a fresh cluster (initdb: a second or two), and
// stops and removes it when the test ends. Stop, Start, Restart, Crash and StartStandby work on it
// and disturb no other test.
func NewServer(t testing.TB) *Server {
	t.Helper()
	return Require(t).startPrivate(t, "start")
}

// StartStandby clones s, a server from NewServer, into a hot standby streaming from it, and makes it
// s's synchronous standby: from then on each commit on s returns only once the standby has it, so
// after s.Crash and standby.Promote every acknowledged commit is on the standby. While the standby
// is stopped, commits on s wait. The standby is stopped and removed when the test ends.
func (s *Server) StartStandby(t testing.TB) *Server {
	t.Helper()
	s.mustBePrivate(t)
	return s.startPrivate(t, "start-standby", s.Dir)
}

// startPrivate runs scripts/pg-server.sh with args and a new state directory.
func (s *Server) startPrivate(t testing.TB, args ...string) *Server {
	t.Helper()
	// Under the server's own directory, not t.TempDir: the server may run as another user
	// (PostgreSQL refuses root), who must reach the directory, and t.TempDir's parents are closed to
	// others. And there the script's stop of the shared server stops it too, should this test
	// binary die without its cleanups (a test timeout).
	private := filepath.Join(s.Dir, "private")
	if err := os.MkdirAll(private, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(private, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(s.script, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("stop PostgreSQL in %s: %v\n%s", dir, err, out)
		}
		os.RemoveAll(dir)
	})
	cmd := exec.Command(s.script, append(args, dir)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", s.script, args, err, out)
	}
	server := readEnvFile(t, filepath.Join(dir, "env"))
	server.private = true
	return server
}

// Stop shuts the server down cleanly (pg_ctl -m fast): connections are closed, new ones refused.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.pgCtl(t, "-m", "fast", "-w", "-t", "60", "stop")
}

// Crash stops the server as a power cut would look to it (pg_ctl -m immediate: no shutdown
// checkpoint), so the next Start runs crash recovery.
func (s *Server) Crash(t testing.TB) {
	t.Helper()
	s.pgCtl(t, "-m", "immediate", "-w", "-t", "60", "stop")
}

// Start starts the stopped server again, on the same port with the same data, and returns once it
// accepts connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.pgCtl(t, "-l", s.Log, "-w", "-t", "60", "start")
}

// Restart stops the server cleanly and starts it again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

// Promote turns a standby into a primary that accepts writes, and returns once it does.
func (s *Server) Promote(t testing.TB) {
	t.Helper()
	s.pgCtl(t, "-w", "-t", "60", "promote")
}

// SameDatabase returns dbURL, a database URL of another server in the same cluster (its primary),
// pointed at s: the same role, password and database at s's address. For a standby's clients.
func (s *Server) SameDatabase(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "127.0.0.1:" + s.Port
	return u.String()
}

// FailoverURL returns dbURL, a database URL of a server in the cluster, naming every one of
// servers as a host, in order, with target_session_attrs=read-write: a client (libpq, pgx)
// connects to whichever of them is the primary now, so it follows a failover by itself.
func FailoverURL(t testing.TB, dbURL string, servers ...*Server) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	hosts := make([]string, len(servers))
	for i, s := range servers {
		hosts[i] = "127.0.0.1:" + s.Port
	}
	u.Host = strings.Join(hosts, ",")
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	u.RawQuery = q.Encode()
	return u.String()
}

var errShared = errors.New("pgtest: only a server of the test's own (NewServer) may be stopped, crashed or given a standby: the shared one serves every package under test")

func (s *Server) checkPrivate() error {
	if !s.private {
		return errShared
	}
	return nil
}

func (s *Server) mustBePrivate(t testing.TB) {
	t.Helper()
	if err := s.checkPrivate(); err != nil {
		t.Fatal(err)
	}
}

// pgCtl runs pg_ctl on the server's data directory as the server's user.
func (s *Server) pgCtl(t testing.TB, args ...string) {
	t.Helper()
	s.mustBePrivate(t)
	cmd := exec.Command(filepath.Join(s.Bin, "pg_ctl"), append([]string{"-D", s.Data}, args...)...)
	cmd.Dir = "/" // the test's directory may be closed to the server's user
	if s.osUser != "" && os.Geteuid() == 0 {
		u, err := user.Lookup(s.osUser)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl %v: %v\n%s", args, err, out)
	}
}
