package bolt_test

import (
	"bytes"
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
)

// A damaged page among the buffered events is refused by Check, or met when the events are
// read: either way a DamagedError naming the file, reported once, and never a crash.
func TestDamagedEventPagesAreReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auditexport.db")
	key := storetest.Key()
	// Segments of 2,000 events: the damage goes into a sealed one, which opening does not read.
	opts := bolt.Options{SegmentMaxEvents: 2000}
	st := storetest.OpenBolt(t, path, store.Config{MasterKey: key}, opts)
	var d event.Decoder
	for i := range 4 {
		batch, err := d.NDJSON(eventtest.NDJSON(i*5000, 5000, time.Now(), time.Millisecond), time.Now())
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
	// One leaf page of events in the middle of the segment, made to claim another page id: the
	// check at start passes (it walks the control plane's records and each segment's ends), so
	// the damage is met when the events are read. A page the check does catch is refused as
	// DamagedError too; the test looks for one it does not.
	const pageSize, leafPage = 4096, 0x02
	var damaged *bolt.DamagedError
	found := false
	for off := len(pristine) / 4 / pageSize * pageSize; off < len(pristine)/2 && !found; off += pageSize {
		if pristine[off+8] != leafPage {
			continue
		}
		data := bytes.Clone(pristine)
		copy(data[off:], []byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef})
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := bolt.Check(path)
		if err != nil && (!errors.As(err, &damaged) || damaged.Path != path) {
			t.Fatalf("Check: %v, want a DamagedError naming the file", err)
		}
		found = err == nil
	}
	if !found {
		t.Fatal("every damaged leaf page was refused at start: none left to meet at run time")
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
