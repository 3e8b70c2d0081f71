package bolt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/storetest"
	bbolt "go.etcd.io/bbolt"
)

// A damaged page among the buffered events is refused at start, or met when the events are
// read: either way a DamagedError naming the file, reported once, and never a crash. Two kinds:
// a page of events that claims another page id (bbolt's own check, which Check and Open make at
// start: bbolt's freelist rebuild would otherwise crash on it), and bytes changed inside a chunk
// of events (its checksum, met when an export reads it).
func TestDamagedEventPagesAreReported(t *testing.T) {
	t.Run("page header", func(t *testing.T) {
		testDamage(t, func(page []byte) { copy(page, []byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}) }, true)
	})
	t.Run("chunk bytes", func(t *testing.T) { testDamage(t, func(page []byte) { page[2048] ^= 0xff }, false) })
}

func testDamage(t *testing.T, damage func(page []byte), atStart bool) {
	path := filepath.Join(t.TempDir(), "auditexport.db")
	key := storetest.Key()
	// Segments of 10,000 events, each of 40 chunks (a chunk per append): the damage goes into a
	// sealed segment, which opening does not read, inside it (the check reads its ends).
	opts := bolt.Options{SegmentMaxEvents: 10_000}
	st := storetest.OpenBolt(t, path, store.Config{MasterKey: key}, opts)
	var d event.Decoder
	for i := range 100 {
		batch, err := d.NDJSON(eventtest.NDJSON(i*250, 250, time.Now(), time.Millisecond), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AppendEvents(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	pristine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The pages of chunks of events (leaves with overflow pages) in use. Damage the check at
	// start catches is refused by Check and by Open; otherwise it is met when the events are
	// read.
	var damaged *bolt.DamagedError
	found := false
	for i, id := range chunkPages(t, path, pristine) {
		off := id * pageSize
		data := bytes.Clone(pristine)
		damage(data[off : off+pageSize])
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := bolt.Check(path)
		if err != nil && (!errors.As(err, &damaged) || damaged.Path != path) {
			t.Fatalf("Check: %v, want a DamagedError naming the file", err)
		}
		if atStart {
			if err == nil {
				t.Fatalf("page %d damaged: Check passed", id)
			}
			if _, err := bolt.Open(path, opts); !errors.As(err, &damaged) || damaged.Path != path {
				t.Fatalf("page %d damaged: Open: %v, want a DamagedError naming the file", id, err)
			}
			if i == 8 { // enough pages
				return
			}
			continue
		}
		if found = err == nil; found {
			break
		}
	}
	if atStart {
		return
	}
	if !found {
		t.Fatal("every damaged page was refused at start: none left to meet at run time")
	}
	var reported atomic.Int32
	opts.OnDamage = func(error) { reported.Add(1) }
	engine, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	st, err = store.New(t.Context(), engine, store.Config{MasterKey: key, NoTrimLoop: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for range 2 {
		err = st.ReadEvents(t.Context(), 0, 0, func(uint64, []byte) bool { return true })
		if !errors.As(err, &damaged) || damaged.Path != path || !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("reading damaged events: %v, want a DamagedError", err)
		}
	}
	if err := st.Ready(t.Context()); !errors.As(err, &damaged) {
		t.Fatalf("ready with a damaged file: %v", err)
	}
	t.Log("met while reading:", damaged)
	if reported.Load() != 1 {
		t.Fatalf("damage reported %d times, want once", reported.Load())
	}
}

const pageSize = 4096

// chunkPages lists the ids of the pages of chunks of events in use in the file, those of the
// middle half first.
func chunkPages(t *testing.T, path string, file []byte) []int {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, PreLoadFreelist: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var middle, rest []int
	err = db.View(func(tx *bbolt.Tx) error {
		pages := min(int(tx.Size()), len(file)) / pageSize
		for id := 2; id < pages; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			if info.Type == "leaf" && info.OverflowCount > 0 && isChunkPage(file[id*pageSize:(id+1)*pageSize]) {
				if id > pages/4 && id < pages*3/4 {
					middle = append(middle, id)
				} else {
					rest = append(rest, id)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return append(middle, rest...)
}

// isChunkPage reports whether the page is a leaf whose first value is a chunk of events: the
// leaf's first element, after the page's header, gives the value's position.
func isChunkPage(page []byte) bool {
	const pageHeader, element = 16, 16
	const chunkSchema3, chunkSchema4 = 0xC1, 0xC2 // the chunks' format bytes
	if len(page) < pageHeader+element {
		return false
	}
	pos := binary.LittleEndian.Uint32(page[pageHeader+4:])
	ksize := binary.LittleEndian.Uint32(page[pageHeader+8:])
	at := pageHeader + int(pos) + int(ksize)
	return at < len(page) && (page[at] == chunkSchema3 || page[at] == chunkSchema4)
}
