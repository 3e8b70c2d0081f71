package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func count(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func createAndInsert(t *testing.T, conn *pgx.Conn, rows int) {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE TABLE events (id bigint PRIMARY KEY, body text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if _, err := conn.Exec(ctx, "INSERT INTO events VALUES ($1, $2)", i, "event"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDatabasesAreSeparate: each test's database is its own, on the shared server.
func TestDatabasesAreSeparate(t *testing.T) {
	t.Parallel()
	s := Require(t)
	first, second := s.NewDatabase(t), s.NewDatabase(t)
	if first == second {
		t.Fatalf("two databases with one URL %s", first)
	}
	a := Connect(t, first)
	createAndInsert(t, a, 3)
	if got := count(t, a); got != 3 {
		t.Fatalf("%d rows, want 3", got)
	}
	b := Connect(t, second)
	if _, err := b.Exec(context.Background(), "SELECT 1 FROM events"); err == nil {
		t.Fatal("the second database sees the first one's table")
	}
	var durable string
	if err := a.QueryRow(context.Background(), "SELECT current_setting('fsync') || current_setting('synchronous_commit')").Scan(&durable); err != nil {
		t.Fatal(err)
	}
	if durable != "onon" {
		t.Fatalf("fsync, synchronous_commit = %q, want on, on", durable)
	}
}

// TestSharedServerCannotBeStopped: stopping the server every package uses is refused.
func TestSharedServerCannotBeStopped(t *testing.T) {
	t.Parallel()
	if err := Require(t).checkPrivate(); err == nil {
		t.Fatal("the shared server may be stopped")
	}
}

// TestOutage: a server of the test's own stops (connections fail) and starts again with its data.
func TestOutage(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	url := s.NewDatabase(t)
	conn := Connect(t, url)
	createAndInsert(t, conn, 5)

	s.Stop(t)
	if _, err := conn.Exec(context.Background(), "SELECT 1"); err == nil {
		t.Fatal("a query succeeded on a stopped server")
	}
	if c, err := pgx.Connect(context.Background(), url); err == nil {
		c.Close(context.Background())
		t.Fatal("connected to a stopped server")
	}

	s.Start(t)
	conn = Connect(t, url)
	if got := count(t, conn); got != 5 {
		t.Fatalf("%d rows after the restart, want 5", got)
	}

	// Committed rows survive a crash: synchronous commit, fsync on.
	if _, err := conn.Exec(context.Background(), "INSERT INTO events VALUES (100, 'last')"); err != nil {
		t.Fatal(err)
	}
	s.Crash(t)
	s.Start(t)
	if got := count(t, Connect(t, url)); got != 6 {
		t.Fatalf("%d rows after the crash, want 6", got)
	}
}

// TestFailover: every commit acknowledged by the primary is on its synchronous standby, which takes
// writes once promoted.
func TestFailover(t *testing.T) {
	t.Parallel()
	primary := NewServer(t)
	url := primary.NewDatabase(t)
	standby := primary.StartStandby(t)

	createAndInsert(t, Connect(t, url), 10)
	var syncState string
	if err := Connect(t, primary.SuperuserURL).QueryRow(context.Background(),
		"SELECT sync_state FROM pg_stat_replication").Scan(&syncState); err != nil {
		t.Fatal(err)
	}
	if syncState != "sync" {
		t.Fatalf("standby's sync_state %q, want sync", syncState)
	}

	primary.Crash(t)
	standby.Promote(t)
	standbyURL := standby.SameDatabase(t, url)
	conn := Connect(t, standbyURL)
	if got := count(t, conn); got != 10 {
		t.Fatalf("%d rows on the promoted standby, want the 10 acknowledged", got)
	}
	if _, err := conn.Exec(context.Background(), "INSERT INTO events VALUES (10, 'after failover')"); err != nil {
		t.Fatalf("write on the promoted standby: %v", err)
	}
}
