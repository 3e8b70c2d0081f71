package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/store"
)

// chunkEngine opens an engine whose segments close at segmentEvents events.
func chunkEngine(t *testing.T, segmentEvents int64) *Engine {
	t.Helper()
	e, err := Open(filepath.Join(t.TempDir(), "c.db"), Options{SegmentMaxEvents: segmentEvents})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func testRecord(n int) (uuid.UUID, []byte) {
	id := uuid.New()
	return id, event.Encode(event.Event{ID: id, EventTimestamp: time.Unix(int64(n), 0), Action: fmt.Sprintf("action-%d", n)})
}

// scanAll checks that ScanEvents after k, within tx, yields exactly want[k+1:], for every k.
func scanAll(t *testing.T, tx store.ReadTx, want [][]byte) {
	t.Helper()
	for after := range len(want) + 1 {
		next := uint64(after + 1)
		err := tx.ScanEvents(uint64(after), func(seq uint64, rec []byte) bool {
			if seq != next || int(seq) > len(want) || !bytes.Equal(rec, want[seq-1]) {
				t.Errorf("after %d: got seq %d (want %d) or a wrong record", after, seq, next)
				return false
			}
			next++
			return true
		})
		if err != nil {
			t.Fatalf("scan after %d: %v", after, err)
		}
		if next != uint64(len(want)+1) {
			t.Errorf("scan after %d ended before seq %d (at %d)", after, len(want), next)
		}
	}
}

// A transaction that appends, reads its own appends, and appends more to the same segment and
// across a segment boundary, then reads again, sees every event once and in order, from any
// starting point, during the transaction and after it commits; so do the next transactions, and
// a restart.
func TestChunksReadFromAnyPoint(t *testing.T) {
	e := chunkEngine(t, 7)
	var want [][]byte
	appendN := func(tx store.Tx, n int) {
		for range n {
			id, rec := testRecord(len(want))
			seq, dup, err := tx.AppendEvent(id, rec, time.Now())
			if err != nil || dup || seq != uint64(len(want)+1) {
				t.Fatalf("append: seq %d dup %v %v", seq, dup, err)
			}
			want = append(want, rec)
		}
	}
	for round := range 3 {
		err := e.Update(context.Background(), func(tx store.Tx) error {
			appendN(tx, 3)
			scanAll(t, tx, want)
			appendN(tx, 2) // same segment, a chunk of its own
			scanAll(t, tx, want)
			appendN(tx, 6) // across a segment boundary: one sealed mid-transaction
			scanAll(t, tx, want)
			appendN(tx, 1)
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := e.View(context.Background(), func(tx store.ReadTx) error { scanAll(t, tx, want); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	path := e.Path()
	e.Close()
	e, err := Open(path, Options{SegmentMaxEvents: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.View(context.Background(), func(tx store.ReadTx) error { scanAll(t, tx, want); return nil }); err != nil {
		t.Fatal(err)
	}
	// Every id stays a duplicate after the restart (the open segment's ids read from chunks).
	dups := 0
	err = e.Update(context.Background(), func(tx store.Tx) error {
		for _, rec := range want {
			id, _ := event.IDOf(rec)
			_, dup, err := tx.AppendEvent(id, rec, time.Now())
			if err != nil {
				return err
			}
			if dup {
				dups++
			}
		}
		return errors.New("roll back")
	})
	if dups != len(want) {
		t.Fatalf("after a restart %d of %d ids are duplicates (%v)", dups, len(want), err)
	}
}

// A chunk whose count (in its header, outside the checksum) was damaged to fewer events is a
// DamagedError to a read starting inside it, as to one starting at it: its events are never
// skipped in silence. The damaged chunks are those of a sealed segment, which opening does not
// read: one followed by another chunk, one the segment's last.
func TestDamagedChunkCountIsReported(t *testing.T) {
	e := chunkEngine(t, 10)
	for range 4 { // segments of 10 events, each of two chunks of 5: keys 1, 6 | 11, 16
		err := e.Update(context.Background(), func(tx store.Tx) error {
			for n := range 5 {
				id, rec := testRecord(n)
				if _, _, err := tx.AppendEvent(id, rec, time.Now()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	path := e.Path()
	e.Close()
	pristine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		chunk, after uint64
		firstByte    bool // damage the format byte (the chunk then reads as neither kind of value)
	}{{1, 0, false}, {1, 3, false}, {6, 5, false}, {6, 8, false}, {1, 0, true}, {6, 3, true}} {
		if err := os.WriteFile(path, pristine, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			seg := tx.Bucket(bucketEvents).Bucket(seqKey(1))
			_, v := newSegmentCursor(seg).Seek(seqKey(c.chunk))
			v = bytes.Clone(v)
			if len(v) < 2 || !isChunk(v) || v[1] != 5 {
				return fmt.Errorf("key %d: not a chunk of 5 events", c.chunk)
			}
			if c.firstByte {
				v[0] = 0x07
			} else {
				v[1] = 2
			}
			return replaceChunk(seg, seqKey(c.chunk), v)
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		e, err := Open(path, Options{SegmentMaxEvents: 10})
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		err = e.View(context.Background(), func(tx store.ReadTx) error {
			return tx.ScanEvents(c.after, func(seq uint64, _ []byte) bool {
				seqs = append(seqs, seq)
				return true
			})
		})
		e.Close()
		if damaged := (*DamagedError)(nil); !errors.As(err, &damaged) {
			t.Errorf("chunk %d damaged (format byte: %v), events after %d: %v (seqs %v), want a DamagedError", c.chunk, c.firstByte, c.after, err, seqs)
		}
	}
}

// A group commit's events go in chunks of at most chunkMaxBytes of records each (a bbolt value
// is bounded, and one chunk per group would grow with the group): a commit of more is cut into
// several, read back whole.
func TestLargeCommitsAreCutIntoChunks(t *testing.T) {
	e := chunkEngine(t, 1_000_000)
	big := bytes.Repeat([]byte("x"), 900_000)
	// about 10.8 MB of records
	want := appendCommit(t, e, 12, func(n int) time.Time { return time.Unix(int64(n), 0) }, string(big))
	var keys int
	err := e.db.View(func(tx *bbolt.Tx) error {
		c := newSegmentCursor(tx.Bucket(bucketEvents).Bucket(seqKey(1)))
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n, err := chunkCount(v); err != nil || n*900_000 > chunkMaxBytes {
				return fmt.Errorf("a chunk of %d events of 900 kB: %v", n, err)
			}
			keys++
		}
		return nil
	})
	if err != nil || keys < 3 {
		t.Fatalf("%d chunks: %v", keys, err)
	}
	if err := e.View(context.Background(), func(tx store.ReadTx) error { scanAll(t, tx, want); return nil }); err != nil {
		t.Fatal(err)
	}
}

// A file whose buffer still holds events written one per key (schema 1 or 2) is legacy: bbolt
// keeps writing its freelist, which rebuilding at open would read all of them for; one of
// chunks only is not.
func TestLegacySegmentsKeepTheFreelistWritten(t *testing.T) {
	old, err := os.ReadFile("testdata/v1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v1.db")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if legacy, err := check(path); err != nil || !legacy {
		t.Fatalf("the schema 1 fixture: legacy %v, %v", legacy, err)
	}
	e := chunkEngine(t, 10)
	err = e.Update(context.Background(), func(tx store.Tx) error {
		id, rec := testRecord(1)
		_, _, err := tx.AppendEvent(id, rec, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if legacy, err := check(e.Path()); err != nil || legacy {
		t.Fatalf("a file of chunks: legacy %v, %v", legacy, err)
	}
}

// TestCommitsDoNotWaitForReads: a commit that grows the file well past its first size goes
// through while a read transaction (an export reading its events) is open. bbolt remaps a file
// that outgrows its map, which waits for every read transaction to end; the engine maps ahead.
func TestCommitsDoNotWaitForReads(t *testing.T) {
	e := chunkEngine(t, 1_000_000)
	reading, release := make(chan struct{}), make(chan struct{})
	go e.View(context.Background(), func(store.ReadTx) error {
		close(reading)
		<-release
		return nil
	})
	defer close(release)
	<-reading
	grown := make(chan error, 1)
	go func() {
		big := bytes.Repeat([]byte("x"), 1<<20)
		for n := range 64 { // 64 MiB of records, barely compressible: the file grows past 64 MiB
			err := e.Update(context.Background(), func(tx store.Tx) error {
				id := uuid.New()
				rec := event.Encode(event.Event{ID: id, EventTimestamp: time.Unix(int64(n), 0), Action: string(randomText(big))})
				_, _, err := tx.AppendEvent(id, rec, time.Now())
				return err
			})
			if err != nil {
				grown <- err
				return
			}
		}
		grown <- nil
	}()
	select {
	case err := <-grown:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("commits growing the file waited for the open read transaction")
	}
}

// randomText fills b with letters that do not compress, and returns it.
func randomText(b []byte) []byte {
	for i := range b {
		b[i] = 'a' + byte(rand.IntN(26))
	}
	return b
}
