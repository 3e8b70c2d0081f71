package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/recordblock"
)

// TestChunkHours: the runs of event hours come from the chunks' headers where a chunk's events
// share an hour (a chunk whose block is unreadable but whose checksum holds is not decoded for
// them), from its events where they do not, and the same from chunks of schema 3, which keep
// no hour; a damaged hour is damage, never a wrong run.
func TestChunkHours(t *testing.T) {
	e := chunkEngine(t, 8)
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	n := 0
	for _, commit := range []struct {
		start time.Time
		count int
		step  time.Duration
	}{{at, 5, time.Second}, {at.Add(59*time.Minute + 30*time.Second), 6, 20 * time.Second}, {at.Add(3 * time.Hour), 12, time.Second}} {
		n += len(appendCommit(t, e, commit.count, func(i int) time.Time { return commit.start.Add(time.Duration(i) * commit.step) }, "QUERY"))
	}
	truth := runsOfEvents(t, e, uint64(n))
	if got := scannedRuns(t, e, 0, uint64(n)); !reflect.DeepEqual(got, truth) {
		t.Fatalf("runs from the chunks:\n%+v\nfrom the events:\n%+v", got, truth)
	}
	shared, spanning := 0, 0
	rewrite(t, e, func(v []byte) []byte {
		if h, err := parseChunk(v); err == nil && h.sharedHour {
			shared++
		} else {
			spanning++
		}
		return v
	})
	if shared == 0 || spanning == 0 {
		t.Fatalf("%d chunks of one hour, %d spanning hours: want some of each", shared, spanning)
	}

	// Chunks of schema 3 (no hour, no bytes) give the same runs.
	rewrite(t, e, func(v []byte) []byte { return schema3Chunk(t, v) })
	if got := scannedRuns(t, e, 0, uint64(n)); !reflect.DeepEqual(got, truth) {
		t.Fatalf("runs from chunks of schema 3:\n%+v\nwant\n%+v", got, truth)
	}
	rewrite(t, e, func(v []byte) []byte { // back to schema 4
		records := chunkRecords(t, v)
		out, _ := encodeChunk(nil, nil, records)
		return out
	})

	// A chunk of one hour whose block no longer decodes, its checksum made to hold: the runs
	// still come, from its header, and its events do not.
	rewrite(t, e, func(v []byte) []byte {
		if h, err := parseChunk(v); err != nil || !h.sharedHour {
			return v
		}
		v = append([]byte(nil), v...)
		v[len(v)-1] ^= 0xFF
		return resum(v)
	})
	if got := scannedRuns(t, e, 0, uint64(n)); !reflect.DeepEqual(got, truth) {
		t.Fatalf("runs with undecodable blocks:\n%+v\nwant\n%+v", got, truth)
	}
	if err := e.View(context.Background(), func(tx store.ReadTx) error {
		return tx.ScanEvents(0, func(uint64, []byte) bool { return true })
	}); err == nil {
		t.Fatal("the events of the undecodable blocks were read")
	}

	// A damaged hour fails its checksum.
	rewrite(t, e, func(v []byte) []byte {
		if h, err := parseChunk(v); err != nil || !h.sharedHour {
			return v
		}
		v = append([]byte(nil), v...)
		_, size := binary.Uvarint(v[1:])
		v[1+size+4+1] ^= 0x02 // the hour's varint
		return v
	})
	err := e.View(context.Background(), func(tx store.ReadTx) error {
		return tx.(store.EventHourReader).ScanEventHours(0, uint64(n), func(store.HourRun) bool { return true })
	})
	if damaged := (*DamagedError)(nil); !errors.As(err, &damaged) {
		t.Fatalf("a damaged hour: %v, want a DamagedError", err)
	}
}

