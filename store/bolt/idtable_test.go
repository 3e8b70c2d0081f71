package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/store"
)

// TestIDTableAgreesWithAMap: random puts and removes, the zero id and ids sharing slots among
// them, leave the table holding exactly what a map holds.
func TestIDTableAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var table idTable
	want := map[uuid.UUID]uint64{}
	var ids []uuid.UUID
	newID := func() uuid.UUID {
		var id uuid.UUID
		if rng.IntN(100) > 0 {
			for i := range id {
				id[i] = byte(rng.Uint32())
			}
		}
		return id
	}
	seq := uint64(0)
	for range 200_000 {
		switch op := rng.IntN(10); {
		case op < 6 || len(ids) == 0:
			id := newID()
			if _, held := want[id]; held {
				continue
			}
			seq++
			table.put(id, seq)
			want[id] = seq
			ids = append(ids, id)
		default:
			i := rng.IntN(len(ids))
			id := ids[i]
			ids[i] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
			table.remove(id)
			delete(want, id)
			table.remove(id) // removing an absent id changes nothing
		}
	}
	if table.n != len(want) {
		t.Fatalf("table holds %d ids, want %d", table.n, len(want))
	}
	for id, seq := range want {
		if got, ok := table.get(id); !ok || got != seq {
			t.Fatalf("get(%v) = %d %v, want %d", id, got, ok, seq)
		}
	}
	for range 10_000 {
		if id := newID(); want[id] == 0 {
			if _, ok := table.get(id); ok {
				t.Fatalf("get(%v) found an id never put or removed", id)
			}
		}
	}
	if got := table.between(1, seq); len(got) != len(want) {
		t.Fatalf("between lists %d ids, want %d", len(got), len(want))
	}

	// Dropping a range of seqs, as a seal does, leaves exactly the others.
	first, last := seq/3, 2*seq/3
	table.dropBetween(first, last)
	for id, s := range want {
		got, ok := table.get(id)
		if in := s >= first && s <= last; in == ok || ok && got != s {
			t.Fatalf("after dropping seqs %d-%d: get(%v) = %d %v; its seq is %d", first, last, id, got, ok, s)
		}
		if s >= first && s <= last {
			delete(want, id)
		}
	}
	if table.n != len(want) {
		t.Fatalf("table holds %d ids after the drop, want %d", table.n, len(want))
	}
}

// Fingerprints added all at once (a seal) are the multiset that adding them one by one makes.
func TestFingerprintsAddedAllAtOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var one, all fingerprints
	for round := range 4 {
		ids := make([]uuid.UUID, 10_000+round*30_000)
		for i := range ids {
			for j := range ids[i] {
				ids[i][j] = byte(rng.Uint32())
			}
		}
		ids[1] = ids[0] // an id twice: held twice
		for _, id := range ids {
			one.add(fingerprintOf(id))
		}
		all.addAll(ids)
		if all.used != one.used {
			t.Fatalf("round %d: %d fingerprints held, want %d", round, all.used, one.used)
		}
		for _, id := range ids {
			if !all.mayContain(fingerprintOf(id)) {
				t.Fatalf("round %d: a fingerprint added is missing", round)
			}
		}
		all.remove(fingerprintOf(ids[0]))
		if !all.mayContain(fingerprintOf(ids[1])) {
			t.Fatalf("round %d: a fingerprint added twice was removed by one removal", round)
		}
		all.remove(fingerprintOf(ids[1]))
		one.remove(fingerprintOf(ids[0]))
		one.remove(fingerprintOf(ids[1]))
	}
}

// TestAbortedAppendsAreForgotten: the ids a transaction appended before it failed are not
// taken for duplicates afterwards.
func TestAbortedAppendsAreForgotten(t *testing.T) {
	e, err := Open(filepath.Join(t.TempDir(), "a.db"), Options{SegmentMaxEvents: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ids := make([]uuid.UUID, 5)
	for i := range ids {
		ids[i] = uuid.New()
	}
	appendAll := func(tx store.Tx) (dups int, err error) {
		for _, id := range ids {
			_, dup, err := tx.AppendEvent(id, event.Encode(event.Event{ID: id, EventTimestamp: time.Now()}), time.Now())
			if err != nil {
				return dups, err
			}
			if dup {
				dups++
			}
		}
		return dups, nil
	}
	failed := errors.New("fails")
	if err := e.Update(context.Background(), func(tx store.Tx) error {
		appendAll(tx)
		return failed
	}); !errors.Is(err, failed) {
		t.Fatalf("update: %v", err)
	}
	var dups int
	if err := e.Update(context.Background(), func(tx store.Tx) (err error) {
		dups, err = appendAll(tx)
		return err
	}); err != nil || dups != 0 {
		t.Fatalf("after an aborted transaction: %d duplicates, %v", dups, err)
	}
	if err := e.Update(context.Background(), func(tx store.Tx) (err error) {
		dups, err = appendAll(tx)
		return err
	}); err != nil || dups != len(ids) {
		t.Fatalf("after the committed one: %d duplicates of %d, %v", dups, len(ids), err)
	}
}

// TestSortedIDsAreInByteOrder: a sealed segment's ids are sorted as bytes.Compare orders them
// (containsID searches them so): random ones, ones sharing many of their bytes, and time-
// ordered ones (version 7, sharing their first bits), in a segment large enough to be sorted
// by buckets and in one too small to be.
func TestSortedIDsAreInByteOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	kinds := map[string]func(i int) uuid.UUID{
		"random": func(int) uuid.UUID {
			var id uuid.UUID
			for j := range id {
				id[j] = byte(rng.Uint32())
			}
			return id
		},
		"few byte values": func(int) uuid.UUID {
			var id uuid.UUID
			for j := range id {
				id[j] = byte(rng.IntN(3))
			}
			return id
		},
		"time-ordered": func(i int) uuid.UUID {
			var id uuid.UUID // version 7: 48 bits of milliseconds, here 100 events in each
			binary.BigEndian.PutUint64(id[8:], rng.Uint64())
			binary.BigEndian.PutUint64(id[:8], uint64(1_790_000_000_000+i/100)<<16|0x7000|uint64(rng.IntN(1<<12)))
			return id
		},
	}
	for name, gen := range kinds {
		for _, n := range []int{100, 70_000} {
			ids := make([]uuid.UUID, 0, n)
			for i := range n {
				ids = append(ids, gen(i))
			}
			sorted := sortedIDs(slices.Clone(ids))
			slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
			var want []byte
			for _, id := range ids {
				want = append(want, id[:]...)
			}
			if !bytes.Equal(sorted, want) {
				t.Fatalf("%s ids, %d of them: sortedIDs does not order as bytes.Compare", name, n)
			}
			for _, id := range ids[:100] {
				if !containsID(sorted, id) {
					t.Fatalf("containsID does not find %v", id)
				}
			}
		}
	}
}
