package store_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/storetest"
)

// viewRetrier runs a View's fn a second time after the first run's scan failed part-way, as a
// database engine does after a lost connection.
type viewRetrier struct {
	store.Engine
	failNext bool
}

// cutScans fails every scan after 40 events.
type cutScans struct{ store.ReadTx }

func (c cutScans) ScanEvents(after uint64, fn func(uint64, []byte) bool) error {
	n := 0
	if err := c.ReadTx.ScanEvents(after, func(seq uint64, rec []byte) bool { n++; return n <= 40 && fn(seq, rec) }); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

func (v *viewRetrier) View(ctx context.Context, fn func(store.ReadTx) error) error {
	if v.failNext {
		v.failNext = false
		if err := v.Engine.View(ctx, func(tx store.ReadTx) error { return fn(cutScans{tx}) }); !errors.Is(err, io.ErrUnexpectedEOF) {
			return err
		}
	}
	return v.Engine.View(ctx, fn)
}

// A read transaction run again after a failure part-way leaves nothing of the first run in the
// hours: each event is covered once.
func TestReadEventHoursSurvivesARetriedView(t *testing.T) {
	engine, err := bolt.Open(filepath.Join(t.TempDir(), "auditexport.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	retrier := &viewRetrier{Engine: engine}
	st, err := store.New(t.Context(), retrier, store.Config{MasterKey: storetest.Key(), NoTrimLoop: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var d event.Decoder
	b, err := d.NDJSON(eventtest.NDJSON(0, 100, time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), time.Minute), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvents(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	retrier.failNext = true
	next := uint64(1)
	err = st.ReadEventHours(t.Context(), 0, 100, func(r store.HourRun) bool {
		if r.First != next {
			t.Fatalf("run %+v, want one from %d", r, next)
		}
		next = r.Last + 1
		return true
	})
	if err != nil || next != 101 {
		t.Fatalf("runs up to %d (%v), want 100", next-1, err)
	}
}
