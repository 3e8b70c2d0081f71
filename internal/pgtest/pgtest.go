// Package pgtest gives tests the real PostgreSQL that scripts/pg-server.sh started on loopback (see
// scripts/with-test-servers.sh), a fresh database per test so tests run in parallel, and servers of
// their own for tests that stop, crash or fail over a server.
//
// Without the server the tests skip locally, but under CI=true they fail: CI must test for real.
//
// The server from Require is shared by every test package of the run, which go test runs at the
// same time: never stop it. A test that needs an outage starts its own with NewServer.
package pgtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/auditexport/auditexport/internal/testneed"
	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL server on 127.0.0.1.
type Server struct {
	// URL is a postgres:// URL (password included) of a database the role owns; the role may
	// create databases.
	URL string
	// SuperuserURL connects as the superuser "postgres" over the server's Unix socket.
	SuperuserURL string
	// Bin holds the server's programs: pg_ctl, initdb, postgres, pg_basebackup, psql.
	Bin string
	// Dir is the server's state directory, Data its data directory (pg_ctl -D), Log its log.
	Dir, Data, Log string
	Port           string

	osUser  string // the user the server runs as, when the tests run as root
	script  string // scripts/pg-server.sh
	private bool   // started by NewServer or StartStandby, so the test may stop it
}

const envPrefix = "AUDITEXPORT_TEST_PG_"

// fromEnv reads the variables scripts/pg-server.sh writes, through get.
func fromEnv(get func(string) string) *Server {
	return &Server{
		URL:          get(envPrefix + "URL"),
		SuperuserURL: get(envPrefix + "SUPERUSER_URL"),
		Bin:          get(envPrefix + "BIN"),
		Dir:          get(envPrefix + "DIR"),
		Data:         get(envPrefix + "DATA"),
		Log:          get(envPrefix + "LOG"),
		Port:         get(envPrefix + "PORT"),
		osUser:       get(envPrefix + "OS_USER"),
		script:       get(envPrefix + "SCRIPT"),
	}
}

// Require returns the shared server from the AUDITEXPORT_TEST_PG_* variables.
func Require(t testing.TB) *Server {
	t.Helper()
	s := fromEnv(os.Getenv)
	if s.URL == "" || s.Bin == "" || s.script == "" {
		testneed.Missing(t, "no test PostgreSQL: run `make test`, or `scripts/with-test-servers.sh go test ./...`")
	}
	return s
}

// readEnvFile reads the DIR/env a start wrote.
func readEnvFile(t testing.TB, path string) *Server {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	values := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if key, value, ok := strings.Cut(scanner.Text(), "="); ok {
			values[key] = value
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return fromEnv(func(key string) string { return values[key] })
}

// Connect opens a connection to url, closed when the test ends.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

var notIdentifier = regexp.MustCompile(`[^a-z0-9]+`)

// NewDatabase creates an empty database owned by the role, for this test alone, and returns its URL.
// The name starts with the test's, for whoever reads the server's log. The database is dropped when
// the test ends, unless the server is a private one, which goes whole.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	suffix := make([]byte, 5)
	rand.Read(suffix)
	prefix := strings.Trim(notIdentifier.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	name := fmt.Sprintf("t_%.40s_%s", prefix, hex.EncodeToString(suffix))
	ident := pgx.Identifier{name}.Sanitize()
	s.exec(t, s.URL, "CREATE DATABASE "+ident)
	if !s.private {
		t.Cleanup(func() { s.exec(t, s.URL, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)") })
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// exec runs one statement on a connection of its own.
func (s *Server) exec(t testing.TB, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
