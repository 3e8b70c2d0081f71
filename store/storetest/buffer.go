package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
)

func testAppendReadAndDedup(t *testing.T, h *harness) {
	data := h.engine.NewData(t)
	st := h.open(t, data, options{segmentEvents: 7})
	ctx := context.Background()

	r, err := st.AppendEvents(ctx, batchOf(t, 0, 20))
	if err != nil || r.Accepted != 20 || r.Duplicates != 0 || r.First != 1 || r.Last != 20 {
		t.Fatalf("first batch: %+v %v", r, err)
	}
	// Overlapping batch: 10..29, of which 10..19 are already buffered.
	r, err = st.AppendEvents(ctx, batchOf(t, 10, 20))
	if err != nil || r.Accepted != 10 || r.Duplicates != 10 || r.First != 21 || r.Last != 30 {
		t.Fatalf("overlapping batch: %+v %v", r, err)
	}
	// A batch repeating an event within itself.
	var d event.Decoder
	dupInBatch, err := d.NDJSON(append(eventtest.Sample(100, time.Now()), append([]byte("\n"), eventtest.Sample(100, time.Now())...)...), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r, err = st.AppendEvents(ctx, dupInBatch); err != nil || r.Accepted != 1 || r.Duplicates != 1 {
		t.Fatalf("duplicate within a batch: %+v %v", r, err)
	}

	events := readAll(t, st, 0)
	if len(events) != 31 {
		t.Fatalf("read %d events, want 31", len(events))
	}
	seen := map[uuid.UUID]bool{}
	for i, e := range events {
		if e.Seq != uint64(i+1) || seen[e.ID] {
			t.Fatalf("event %d: seq %d, id %v seen before: %v", i, e.Seq, e.ID, seen[e.ID])
		}
		seen[e.ID] = true
	}
	if got := readAll(t, st, 13); len(got) != 18 || got[0].Seq != 14 {
		t.Fatalf("read after 13: %d events starting at %d", len(got), got[0].Seq)
	}
	var limited []uint64
	st.ReadEvents(ctx, 5, 3, func(seq uint64, _ []byte) bool { limited = append(limited, seq); return true })
	if fmt.Sprint(limited) != "[6 7 8]" {
		t.Fatalf("limited read: %v", limited)
	}
	status := Status(t, st)
	if status.Events != 31 || status.Head != 31 || status.OldestSeq != 1 || status.Bytes <= 0 {
		t.Fatalf("status %+v", status)
	}

	// After a restart: same events, same dedup index, seqs continue.
	st.Close()
	st = h.open(t, data, options{segmentEvents: 7})
	if got := readAll(t, st, 0); len(got) != 31 {
		t.Fatalf("after reopen: %d events", len(got))
	}
	r, err = st.AppendEvents(ctx, batchOf(t, 25, 10))
	if err != nil || r.Accepted != 5 || r.Duplicates != 5 || r.First != 32 {
		t.Fatalf("after reopen: %+v %v", r, err)
	}
	if after := Status(t, st); after.Events != 36 || after.Bytes <= status.Bytes {
		t.Fatalf("status after reopen: %+v", after)
	}
}

func testFullBufferRefusesWholeBatch(t *testing.T, h *harness) {
	st := h.open(t, h.engine.NewData(t), options{buffer: store.BufferConfig{MaxEvents: 25}})
	ctx := context.Background()
	if _, err := st.AppendEvents(ctx, batchOf(t, 0, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvents(ctx, batchOf(t, 100, 10)); !errors.Is(err, store.ErrBufferFull) {
		t.Fatalf("over the limit: %v", err)
	}
	if n := len(readAll(t, st, 0)); n != 20 {
		t.Fatalf("a refused batch stored events: %d", n)
	}
	if r, err := st.AppendEvents(ctx, batchOf(t, 100, 5)); err != nil || r.Accepted != 5 {
		t.Fatalf("a batch that fits: %+v %v", r, err)
	}
	byBytes := h.open(t, h.engine.NewData(t), options{buffer: store.BufferConfig{MaxBytes: 5000}})
	if _, err := byBytes.AppendEvents(ctx, batchOf(t, 0, 50)); !errors.Is(err, store.ErrBufferFull) {
		t.Fatalf("over the byte limit: %v", err)
	}
}

func testConcurrentAppendsAreAllKept(t *testing.T, h *harness) {
	st := h.open(t, h.engine.NewData(t), options{segmentEvents: 500})
	const writers, batches, size = 8, 10, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				if _, err := st.AppendEvents(context.Background(), batchOf(t, (w*batches+b)*size, size)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	events := readAll(t, st, 0)
	if len(events) != writers*batches*size {
		t.Fatalf("%d events, want %d", len(events), writers*batches*size)
	}
	for i, e := range events {
		if e.Seq != uint64(i+1) {
			t.Fatalf("seqs are not dense: event %d has %d", i, e.Seq)
		}
	}
}

func testAppendAfterCloseFails(t *testing.T, h *harness) {
	st := h.new(t)
	st.Close()
	if _, err := st.AppendEvents(context.Background(), batchOf(t, 0, 1)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func testRetention(t *testing.T, h *harness) {
	clk := &clock{now: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)}
	opts := options{buffer: store.BufferConfig{MinRetention: time.Hour, MaxAge: 48 * time.Hour, TrimInterval: time.Hour}, now: clk.Now, segmentEvents: 10}
	data := h.engine.NewData(t)
	st := h.open(t, data, opts)
	ctx := context.Background()
	if _, err := st.AppendEvents(ctx, batchOf(t, 0, 30)); err != nil { // seqs 1..30, 3 segments
		t.Fatal(err)
	}
	// A configuration exports only what comes after its creation (its own audit event first).
	c, err := st.CreateConfiguration(ctx, accessKeyConfig(), testSecret, alice)
	if err != nil || c.Cursor != 30 || Status(t, st).Head != 31 {
		t.Fatalf("cursor at creation = %d, head %d (%v); want 30 and 31", c.Cursor, Status(t, st).Head, err)
	}
	if _, err := st.AppendEvents(ctx, batchOf(t, 100, 20)); err != nil { // 32..51, held by c
		t.Fatal(err)
	}

	if r, _ := st.Trim(ctx); r.Events != 0 {
		t.Fatalf("trimmed within the minimum retention: %+v", r)
	}
	clk.Advance(2 * time.Hour)
	r, err := st.Trim(ctx)
	if err != nil || r.Events != 30 || r.Dropped != 0 {
		t.Fatalf("trim of exported events: %+v %v", r, err)
	}
	if s := Status(t, st); s.Events != 21 || s.OldestSeq != 31 || s.Dropped != 0 {
		t.Fatalf("status after trim: %+v", s)
	}
	// A trimmed id is forgotten: the same event is accepted again.
	if r, err := st.AppendEvents(ctx, batchOf(t, 0, 1)); err != nil || r.Accepted != 1 {
		t.Fatalf("re-append of a trimmed event: %+v %v", r, err)
	}

	// Disabled configurations do not hold events.
	st.SetEnabled(ctx, c.ID, bob, false)
	clk.Advance(2 * time.Hour)
	if r, _ := st.Trim(ctx); r.Dropped != 0 || Status(t, st).Events != 0 {
		t.Fatalf("trim with the only configuration disabled: %+v, %+v", r, Status(t, st))
	}
	st.SetEnabled(ctx, c.ID, bob, true)
	if _, err := st.AppendEvents(ctx, batchOf(t, 200, 15)); err != nil { // unexported by c
		t.Fatal(err)
	}
	unexported := Status(t, st).Events // the 15 and the ENABLE audit event
	clk.Advance(24 * time.Hour)
	if r, _ := st.Trim(ctx); r.Events != 0 {
		t.Fatalf("trimmed unexported events before the age limit: %+v", r)
	}
	clk.Advance(25 * time.Hour)
	r, err = st.Trim(ctx)
	if err != nil || r.Events != unexported || r.Dropped != unexported || unexported != 16 {
		t.Fatalf("trim past the age limit: %+v %v (%d unexported)", r, err, unexported)
	}
	head := Status(t, st).Head
	st.Close()
	st = h.open(t, data, opts)
	if s := Status(t, st); s.Dropped != 16 || s.Events != 0 || s.Head != head {
		t.Fatalf("status after reopen: %+v", s)
	}
}

func testChangesAreAudited(t *testing.T, h *harness) {
	st := h.new(t)
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	secret := "rotated-secret-value"
	st.UpdateConfiguration(t.Context(), c.ID, bob, func(x *store.ExportConfiguration) error { x.Interval = store.Every24Hours; return nil }, &secret)
	st.UpdateConfiguration(t.Context(), c.ID, bob, func(*store.ExportConfiguration) error { return nil }, nil) // no change, no event
	st.SetEnabled(t.Context(), c.ID, bob, false)
	st.SetEnabled(t.Context(), c.ID, bob, true)
	st.CreateToken(t.Context(), "ci", []store.Permission{store.PermissionAudit}, admin)
	st.DeleteConfiguration(t.Context(), c.ID, bob)
	st.RecordConnectionCheck(t.Context(), c.ID, c.Revision, store.ConnectionSuccess, time.Now(), time.Time{}) // not a user change

	events := readAll(t, st, 0)
	want := []struct{ action, target, payloadType, actor string }{
		{"CREATE", "EXPORT_CONFIGURATION", "ExportConfigurationCreatedAuditPayload", "alice"},
		{"UPDATE", "EXPORT_CONFIGURATION", "ExportConfigurationUpdatedAuditPayload", "bob"},
		{"DISABLE", "EXPORT_CONFIGURATION", "ExportConfigurationDisabledAuditPayload", "bob"},
		{"ENABLE", "EXPORT_CONFIGURATION", "ExportConfigurationEnabledAuditPayload", "bob"},
		{"CREATE", "API_TOKEN", "ApiTokenCreatedAuditPayload", "admin"},
		{"DELETE", "EXPORT_CONFIGURATION", "ExportConfigurationDeletedAuditPayload", "bob"},
	}
	if len(events) != len(want) {
		t.Fatalf("%d audit events, want %d", len(events), len(want))
	}
	for i, w := range want {
		e := events[i]
		var payload struct {
			Type          string
			ChangedFields []string
		}
		if err := json.Unmarshal(e.AuditPayload, &payload); err != nil {
			t.Fatal(err)
		}
		if e.Action != w.action || e.TargetType != w.target || payload.Type != w.payloadType || e.Actor.Name != w.actor || e.ActionStatus != "SUCCESS" {
			t.Errorf("event %d = %s %s %s by %s, want %+v", i, e.Action, e.TargetType, payload.Type, e.Actor.Name, w)
		}
		if strings.Contains(string(e.AuditPayload), testSecret) || strings.Contains(string(e.AuditPayload), secret) {
			t.Errorf("audit event %d holds a secret: %s", i, e.AuditPayload)
		}
		if i == 1 && fmt.Sprint(payload.ChangedFields) != "[interval secretAccessKey]" {
			t.Errorf("update changed fields = %v", payload.ChangedFields)
		}
	}
	if events[0].Actor.ID != "t-alice" || !strings.Contains(string(events[0].Targets), c.ID) {
		t.Errorf("create event actor %+v targets %s", events[0].Actor, events[0].Targets)
	}
}

// TestReadEventsCallbackMayWrite: the export reads events and, meanwhile, records its progress.
// A write that grows the file must not wait forever for the reader.

// TestReadEventsCallbackMayWrite: the export reads events and, meanwhile, records its progress.
// A write that grows the file must not wait forever for the reader.
func testReadEventsCallbackMayWrite(t *testing.T, h *harness) {
	st := h.new(t)
	if _, err := st.AppendEvents(context.Background(), batchOf(t, 0, 2000)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		wrote := false
		done <- st.ReadEvents(t.Context(), 0, 0, func(seq uint64, _ []byte) bool {
			if !wrote {
				wrote = true
				// Enough to grow the file well beyond what is mapped.
				for i := range 40 {
					if _, err := st.AppendEvents(context.Background(), batchOf(t, 10_000+i*1000, 1000)); err != nil {
						t.Error(err)
						return false
					}
				}
			}
			return true
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("a write from inside ReadEvents never finished: deadlock")
	}
	if n := Status(t, st).Events; n != 42_000 {
		t.Fatalf("%d events, want 42000", n)
	}
}

// A configuration created with a start time exports the buffered events received since then.

// A configuration created with a start time exports the buffered events received since then.
func testStartTimeExportsWhatIsStillBuffered(t *testing.T, h *harness) {
	clk := &clock{now: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)}
	st := h.open(t, h.engine.NewData(t), options{now: clk.Now, segmentEvents: 10})
	var starts []time.Time
	for i := range 3 { // 25 events an hour apart in batches: seqs 1..25, 26..50, 51..75
		starts = append(starts, clk.Now())
		var d event.Decoder
		b, err := d.NDJSON(eventtest.NDJSON(i*100, 25, clk.Now(), time.Second), clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AppendEvents(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
	}
	for _, c := range []struct {
		name   string
		start  time.Time
		cursor uint64
	}{
		{"before everything buffered", starts[0].Add(-24 * time.Hour), 0},
		{"the first event's receipt", starts[0], 0},
		{"the second batch's receipt", starts[1], 25},
		{"between batches", starts[1].Add(time.Minute), 50},
		{"after everything buffered", clk.Now(), 75},
	} {
		cfg := accessKeyConfig()
		cfg.StartTime = c.start
		head := Status(t, st).Head
		created, err := st.CreateConfiguration(t.Context(), cfg, testSecret, alice)
		if err != nil || created.Cursor != min(c.cursor, head) || !created.StartTime.Equal(c.start) {
			t.Errorf("%s: cursor %d, start %v (%v); want cursor %d", c.name, created.Cursor, created.StartTime, err, min(c.cursor, head))
		}
	}

	cfg := accessKeyConfig()
	cfg.StartTime = clk.Now().Add(time.Minute)
	var v *store.ValidationError
	if _, err := st.CreateConfiguration(t.Context(), cfg, testSecret, alice); !errors.As(err, &v) || v.Fields[0].Field != "startTime" {
		t.Fatalf("start time in the future: %v", err)
	}
}
