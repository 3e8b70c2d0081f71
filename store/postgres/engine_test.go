package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/pgtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/postgres"
	"github.com/auditexport/auditexport/store/storetest"
)

// replica opens a store on the database at url, as one replica of several, closed when the
// test ends.
func replica(t *testing.T, url string, key []byte) *store.Store {
	t.Helper()
	return replicaWith(t, url, postgres.Options{TxTimeout: 10 * time.Second}, store.Config{MasterKey: key, NoTrimLoop: true})
}

// replicaWith is a store on the database at url, as one replica opens it.
func replicaWith(t *testing.T, url string, opts postgres.Options, cfg store.Config) *store.Store {
	t.Helper()
	engine, err := postgres.Open(t.Context(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(t.Context(), engine, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func batchOf(t testing.TB, first, n int) *event.Batch {
	t.Helper()
	var d event.Decoder
	b, err := d.NDJSON(eventtest.NDJSON(first, n, time.Now(), time.Millisecond), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A reader that has read up to seq N never later finds an event below N, while replicas append
// at once: seqs are given in commit order across processes, not only within one.
func TestSeqsInCommitOrderAcrossReplicas(t *testing.T) {
	t.Parallel()
	url := pgtest.Require(t).NewDatabase(t)
	key := storetest.Key()
	replicas := []*store.Store{replica(t, url, key), replica(t, url, key), replica(t, url, key)}
	const writers, batches, size = 6, 15, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				if _, err := replicas[w%len(replicas)].AppendEvents(t.Context(), batchOf(t, (w*batches+b)*size, size)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// The reader follows the appends from a cursor, as an export does, until they are all in.
	seen := map[uint64]int{}
	var cursor uint64
	for done := false; !done; {
		done = storetest.Status(t, replicas[2]).Events == writers*batches*size
		err := replicas[2].ReadEvents(t.Context(), cursor, 0, func(seq uint64, _ []byte) bool {
			seen[seq]++
			cursor = seq
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if len(seen) != writers*batches*size {
		t.Fatalf("the reader saw %d events of %d: some were committed below its cursor", len(seen), writers*batches*size)
	}
	for seq := uint64(1); seq <= writers*batches*size; seq++ {
		if seen[seq] != 1 {
			t.Fatalf("seq %d seen %d times", seq, seen[seq])
		}
	}
}

// An id buffered through one replica is a duplicate on every other.
func TestDuplicatesAcrossReplicas(t *testing.T) {
	t.Parallel()
	url := pgtest.Require(t).NewDatabase(t)
	key := storetest.Key()
	a, b := replica(t, url, key), replica(t, url, key)
	if r, err := a.AppendEvents(t.Context(), batchOf(t, 0, 100)); err != nil || r.Accepted != 100 {
		t.Fatalf("through a: %+v %v", r, err)
	}
	if r, err := b.AppendEvents(t.Context(), batchOf(t, 50, 100)); err != nil || r.Accepted != 50 || r.Duplicates != 50 || r.First != 101 {
		t.Fatalf("through b: %+v %v", r, err)
	}
	if s := storetest.Status(t, a); s.Events != 150 || s.Head != 150 {
		t.Fatalf("status through a: %+v", s)
	}
	// A replica opened now reads the buffered ids, and knows them as well.
	c := replica(t, url, key)
	if r, err := c.AppendEvents(t.Context(), batchOf(t, 120, 40)); err != nil || r.Accepted != 10 || r.Duplicates != 30 || r.First != 151 {
		t.Fatalf("through c, opened after: %+v %v", r, err)
	}
	// And b learns the ids c stored.
	if r, err := b.AppendEvents(t.Context(), batchOf(t, 155, 10)); err != nil || r.Accepted != 5 || r.Duplicates != 5 {
		t.Fatalf("through b again: %+v %v", r, err)
	}
	var ids, distinct int
	if err := pgtest.Connect(t, url).QueryRow(t.Context(),
		"SELECT count(*), count(DISTINCT id) FROM event_chunks, unnest(ids) AS id").Scan(&ids, &distinct); err != nil || ids != 165 || distinct != 165 {
		t.Fatalf("%d ids (%d distinct) stored (%v), want 165", ids, distinct, err)
	}
}

// An id trimmed through one replica is new again on every replica, whose index still held it.
func TestTrimmedIDsAreNewOnEveryReplica(t *testing.T) {
	t.Parallel()
	url := pgtest.Require(t).NewDatabase(t)
	key := storetest.Key()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	open := func() *store.Store {
		return replicaWith(t, url, postgres.Options{BlockMaxEvents: 10, Now: clock},
			store.Config{MasterKey: key, NoTrimLoop: true, Now: clock, Buffer: store.BufferConfig{MinRetention: time.Hour}})
	}
	a, b := open(), open()
	if r, err := a.AppendEvents(t.Context(), batchOf(t, 0, 30)); err != nil || r.Accepted != 30 {
		t.Fatalf("through a: %+v %v", r, err)
	}
	if r, err := b.AppendEvents(t.Context(), batchOf(t, 25, 10)); err != nil || r.Accepted != 5 || r.Duplicates != 5 {
		t.Fatalf("through b, before the trim: %+v %v", r, err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour) // past the minimum retention; no configuration holds them
	mu.Unlock()
	if r, err := b.Trim(t.Context()); err != nil || r.Events != 35 {
		t.Fatalf("trim through b: %+v %v", r, err)
	}
	if r, err := a.AppendEvents(t.Context(), batchOf(t, 0, 10)); err != nil || r.Accepted != 10 {
		t.Fatalf("through a, after the trim: %+v %v", r, err)
	}
	if r, err := b.AppendEvents(t.Context(), batchOf(t, 5, 10)); err != nil || r.Accepted != 5 || r.Duplicates != 5 {
		t.Fatalf("through b, after the trim: %+v %v", r, err)
	}
}

// A database that goes back (restored, or failed over to a standby that missed the last
// commits) while replicas run, and that another replica then writes past: a replica that had
// seen the lost commits notices, and reads the ids again, whether it catches up before taking the
// writers' lock or under it.
func TestReplicasNoticeADatabaseThatWentBack(t *testing.T) {
	t.Parallel()
	for _, stale := range []bool{false, true} {
		t.Run(fmt.Sprintf("stale=%v", stale), func(t *testing.T) {
			url := pgtest.Require(t).NewDatabase(t)
			key := storetest.Key()
			a, c := replica(t, url, key), replica(t, url, key)
			catchUpAfter := time.Hour // b looks only under the writers' lock
			if stale {
				catchUpAfter = time.Nanosecond // b always catches up before it takes the lock
			}
			b := replicaWith(t, url, postgres.Options{IDCatchUpAfter: catchUpAfter}, store.Config{MasterKey: key, NoTrimLoop: true})
			for _, first := range []int{0, 50} { // seqs 1–100, two chunks
				if r, err := a.AppendEvents(t.Context(), batchOf(t, first, 50)); err != nil || r.Accepted != 50 {
					t.Fatalf("through a: %+v %v", r, err)
				}
			}
			if r, err := b.AppendEvents(t.Context(), batchOf(t, 99, 1)); err != nil || r.Duplicates != 1 { // b has seen seq 100
				t.Fatalf("through b: %+v %v", r, err)
			}
			// The database goes back to seq 50.
			db := pgtest.Connect(t, url)
			for _, sql := range []string{
				"DELETE FROM event_chunks WHERE last_seq > 50",
				"UPDATE event_blocks SET last_seq = 50, events = 50",
				"UPDATE event_log SET head = 50, events = 50",
			} {
				if _, err := db.Exec(t.Context(), sql); err != nil {
					t.Fatal(err)
				}
			}
			// Another replica writes past where b stands, in chunks ending below and at it.
			for _, first := range []int{200, 220, 240} { // seqs 51–110
				if r, err := c.AppendEvents(t.Context(), batchOf(t, first, 20)); err != nil || r.Accepted != 20 {
					t.Fatalf("through c: %+v %v", r, err)
				}
			}
			if r, err := b.AppendEvents(t.Context(), batchOf(t, 200, 60)); err != nil || r.Duplicates != 60 {
				t.Fatalf("c's events through b: %+v %v, want 60 duplicates", r, err)
			}
			if r, err := b.AppendEvents(t.Context(), batchOf(t, 60, 5)); err != nil || r.Accepted != 5 {
				t.Fatalf("events the database lost, through b: %+v %v, want 5 accepted", r, err)
			}
		})
	}
}

// Chunks keep their events' hour when they share one, and a chunk without (written before the
// column was, or its events across hours) is read event by event: the hours come out the same.
func TestChunkHours(t *testing.T) {
	t.Parallel()
	url := pgtest.Require(t).NewDatabase(t)
	st := replica(t, url, storetest.Key())
	var d event.Decoder
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i, start := range []time.Time{at, at.Add(59 * time.Minute), at.Add(3 * time.Hour)} {
		b, err := d.NDJSON(eventtest.NDJSON(i*1000, 600, start, time.Second), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AppendEvents(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	spans := func() map[int64][3]int64 { // hour: first, last, bytes
		out := map[int64][3]int64{}
		err := st.ReadEventHours(t.Context(), 0, 1800, func(r store.HourRun) bool {
			s, ok := out[r.Hour]
			if !ok {
				s[0] = int64(r.First)
			}
			s[1], s[2] = int64(r.Last), s[2]+r.Bytes
			out[r.Hour] = s
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	db := pgtest.Connect(t, url)
	var withHour, without int
	if err := db.QueryRow(t.Context(), "SELECT count(event_hour), count(*) - count(event_hour) FROM event_chunks").Scan(&withHour, &without); err != nil || withHour == 0 || without == 0 {
		t.Fatalf("%d chunks with an hour, %d without (%v): want some of each", withHour, without, err)
	}
	kept := spans()
	if len(kept) != 3 { // 10:00 (the first batch, and the second's first minute), 11:00, 13:00
		t.Fatalf("hours %v, want 3", kept)
	}
	if _, err := db.Exec(t.Context(), "UPDATE event_chunks SET event_hour = NULL, bytes = NULL"); err != nil {
		t.Fatal(err)
	}
	if read := spans(); fmt.Sprint(read) != fmt.Sprint(kept) {
		t.Fatalf("read event by event %v, from the chunks' hours %v", read, kept)
	}
}

// Batches that share ids, committed at once through two replicas (two group commits at once per
// replica): each id is stored once, every event accepted once, and what was refused as a
// duplicate is counted so.
func TestOverlappingBatchesAtOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.Require(t).NewDatabase(t)
	key := storetest.Key()
	replicas := []*store.Store{replica(t, url, key), replica(t, url, key)}
	const writers, batches, size, ids = 6, 8, 40, 200
	var mu sync.Mutex
	var accepted, duplicates int
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				r, err := replicas[w%2].AppendEvents(t.Context(), batchOf(t, (w*37+b*23)%(ids-size), size))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				accepted, duplicates = accepted+r.Accepted, duplicates+r.Duplicates
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st := storetest.Status(t, replicas[0])
	var stored, distinct int
	if err := pgtest.Connect(t, url).QueryRow(t.Context(),
		"SELECT count(*), count(DISTINCT id) FROM event_chunks, unnest(ids) AS id").Scan(&stored, &distinct); err != nil {
		t.Fatal(err)
	}
	if accepted+duplicates != writers*batches*size || int64(accepted) != st.Events || int(st.Head) != accepted ||
		stored != accepted || distinct != accepted || accepted > ids {
		t.Fatalf("%d accepted, %d duplicates; buffer %+v; %d ids stored, %d distinct in the chunks", accepted, duplicates, st, stored, distinct)
	}
}

// Secrets and tokens are sealed or hashed in the database: no column holds them in plaintext.
func TestSecretsAreSealedInTheDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.Require(t).NewDatabase(t)
	st := replica(t, url, storetest.Key())
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	c, err := st.CreateConfiguration(t.Context(), store.ExportConfiguration{
		Kind: store.KindS3AccessKey, Interval: store.EveryHour, Enabled: true, Bucket: "audit-bucket", Region: "us-east-1",
		AccessKeyID: "AKIAIOSFODNN7EXAMPLE",
	}, secret, store.Principal{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := st.CreateToken(t.Context(), "ci", []store.Permission{store.PermissionAudit}, store.Principal{Name: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, url)
	var dump []byte
	// The events' records, out of their compressed chunks.
	rows, err := conn.Query(t.Context(), "SELECT first_seq, last_seq, data FROM event_chunks")
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for rows.Next() {
		var first, last int64
		var data []byte
		if err := rows.Scan(&first, &last, &data); err != nil {
			t.Fatal(err)
		}
		records, err := postgres.ChunkRecords(uint64(first), uint64(last), data)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range records {
			dump = append(dump, r...)
			events++
		}
	}
	rows.Close()
	if events != 2 { // the audit events of the configuration and the token
		t.Fatalf("%d events in the chunks, want 2", events)
	}
	for _, q := range []string{
		"SELECT value FROM meta", "SELECT sealed FROM export_configuration_secrets",
		"SELECT convert_to(record::text, 'UTF8') FROM export_configurations", "SELECT convert_to(record::text, 'UTF8') FROM api_tokens",
	} {
		rows, err := conn.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v []byte
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			dump = append(dump, v...)
		}
		rows.Close()
	}
	for _, plain := range []string{secret, token} {
		if bytes.Contains(dump, []byte(plain)) {
			t.Errorf("the database holds %q in plaintext", plain)
		}
	}
	if !bytes.Contains(dump, []byte(c.AccessKeyID)) || !bytes.Contains(dump, []byte(c.ID)) {
		t.Fatal("the dump lacks the configuration: the scan above proves nothing")
	}
}

// migratedDatabase is a new database migrated by this build, with no engine open on it.
func migratedDatabase(t *testing.T) string {
	url := pgtest.Require(t).NewDatabase(t)
	e, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	return url
}

// A database migrated by a newer release is refused, not misread.
func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	url := migratedDatabase(t)
	if _, err := pgtest.Connect(t, url).Exec(t.Context(),
		"INSERT INTO auditexport_schema_migrations (version_id, is_applied) VALUES (99, true)"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(t.Context(), url, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "newer auditexport") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

// A database made by a development build's draft of schema 1 (a row per event) is refused, and
// left as it was.
func TestDraftSchemaIsRefused(t *testing.T) {
	t.Parallel()
	url := migratedDatabase(t)
	conn := pgtest.Connect(t, url)
	if _, err := conn.Exec(t.Context(), `DROP TABLE event_chunks;
		CREATE TABLE events (seq bigint PRIMARY KEY, id uuid NOT NULL UNIQUE, record bytea NOT NULL);
		INSERT INTO events VALUES (1, gen_random_uuid(), '\x01')`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(t.Context(), url, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "development build") {
		t.Fatalf("open of the draft schema: %v", err)
	}
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM events").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the draft's events: %d %v", n, err)
	}
}

// Replicas starting together on an empty database migrate it once, and all start.
func TestReplicasMigrateTogether(t *testing.T) {
	t.Parallel()
	url := pgtest.Require(t).NewDatabase(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			e, err := postgres.Open(t.Context(), url, postgres.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			e.Close()
		})
	}
	wg.Wait()
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	var applied int
	if err := pgtest.Connect(t, url).QueryRow(t.Context(),
		"SELECT count(*) FROM auditexport_schema_migrations WHERE version_id > 0").Scan(&applied); err != nil || applied != len(files) {
		t.Fatalf("%d migrations recorded (%v), want %d", applied, err, len(files))
	}
}

// A URL that would acknowledge commits before they are durable is refused; bad URLs are
// explained without the password.
func TestDatabaseURLIsChecked(t *testing.T) {
	t.Parallel()
	url := pgtest.Require(t).NewDatabase(t)
	sep := map[bool]string{false: "?", true: "&"}[strings.Contains(url, "?")]
	if _, err := postgres.Open(t.Context(), url+sep+"synchronous_commit=off", postgres.Options{}); err == nil || !strings.Contains(err.Error(), "synchronous_commit") {
		t.Fatalf("synchronous_commit=off: %v", err)
	}
	_, err := postgres.Open(t.Context(), "postgres://auditexport:hunter2-secret@127.0.0.1:notaport/db", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("a malformed URL: %v", err)
	}
}

// While the database is down, calls fail at once with store.ErrUnavailable and nothing is
// acknowledged; once it is back the same store serves again, having lost nothing.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	server := pgtest.NewServer(t)
	url := server.NewDatabase(t)
	st := replica(t, url, storetest.Key())
	ctx := t.Context()
	if _, err := st.AppendEvents(ctx, batchOf(t, 0, 50)); err != nil {
		t.Fatal(err)
	}
	server.Stop(t)
	if err := st.Ready(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ready while down: %v", err)
	}
	if _, err := st.AppendEvents(ctx, batchOf(t, 50, 50)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("append while down: %v", err)
	}
	if _, err := st.Configurations(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read while down: %v", err)
	}
	server.Start(t)
	if err := st.Ready(ctx); err != nil {
		t.Fatalf("ready after the restart: %v", err)
	}
	if r, err := st.AppendEvents(ctx, batchOf(t, 25, 50)); err != nil || r.Accepted != 25 || r.Duplicates != 25 || r.Last != 75 {
		t.Fatalf("append after the restart: %+v %v", r, err)
	}
	var n int
	if err := st.ReadEvents(ctx, 0, 0, func(uint64, []byte) bool { n++; return true }); err != nil || n != 75 {
		t.Fatalf("%d events after the outage (%v), want 75", n, err)
	}
}

// Behind a URL naming a primary and its synchronous standby (target_session_attrs=read-write),
// the store finds the promoted standby after the primary dies, and every batch it acknowledged
// is there.
func TestFailoverToSynchronousStandby(t *testing.T) {
	t.Parallel()
	primary := pgtest.NewServer(t)
	url := primary.NewDatabase(t)
	standby := primary.StartStandby(t)
	st := replica(t, pgtest.FailoverURL(t, url, primary, standby), storetest.Key())
	ctx := context.Background()
	acked := 0
	for i := range 10 {
		if _, err := st.AppendEvents(ctx, batchOf(t, i*20, 20)); err != nil {
			t.Fatal(err)
		}
		acked += 20
	}
	primary.Crash(t)
	if _, err := st.AppendEvents(ctx, batchOf(t, 1000, 20)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("append with the primary down and the standby not promoted: %v", err)
	}
	if err := st.Ready(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ready with only a standby: %v", err)
	}
	standby.Promote(t)
	if r, err := st.AppendEvents(ctx, batchOf(t, 2000, 20)); err != nil || r.Accepted != 20 || r.First != uint64(acked+1) {
		t.Fatalf("append after the promotion: %+v %v", r, err)
	}
	if s := storetest.Status(t, st); s.Events != int64(acked+20) {
		t.Fatalf("%d events on the promoted standby, want %d", s.Events, acked+20)
	}
}
