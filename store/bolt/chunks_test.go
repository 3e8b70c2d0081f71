package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

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
