package storetest

import (
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
)

// ReadEventHours covers exactly the events asked for, in order, each run's events of its hour
// and its bytes theirs: events of one hour appended together, a batch across an hour's end, an
// hour coming back later, bounds inside a batch, and a caller that stops early.
func testEventHours(t *testing.T, h *harness) {
	st := h.open(t, h.engine.NewData(t), options{segmentEvents: 7})
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var d event.Decoder
	for _, b := range []struct {
		first, n int
		start    time.Time
		step     time.Duration
	}{
		{0, 30, at, time.Second}, // 10:00, one hour
		{30, 20, at.Add(59*time.Minute + 50*time.Second), time.Second}, // across 11:00
		{50, 10, at.Add(2 * time.Hour), time.Minute},                   // 12:00
		{60, 5, at.Add(30 * time.Minute), time.Second},                 // 10:30 again
		{65, 300, at.Add(3 * time.Hour), time.Second},                  // 13:00, more than a chunk
	} {
		batch, err := d.NDJSON(eventtest.NDJSON(b.first, b.n, b.start, b.step), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if r, err := st.AppendEvents(t.Context(), batch); err != nil || r.Accepted != b.n {
			t.Fatalf("append: %+v %v", r, err)
		}
	}
	// The truth, event by event.
	hourOf, sizeOf := map[uint64]int64{}, map[uint64]int64{}
	err := st.ReadEvents(t.Context(), 0, 0, func(seq uint64, rec []byte) bool {
		micros, err := event.EventMicrosOf(rec)
		if err != nil {
			t.Fatal(err)
		}
		hourOf[seq], sizeOf[seq] = event.UnixHour(micros), int64(len(rec))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	head := uint64(len(hourOf))
	for _, r := range [][2]uint64{{0, head}, {5, head}, {17, 43}, {29, 31}, {0, 1}, {head - 1, head}, {head, head}, {100, 360}} {
		after, to := r[0], r[1]
		next := after + 1
		err := st.ReadEventHours(t.Context(), after, to, func(run store.HourRun) bool {
			if run.First != next || run.Last < run.First || run.Last > to {
				t.Fatalf("(%d, %d]: run %+v, want one from %d", after, to, run, next)
			}
			var bytes int64
			for seq := run.First; seq <= run.Last; seq++ {
				if hourOf[seq] != run.Hour {
					t.Fatalf("(%d, %d]: run %+v holds event %d of hour %d", after, to, run, seq, hourOf[seq])
				}
				bytes += sizeOf[seq]
			}
			if bytes != run.Bytes {
				t.Fatalf("(%d, %d]: run %+v has %d bytes of events", after, to, run, bytes)
			}
			next = run.Last + 1
			return true
		})
		if err != nil || next != to+1 {
			t.Fatalf("(%d, %d]: runs up to %d (%v)", after, to, next-1, err)
		}
	}
	runs := 0
	if err := st.ReadEventHours(t.Context(), 0, head, func(store.HourRun) bool { runs++; return runs < 2 }); err != nil || runs != 2 {
		t.Fatalf("a caller stopping after 2 runs got %d (%v)", runs, err)
	}
}
