package bolt

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/store"
)

// appendDistinct appends count events whose actions differ and hardly compress, in one commit,
// and returns their records.
func appendDistinct(t *testing.T, e *Engine, rng *rand.Rand, count int) [][]byte {
	t.Helper()
	var records [][]byte
	err := e.Update(context.Background(), func(tx store.Tx) error {
		records = records[:0]
		for range count {
			id := uuid.New()
			noise := make([]byte, 1500)
			for i := range noise {
				noise[i] = byte(rng.Uint32())
			}
			rec := event.Encode(event.Event{ID: id, EventTimestamp: time.Unix(1_800_000_000, 0), Action: hex.EncodeToString(noise)})
			if _, _, err := tx.AppendEvent(id, rec, time.Now()); err != nil {
				return err
			}
			records = append(records, rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return records
}

// chunkBytes is the size of every chunk value of e's first segment.
func chunkBytes(t *testing.T, e *Engine) (total int64) {
	t.Helper()
	err := e.db.View(func(tx *bbolt.Tx) error {
		c := newSegmentCursor(tx.Bucket(bucketEvents).Bucket(seqKey(1)))
		for k, v := c.First(); k != nil; k, v = c.Next() {
			total += int64(len(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// Each chunk's pages are written once. bbolt keeps at least two values in a leaf and rewrites a
// whole leaf when a key is added to it, so chunks kept in the segment's own bucket (schema 4)
// were written again by each of the next few commits: the commits' pages came to about five
// times the chunks' bytes, which a group commit, ingestion's serial part, allocated, copied,
// wrote and synced.
func TestChunksAreWrittenOnce(t *testing.T) {
	e := chunkEngine(t, 1_000_000)
	rng := rand.New(rand.NewPCG(1, 2))
	pageAlloc := func() int64 {
		stats := e.db.Stats()
		return stats.TxStats.GetPageAlloc()
	}
	before := pageAlloc()
	for range 40 {
		appendDistinct(t, e, rng, 20) // a chunk of about 40 kB: ten pages
	}
	allocated := pageAlloc() - before
	chunks := chunkBytes(t, e)
	// Each chunk's last page is partly empty, and each commit writes the segment's last leaf,
	// its description and the next seq: at most a few pages a commit beside its chunk.
	if allowed := chunks + 40*4*4096; allocated > allowed {
		t.Errorf("40 commits of %d bytes of chunks allocated %d bytes of pages, want at most %d", chunks, allocated, allowed)
	}
}

// A file of schema 4 keeps its chunks in the segments' buckets; schema 5 adds chunks in buckets
// of their own to the same open segment. Both read back as one run of events, from any point,
// and the hours scan and the file check read both.
func TestChunksOfSchema4AndSchema5ReadTogether(t *testing.T) {
	e := chunkEngine(t, 1_000_000)
	rng := rand.New(rand.NewPCG(3, 4))
	var want [][]byte
	for range 3 {
		want = append(want, appendDistinct(t, e, rng, 4)...)
	}
	inlineChunks(t, e) // as schema 4 wrote them
	for range 3 {
		want = append(want, appendDistinct(t, e, rng, 4)...)
	}
	path := e.Path()
	e.Close()
	if err := Check(path); err != nil {
		t.Fatalf("check: %v", err)
	}
	e, err := Open(path, Options{SegmentMaxEvents: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	err = e.View(context.Background(), func(tx store.ReadTx) error {
		scanAll(t, tx, want)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runs := scannedRuns(t, e, 0, uint64(len(want)))
	if len(runs) != 1 || runs[0].First != 1 || runs[0].Last != uint64(len(want)) {
		t.Fatalf("runs of hours: %+v, want one run of events 1-%d", runs, len(want))
	}
}

// inlineChunks moves every chunk of e's segments out of its bucket into the segment's, as
// schema 4 wrote them.
func inlineChunks(t *testing.T, e *Engine) {
	t.Helper()
	err := e.db.Update(func(tx *bbolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		return events.ForEachBucket(func(k []byte) error {
			seg := events.Bucket(k)
			var keys [][]byte
			if err := seg.ForEachBucket(func(k []byte) error {
				keys = append(keys, append([]byte(nil), k...))
				return nil
			}); err != nil {
				return err
			}
			for _, k := range keys {
				v := append([]byte(nil), seg.Bucket(k).Get(chunkValueKey)...)
				if err := seg.DeleteBucket(k); err != nil {
					return err
				}
				if err := seg.Put(k, v); err != nil {
					return err
				}
			}
			if len(keys) == 0 {
				t.Error("no chunk in a bucket of its own")
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
