package postgres

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The index against a model (every held chunk's ids): each buffered id is found among the
// candidates, with its chunk; an id of a trimmed chunk or never added mostly is not; the table
// stays within its bounds through growth, trims, shrinking and renumbering.
func TestIDIndexAgreesWithAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	newID := func() uuid.UUID {
		var id uuid.UUID
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		return id
	}
	var x idIndex
	type modelChunk struct {
		last uint64
		ids  []uuid.UUID
	}
	var model []modelChunk // held chunks, oldest first
	var head uint64
	trimmed := map[uuid.UUID]bool{}
	for step := range 3000 {
		switch op := rng.IntN(10); {
		case op < 6: // a commit of one chunk or a few
			after := head
			var chunks []idChunk
			for range 1 + rng.IntN(3) {
				n := 1 + rng.IntN(300)
				c := idChunk{last: head + uint64(n)}
				m := modelChunk{last: c.last}
				for range n {
					id := newID()
					c.ids, m.ids = append(c.ids, id), append(m.ids, id)
				}
				head = c.last
				chunks, model = append(chunks, c), append(model, m)
			}
			x.add(after, chunks, 0)
		case op < 8: // a trim of the oldest chunks
			k := rng.IntN(len(model) + 1)
			for _, c := range model[:k] {
				for _, id := range c.ids {
					trimmed[id] = true
				}
			}
			model = model[k:]
			oldest := head + 1
			if len(model) > 0 {
				oldest = model[0].last - uint64(len(model[0].ids)) + 1
			}
			x.expire(oldest, head)
		default: // renumbering soon
			x.mu.Lock()
			x.numbered = max(x.numbered, 1<<30-uint32(rng.IntN(3)))
			x.mu.Unlock()
		}
		var live int
		for _, c := range model {
			live += len(c.ids)
		}
		slots, held := x.sizes()
		if held != live || (slots > 64 && slots > 8*max(live, 1024)) || x.used*4 > slots*3 || x.synced != head {
			t.Fatalf("step %d: %d slots (%d used), %d held, synced %d; want %d held, synced %d", step, slots, x.used, held, x.synced, live, head)
		}
		if step%50 != 0 {
			continue
		}
		for _, c := range model {
			for _, id := range c.ids[:min(len(c.ids), 5)] {
				if _, chunks := x.candidates([]uuid.UUID{id}); !slices.Contains(chunks, int64(c.last)) {
					t.Fatalf("step %d: id of chunk %d not found: %v", step, c.last, chunks)
				}
			}
		}
		var falsePositives int
		for id := range trimmed {
			if _, chunks := x.candidates([]uuid.UUID{id}); len(chunks) > 0 {
				falsePositives++
			}
		}
		if falsePositives > 1+len(trimmed)/1000 {
			t.Fatalf("step %d: %d of %d trimmed ids still candidates", step, falsePositives, len(trimmed))
		}
	}
}

// A database that went back (its head below what the index has synced) empties the index, and a
// sync that began before a reset holds nothing.
func TestIDIndexResetsWhenTheDatabaseGoesBack(t *testing.T) {
	var x idIndex
	id, other := uuid.New(), uuid.New()
	x.add(0, []idChunk{{last: 10, ids: [][16]byte{other, id}}}, 10)
	if at, chunks := x.candidates([]uuid.UUID{id}); !slices.Equal(chunks, []int64{10}) || at != (syncPoint{10, id, true}) {
		t.Fatalf("at %+v, candidates %v", at, chunks)
	}
	// Chunks up to a head past the last held one were trimmed: nothing to anchor to.
	x.add(10, nil, 11)
	if at, _ := x.candidates(nil); at.seq != 11 || at.anchored {
		t.Fatalf("synced through a trimmed chunk: at %+v", at)
	}
	x.add(11, []idChunk{{last: 12, ids: [][16]byte{other}}}, 12)
	if at, _ := x.candidates(nil); at != (syncPoint{12, other, true}) {
		t.Fatalf("at %+v", at)
	}
	x.expire(1, 5)
	if at, chunks := x.candidates([]uuid.UUID{id}); at.seq != 0 || at.anchored || len(chunks) != 0 {
		t.Fatalf("after the database went back: at %+v, candidates %v", at, chunks)
	}
	x.add(12, []idChunk{{last: 14, ids: [][16]byte{id}}}, 14)
	if at, _ := x.candidates(nil); at.seq != 0 {
		t.Fatalf("a sync from before the reset was held: at %+v", at)
	}
}

// Group commits of one replica use its index at once: every method takes the index's mutex.
func TestIDIndexIsSafeForConcurrentUse(t *testing.T) {
	var x idIndex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				id := uuid.New()
				at := x.position()
				x.add(at.seq, []idChunk{{last: at.seq + 1, ids: [][16]byte{id}}}, 0)
				x.candidates([]uuid.UUID{id})
				x.stale(time.Second)
				switch (g + i) % 50 {
				case 0:
					x.forget()
				case 1:
					x.expire(x.position().seq, x.position().seq)
				}
			}
		})
	}
	wg.Wait()
}
