package exporter

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
)

// hourlyRecords are n sample events whose event times go through the hours as hourOf says, in
// seq order, as the buffer stores them.
func hourlyRecords(t *testing.T, n int, hourOf func(i int) int) [][]byte {
	t.Helper()
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	var body []byte
	for i := range n {
		body = append(body, eventtest.NDJSON(i, 1, start.Add(time.Duration(hourOf(i))*time.Hour+time.Duration(i)*time.Millisecond), 0)...)
	}
	return recordsOf(t, body)
}

// cut is what encoding recs under plan produced: the files in the order handed on, the passes
// read, and the most bytes of events the open files held at once.
type cut struct {
	files    []EncodedFile
	passes   int
	grouped  bool
	peakOpen int64
}

// encodeWith encodes recs (seqs 1..n) as a job does, with row groups of a large file's share of
// the plan's budget, checking after each event what the open files hold.
func encodeWith(t *testing.T, plan store.ExportPlan, maxHours int, recs [][]byte) cut {
	t.Helper()
	var c cut
	rowGroup := int64(32 << 10)
	if plan.MaxOpenBytes > 0 {
		rowGroup = plan.MaxOpenBytes / int64(plan.MaxOpenFiles)
	}
	enc := newEncoder(plan, rowGroup, t.TempDir(), "cfg", func(f EncodedFile) error {
		c.files = append(c.files, f)
		return os.Remove(f.Path)
	})
	read := func(fn func(seq uint64, rec []byte) error) error {
		c.passes++
		for i, rec := range recs {
			if err := fn(uint64(i+1), rec); err != nil {
				return err
			}
			var open int64
			for _, f := range enc.open {
				open += f.rgBytes + openFileCost
			}
			c.peakOpen = max(c.peakOpen, open)
		}
		return nil
	}
	hours := func(fn func(store.HourRun) bool) error {
		for i, rec := range recs {
			micros, err := event.EventMicrosOf(rec)
			if err != nil {
				return err
			}
			if !fn(store.HourRun{Hour: event.UnixHour(micros), First: uint64(i + 1), Last: uint64(i + 1), Bytes: int64(len(rec))}) {
				return nil
			}
		}
		return nil
	}
	grouped, err := encodeEvents(enc, plan, maxHours, hours, read)
	if err == nil {
		err = enc.close()
	}
	if err != nil {
		enc.abort()
		t.Fatal(err)
	}
	if !grouped {
		c.passes = 1
	}
	c.grouped = grouped
	return c
}

// keys are the object keys of the files, in order, with their SHA-256.
func (c cut) keys() []string {
	var keys []string
	for _, f := range c.files {
		keys = append(keys, exportKey("p", f.Hour, f.First, f.Last, "cfg")+" "+f.SHA256())
	}
	return keys
}

// checkOneFilePerHour fails unless each hour is in one file.
func (c cut) checkOneFilePerHour(t *testing.T) {
	t.Helper()
	perHour := map[time.Time]int{}
	for _, f := range c.files {
		perHour[f.Hour]++
	}
	for h, n := range perHour {
		if n != 1 {
			t.Errorf("hour %v in %d files", h, n)
		}
	}
}

// checkEveryEventOnce fails unless the files hold n events.
func (c cut) checkEveryEventOnce(t *testing.T, n int) {
	t.Helper()
	var rows int64
	for _, f := range c.files {
		rows += f.Rows
	}
	if rows != int64(n) {
		t.Fatalf("%d rows in %d files, want %d", rows, len(c.files), n)
	}
}

func newPlan(maxOpenFiles int, maxOpenBytes int64) store.ExportPlan {
	return store.ExportPlan{MaxFileEventBytes: 1 << 30, MaxOpenFiles: maxOpenFiles, MaxOpenBytes: maxOpenBytes}
}

// Events cycling through nine hours, one job keeping eight files open: each hour is one file,
// not one file per event as before.
func TestEachHourIsOneFileWhateverTheOrder(t *testing.T) {
	t.Parallel()
	recs := hourlyRecords(t, 1800, func(i int) int { return i % 9 })
	c := encodeWith(t, newPlan(8, 8*(16<<20)), maxLayoutHours, recs) // the defaults
	c.checkEveryEventOnce(t, len(recs))
	if len(c.files) != 9 || c.passes != 1 {
		t.Fatalf("%d files for 9 hours, in %d passes; want 9 in one", len(c.files), c.passes)
	}
	c.checkOneFilePerHour(t)
}