// scannedRuns lists ScanEventHours' runs of (after, to], joined where they continue one another.
func scannedRuns(t *testing.T, e *Engine, after, to uint64) []store.HourRun {
	t.Helper()
	var runs []store.HourRun
	err := e.View(context.Background(), func(tx store.ReadTx) error {
		return tx.(store.EventHourReader).ScanEventHours(after, to, func(r store.HourRun) bool {
			if n := len(runs); n > 0 && runs[n-1].Hour == r.Hour && runs[n-1].Last+1 == r.First {
				runs[n-1].Last, runs[n-1].Bytes = r.Last, runs[n-1].Bytes+r.Bytes
			} else {
				runs = append(runs, r)
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// runsOfEvents is the runs of events 1 to to, from each event.
func runsOfEvents(t *testing.T, e *Engine, to uint64) []store.HourRun {
	t.Helper()
	var runs []store.HourRun
	err := e.View(context.Background(), func(tx store.ReadTx) error {
		return tx.ScanEvents(0, func(seq uint64, rec []byte) bool {
			r, err := store.HourRunOf(seq, rec)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(runs); n > 0 && runs[n-1].Hour == r.Hour {
				runs[n-1].Last, runs[n-1].Bytes = r.Last, runs[n-1].Bytes+r.Bytes
			} else {
				runs = append(runs, r)
			}
			return seq < to
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// rewrite replaces every chunk value of e's segments by change's.
func rewrite(t *testing.T, e *Engine, change func(v []byte) []byte) {
	t.Helper()
	err := e.db.Update(func(tx *bbolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		return events.ForEachBucket(func(k []byte) error {
			seg := events.Bucket(k)
			changed := map[string][]byte{}
			c := newSegmentCursor(seg)
			for k, v := c.First(); k != nil; k, v = c.Next() {
				changed[string(k)] = change(append([]byte(nil), v...))
			}
			for k, v := range changed {
				if err := replaceChunk(seg, []byte(k), v); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// replaceChunk puts v in place of the chunk under key k of seg, where it is: in its own bucket
// or in the segment's.
func replaceChunk(seg *bbolt.Bucket, k, v []byte) error {
	if b := seg.Bucket(k); b != nil {
		return b.Put(valueKey, v)
	}
	return seg.Put(k, v)
}

// chunkRecords decodes a chunk value into copies of its records.
func chunkRecords(t *testing.T, v []byte) [][]byte {
	t.Helper()
	h, err := parseChunk(v)
	if err == nil {
		var records [][]byte
		err = decodeBlock(h, new([]byte), func(_ uint64, rec []byte) bool {
			records = append(records, append([]byte(nil), rec...))
			return true
		})
		if err == nil {
			return records
		}
	}
	t.Fatal(err)
	return nil
}

// schema3Chunk re-encodes a chunk as schema 3 wrote it: no hour, no bytes.
func schema3Chunk(t *testing.T, v []byte) []byte {
	t.Helper()
	records := chunkRecords(t, v)
	out := binary.AppendUvarint([]byte{formatChunk}, uint64(len(records)))
	out = append(out, 0, 0, 0, 0)
	out, _ = recordblock.Append(out, nil, records)
	return resum(out)
}

// resum sets a chunk's checksum to what its contents make it.
func resum(v []byte) []byte {
	_, size := binary.Uvarint(v[1:])
	checked := 1 + size + 4
	binary.BigEndian.PutUint32(v[checked-4:checked], crc32.Checksum(v[checked:], castagnoli))
	return v
}

// TestScanEventHoursKeepsItsTransactionShort: one scan covers about hourScanEvents events, even
// of one hour (one run), and ends at a run's end, from which the next goes on.
func TestScanEventHoursKeepsItsTransactionShort(t *testing.T) {
	e := chunkEngine(t, 1<<20)
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	const n = 3*hourScanEvents + 100
	for first := 0; first < n; first += 4000 {
		appendCommit(t, e, min(4000, n-first), func(i int) time.Time { return at.Add(time.Duration(first+i) * time.Millisecond) }, "QUERY")
	}
	var after uint64
	scans := 0
	for after < n {
		var last uint64
		err := e.View(context.Background(), func(tx store.ReadTx) error {
			return tx.(store.EventHourReader).ScanEventHours(after, n, func(r store.HourRun) bool {
				if r.First <= after || last != 0 && r.First != last+1 {
					t.Fatalf("run %+v after %d, the last run ending at %d", r, after, last)
				}
				last = r.Last
				return true
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if covered := last - after; last == 0 || covered > hourScanEvents+4000 || last < n && covered < hourScanEvents {
			t.Fatalf("a scan after %d covered %d events, to %d", after, covered, last)
		}
		after, scans = last, scans+1
	}
	if scans < 3 {
		t.Fatalf("%d scans covered %d events", scans, n)
	}
}

// appendCommit appends count events in one transaction, event i at eventTime(i) with action,
// and returns their records.
func appendCommit(t *testing.T, e *Engine, count int, eventTime func(i int) time.Time, action string) [][]byte {
	t.Helper()
	return appendRecords(t, e, count, func(i int, id uuid.UUID) []byte {
		return event.Encode(event.Event{ID: id, EventTimestamp: eventTime(i), Action: action})
	})
}

// appendRecords appends count events in one commit, record(i, id) the i-th, and returns their
// records.
func appendRecords(t *testing.T, e *Engine, count int, record func(i int, id uuid.UUID) []byte) [][]byte {
	t.Helper()
	var records [][]byte
	err := e.Update(context.Background(), func(tx store.Tx) error {
		records = records[:0]
		for i := range count {
			id := uuid.New()
			rec := record(i, id)
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
