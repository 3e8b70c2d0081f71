package bolt

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/store"
)

// modelEvent is a committed event as the model holds it.
type modelEvent struct {
	seq uint64
	id  uuid.UUID
	rec []byte
}

// TestTransactionsAgreeWithAModel: random transactions (appends of new and buffered ids, reads
// of their own appends from random points, trims, failures; restarts between them) on small
// segments store, deduplicate and read back what a list of the committed events says.
func TestTransactionsAgreeWithAModel(t *testing.T) {
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 7))
		e := chunkEngine(t, int64(3+rng.IntN(20)))
		var committed []modelEvent
		next := uint64(1)
		n := 0
		for round := range 150 {
			fail := rng.IntN(5) == 0
			work := append([]modelEvent(nil), committed...)
			wnext := next
			err := e.Update(context.Background(), func(tx store.Tx) error {
				if rng.IntN(6) == 0 && len(work) > 0 {
					through := work[rng.IntN(len(work))].seq
					if _, err := tx.TrimEvents(store.TrimPolicy{ExportedThrough: through, ExportedBefore: time.Now().Add(time.Hour), DropBefore: time.Unix(0, 0)}); err != nil {
						return err
					}
					st, err := tx.EventStats()
					if err != nil {
						return err
					}
					for len(work) > 0 && (st.Events == 0 || work[0].seq < st.Oldest) {
						work = work[1:]
					}
				}
				steps := rng.IntN(4)
				for range steps {
					for range rng.IntN(15) {
						var id uuid.UUID
						var rec []byte
						dupWant := false
						if len(work) > 0 && rng.IntN(5) == 0 {
							m := work[rng.IntN(len(work))]
							id, rec, dupWant = m.id, m.rec, true
						} else {
							id, rec = testRecord(n)
							n++
						}
						seq, dup, err := tx.AppendEvent(id, rec, time.Now())
						if err != nil {
							return err
						}
						if dup != dupWant {
							t.Fatalf("seed %d round %d: dup %v want %v", seed, round, dup, dupWant)
						}
						if !dup {
							if seq != wnext {
								t.Fatalf("seed %d round %d: seq %d want %d", seed, round, seq, wnext)
							}
							wnext++
							work = append(work, modelEvent{seq, id, rec})
						}
					}
					if len(work) > 0 {
						checkScan(t, tx, work, rng)
					}
				}
				if fail {
					return errors.New("fail")
				}
				return nil
			})
			if fail {
				if err == nil {
					t.Fatal("no failure")
				}
				continue
			}
			if err != nil {
				t.Fatalf("seed %d round %d: %v", seed, round, err)
			}
			committed, next = work, wnext
			if err := e.View(context.Background(), func(tx store.ReadTx) error {
				if len(committed) > 0 {
					checkScan(t, tx, committed, rng)
				}
				st, _ := tx.EventStats()
				size := int64(0)
				for _, m := range committed {
					size += int64(len(m.rec))
				}
				if st.Events != int64(len(committed)) || st.Bytes != size {
					t.Fatalf("seed %d round %d: stats %d events of %d bytes, model %d of %d", seed, round, st.Events, st.Bytes, len(committed), size)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(20) == 0 {
				path := e.Path()
				e.Close()
				var err error
				e, err = Open(path, e.opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.Close() })
			}
		}
	}
}

// checkScan reads the events after random points of work, each read stopping at random, and
// compares them with work.
func checkScan(t *testing.T, tx store.ReadTx, work []modelEvent, rng *rand.Rand) {
	t.Helper()
	for range 5 {
		i := rng.IntN(len(work) + 1)
		after := uint64(0)
		if i > 0 {
			after = work[i-1].seq
		}
		j := i
		err := tx.ScanEvents(after, func(seq uint64, rec []byte) bool {
			if j >= len(work) || work[j].seq != seq || !bytes.Equal(work[j].rec, rec) {
				t.Fatalf("after %d: got %d, want index %d of %d", after, seq, j, len(work))
			}
			j++
			return rng.IntN(50) > 0
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
