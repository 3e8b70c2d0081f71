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
	return appendRecords(t, e, count, func(_ int, id uuid.UUID) []byte {
		noise := make([]byte, 1500)
		for i := range noise {
			noise[i] = byte(rng.Uint32())
		}
		return event.Encode(event.Event{ID: id, EventTimestamp: time.Unix(1_800_000_000, 0), Action: hex.EncodeToString(noise)})
	})
}

// reopen closes e and opens its file again.
func reopen(t *testing.T, e *Engine, opts Options) *Engine {
	t.Helper()
	path := e.Path()
	e.Close()
	e, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
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
			moved, err := inlineValues(events.Bucket(k))
			if moved == 0 && err == nil {
				t.Error("no chunk in a bucket of its own")
			}
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// storedBytes is the size of every chunk and every sealed segment's ids in e.
func storedBytes(t *testing.T, e *Engine) (total int64) {
	t.Helper()
	err := e.db.View(func(tx *bbolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		if err := events.ForEachBucket(func(k []byte) error {
			c := newSegmentCursor(events.Bucket(k))
			for k, v := c.First(); k != nil; k, v = c.Next() {
				total += int64(len(v))
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketEventIDs).ForEachBucket(func(k []byte) error {
			total += int64(len(segmentIDs(tx, k)))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// A sealed segment's ids (a megabyte for 65,536 events) are written once, in a bucket of their
// own: kept side by side in one bucket, each seal wrote again those of the segments sealed
// before it.
func TestSegmentIDsAreWrittenOnce(t *testing.T) {
	e := chunkEngine(t, 2000) // a segment's ids: 32,000 bytes
	pageAlloc := func() int64 {
		stats := e.db.Stats()
		return stats.TxStats.GetPageAlloc()
	}
	before := pageAlloc()
	const commits = 9 // each fills a segment; the next seals it
	for c := range commits {
		appendCommit(t, e, 2000, func(i int) time.Time { return time.Unix(int64(c*2000+i), 0) }, "QUERY")
	}
	allocated := pageAlloc() - before
	stored := storedBytes(t, e)
	if allowed := stored + commits*8*4096; allocated > allowed {
		t.Errorf("%d commits storing %d bytes of chunks and ids allocated %d bytes of pages, want at most %d", commits, stored, allocated, allowed)
	}
}

// inlineValues moves every value of b that is in a bucket of its own into b, as schema 4 kept
// them, and returns how many it moved.
func inlineValues(b *bbolt.Bucket) (int, error) {
	var keys [][]byte
	if err := b.ForEachBucket(func(k []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	}); err != nil {
		return 0, err
	}
	for _, k := range keys {
		v := append([]byte(nil), getValue(b, k)...)
		if err := b.DeleteBucket(k); err != nil {
			return 0, err
		}
		if err := b.Put(k, v); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// Sealed segments' ids where schema 4 kept them (in bucketEventIDs itself) still deduplicate
// once reopened, and are trimmed with their segments.
func TestSegmentIDsOfSchema4(t *testing.T) {
	e := chunkEngine(t, 300) // a segment's ids: 4,800 bytes, in a bucket of their own
	var records [][]byte
	for c := range 3 {
		records = append(records, appendCommit(t, e, 300, func(i int) time.Time { return time.Unix(int64(c*300+i), 0) }, "QUERY")...)
	}
	err := e.db.Update(func(tx *bbolt.Tx) error { // back to schema 4's place
		moved, err := inlineValues(tx.Bucket(bucketEventIDs))
		if moved != 2 && err == nil {
			t.Errorf("%d sealed segments' ids in buckets, want 2", moved)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e = reopen(t, e, Options{SegmentMaxEvents: 300})
	appendAgain := func(rec []byte) (dup bool) {
		err := e.Update(context.Background(), func(tx store.Tx) error {
			id, _ := event.IDOf(rec)
			_, dup, err = tx.AppendEvent(id, rec, time.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return dup
	}
	for _, i := range []int{0, 450} { // in the two sealed segments
		if !appendAgain(records[i]) {
			t.Fatalf("event %d, in a sealed segment of schema 4, appended again", i+1)
		}
	}
	err = e.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.TrimEvents(store.TrimPolicy{ExportedThrough: 600, ExportedBefore: time.Now().Add(time.Hour), DropBefore: time.Unix(0, 0)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if appendAgain(records[0]) {
		t.Fatal("event 1, trimmed with its segment, is still taken for a duplicate")
	}
}

// Values smaller than a page (a chunk of a few events, a small segment's ids) stay in their
// segment's bucket, several to a leaf page, as schema 4 kept them: a bucket of their own would
// take a page each, or be kept inline with a bucket's overhead, and trimming would delete them
// one by one.
func TestSmallValuesShareTheirBucket(t *testing.T) {
	e := chunkEngine(t, 10)
	var want [][]byte
	for c := range 25 {
		want = append(want, appendCommit(t, e, 1, func(int) time.Time { return time.Unix(int64(c), 0) }, "QUERY")...)
	}
	err := e.db.View(func(tx *bbolt.Tx) error {
		nested := 0
		count := func(k []byte) error { nested++; return nil }
		events := tx.Bucket(bucketEvents)
		if err := events.ForEachBucket(func(k []byte) error { return events.Bucket(k).ForEachBucket(count) }); err != nil {
			return err
		}
		if err := tx.Bucket(bucketEventIDs).ForEachBucket(count); err != nil {
			return err
		}
		if nested != 0 {
			t.Errorf("%d small chunks or small segments' ids in buckets of their own, want none", nested)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = e.View(context.Background(), func(tx store.ReadTx) error {
		scanAll(t, tx, want)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