// Random hours in random order, with budgets from tight to roomy: every event is written once,
// each hour whole in one file unless it had to share the last pass, the open files stay within
// the budget, and encoding again (a retry) cuts the same files, byte for byte.
func TestLayoutKeepsHoursWholeWithinItsBudget(t *testing.T) {
	t.Parallel()
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 7))
			hours := 2 + rng.IntN(40)
			recs := hourlyRecords(t, 200+rng.IntN(400), func(int) int { return rng.IntN(hours) })
			plan := newPlan(1+rng.IntN(8), int64(2+rng.IntN(40))*openFileCost)
			c := encodeWith(t, plan, maxLayoutHours, recs)
			c.checkEveryEventOnce(t, len(recs))
			if c.passes <= maxPasses {
				c.checkOneFilePerHour(t)
				// One file may exceed the budget alone; planLayout lets it.
				if limit := max(plan.MaxOpenBytes, plan.MaxOpenBytes/int64(plan.MaxOpenFiles)+openFileCost); c.peakOpen > limit {
					t.Errorf("open files held %d bytes, budget %d", c.peakOpen, plan.MaxOpenBytes)
				}
			}
			again := encodeWith(t, plan, maxLayoutHours, recs)
			if fmt.Sprint(again.keys()) != fmt.Sprint(c.keys()) {
				t.Errorf("a second encoding cut other files:\n%v\n%v", c.keys(), again.keys())
			}
			t.Logf("%d events, %d hours, %d files, %d passes", len(recs), hours, len(c.files), c.passes)
		})
	}
}

// Hours too many to interleave within maxPasses passes: those left over share one more pass,
// cut by MaxOpenFiles as before, and still every event is written once.
func TestHoursBeyondThePassesShareALastPass(t *testing.T) {
	t.Parallel()
	const hours = 40
	recs := hourlyRecords(t, 400, func(i int) int { return i % hours })
	// Room for two hours a pass: 16 hours in the eight passes, 24 in the last.
	c := encodeWith(t, newPlan(2, 2*openFileCost+2*(2<<10)), maxLayoutHours, recs)
	c.checkEveryEventOnce(t, len(recs))
	if c.passes != maxPasses+1 {
		t.Fatalf("%d passes, want %d", c.passes, maxPasses+1)
	}
	if len(c.files) <= hours {
		t.Fatalf("%d files: the hours of the last pass should have been cut by two open files", len(c.files))
	}
}

// A job spanning more hours than the first pass keeps is cut in one pass, by MaxOpenFiles.
func TestTooManyHoursAreCutByOpenFiles(t *testing.T) {
	t.Parallel()
	recs := hourlyRecords(t, 90, func(i int) int { return i % 9 })
	c := encodeWith(t, newPlan(8, 1<<20), 5, recs)
	c.checkEveryEventOnce(t, len(recs))
	if c.grouped || len(c.files) != len(recs) {
		t.Fatalf("grouped %v, %d files: want one pass, LRU cut into one file per event", c.grouped, len(c.files))
	}
}

// A job created by a release without MaxOpenBytes keeps it zero when read back, and is cut as
// that release cut it: nine hours cycling through eight open files, one file per event.
func TestJobsOfThePreviousReleaseAreCutAsBefore(t *testing.T) {
	t.Parallel()
	var job store.ExportJob
	if err := json.Unmarshal([]byte(`{"id":"j","plan":{"maxFileEventBytes":134217728,"maxOpenFiles":8}}`), &job); err != nil {
		t.Fatal(err)
	}
	if job.Plan != (store.ExportPlan{MaxFileEventBytes: 128 << 20, MaxOpenFiles: 8}) {
		t.Fatalf("plan read back as %+v", job.Plan)
	}
	recs := hourlyRecords(t, 90, func(i int) int { return i % 9 })
	c := encodeWith(t, job.Plan, maxLayoutHours, recs)
	c.checkEveryEventOnce(t, len(recs))
	if c.grouped || len(c.files) != len(recs) {
		t.Fatalf("grouped %v, %d files: want the previous release's cut, one file per event", c.grouped, len(c.files))
	}
}
