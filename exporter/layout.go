package exporter

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"slices"

	"github.com/auditexport/auditexport/store"
)

// How a job whose plan has MaxOpenBytes is cut into files. Writing events in seq order with a
// few files open at once cuts an hour whose events interleave with those of other hours into
// as many files as it was closed and opened again: 1,800 events cycling through nine hours once
// became 1,801 objects. So a first pass notes each hour's first and last event and size, from
// the store's runs of events of one hour (store.ReadEventHours: kept by the engine, or each
// event's time read); the hours are then grouped into passes over the job such that the files
// of a pass open at any one moment fit the plan's budget, each file open from its hour's first
// event to its last. Every hour is written whole by one pass: one file, more only past
// MaxFileEventBytes. Events in order of time, the usual case, make one pass.
//
// The cut depends only on the plan and the job's events, so a retry writes the same objects.
// Two bounds keep a job's memory and time in check whatever its events: the first pass keeps at
// most maxLayoutHours hours (a job spanning more is cut as before, by MaxOpenFiles alone), and
// hours that do not fit maxPasses passes share one last pass in which, as before, the least
// recently used of MaxOpenFiles files is closed when another hour needs one.
const (
	// maxLayoutHours bounds the hours the first pass keeps (about 100 bytes each): 11 years.
	maxLayoutHours = 100_000
	// maxPasses bounds the passes over a job that keep each hour in one file.
	maxPasses = 8
	// openFileCost is charged to each open file beyond its events: its column builders (about
	// 45 KiB measured with one row).
	openFileCost = 64 << 10
)

// hourSpan is what the first pass learns of one hour of event time.
type hourSpan struct {
	hour        int64 // unix hour
	first, last uint64
	bytes       int64
}

// layout assigns each hour of a job to a pass.
type layout struct {
	passes int
	hours  map[int64]hourSlot
}

type hourSlot struct {
	pass int
	last uint64 // the hour's last event: its file is finished there
	lru  bool   // in the last pass, among the hours that did not fit: cut by MaxOpenFiles
}

// encodeRange feeds the job's events to enc, in one pass or, for a plan with MaxOpenBytes, in
// the passes of its layout.
func (x *Exporter) encodeRange(ctx context.Context, job store.ExportJob, enc *encoder) error {
	read := func(fn func(seq uint64, rec []byte) error) error { return readRange(ctx, x.store, job, fn) }
	hours := func(fn func(store.HourRun) bool) error { return x.store.ReadEventHours(ctx, job.From, job.To, fn) }
	grouped, err := encodeEvents(enc, job.Plan, maxLayoutHours, hours, read)
	if err == nil && job.Plan.MaxOpenBytes > 0 && !grouped {
		x.log.Warn("export job's events span too many hours to keep each whole; cut by open files alone", "job_id", job.ID, "max_hours", maxLayoutHours)
	}
	return err
}

// encodeEvents feeds the events that read passes on, in seq order, to enc: in one pass, or, for
// a plan with MaxOpenBytes whose events span at most maxHours hours (as hours tells), in the
// passes of the layout they make (grouped).
func encodeEvents(enc *encoder, plan store.ExportPlan, maxHours int, hours func(fn func(store.HourRun) bool) error,
	read func(fn func(seq uint64, rec []byte) error) error) (grouped bool, err error) {
	if plan.MaxOpenBytes > 0 {
		spans, err := hourSpans(hours, maxHours)
		if err != nil {
			return false, err
		}
		if spans != nil {
			enc.layout = planLayout(spans, plan)
		}
	}
	for enc.pass = 0; enc.pass < enc.passes(); enc.pass++ {
		if err := read(enc.add); err != nil {
			return false, err
		}
		if err := enc.finishOpen(); err != nil {
			return false, err
		}
	}
	return enc.layout != nil, nil
}

// readRange calls fn with each buffered event of the job's range, in seq order, until fn fails.
func readRange(ctx context.Context, st store.EventBuffer, job store.ExportJob, fn func(seq uint64, rec []byte) error) error {
	var fnErr error
	readErr := st.ReadEvents(ctx, job.From, 0, func(seq uint64, rec []byte) bool {
		if seq > job.To {
			return false
		}
		if fnErr = ctx.Err(); fnErr != nil {
			return false // a read cut short must fail the attempt, never complete the job
		}
		fnErr = fn(seq, rec)
		return fnErr == nil
	})
	return errors.Join(readErr, fnErr)
}

// hourSpans is the first pass: each hour of the job's events, with its first and last event and
// size, from the runs hours passes on; nil when they span more than maxHours hours.
func hourSpans(hours func(fn func(store.HourRun) bool) error, maxHours int) ([]hourSpan, error) {
	index := map[int64]int{}
	var spans []hourSpan
	tooMany := false
	err := hours(func(run store.HourRun) bool {
		i, ok := index[run.Hour]
		if !ok {
			if len(spans) == maxHours {
				tooMany = true
				return false
			}
			i = len(spans)
			index[run.Hour] = i
			spans = append(spans, hourSpan{hour: run.Hour, first: run.First})
		}
		spans[i].last = run.Last
		spans[i].bytes += run.Bytes
		return true
	})
	if tooMany && err == nil {
		return nil, nil
	}
	return spans, err
}

// planLayout groups the hours into passes, first fit in order of their first event: an hour
// joins the first pass whose files open at its first event leave room for it. That check is
// enough: every hour already in the pass began earlier, so any of them open at a later moment of
// the hour is open at its start too. An hour is charged its bytes, up to a large file's share of
// the budget (beyond it, its row groups are written out as they fill), plus openFileCost.
func planLayout(spans []hourSpan, plan store.ExportPlan) *layout {
	slices.SortFunc(spans, func(a, b hourSpan) int { return cmp.Compare(a.first, b.first) })
	budget := plan.MaxOpenBytes
	share := budget / int64(max(plan.MaxOpenFiles, 1))
	l := &layout{hours: make(map[int64]hourSlot, len(spans))}
	var passes []openSpans
	overflow := false
	for _, s := range spans {
		cost := min(s.bytes, share) + openFileCost
		i := 0
		for ; i < len(passes); i++ {
			passes[i].closeBefore(s.first)
			if passes[i].bytes+cost <= budget || passes[i].Len() == 0 {
				break
			}
		}
		if i == maxPasses {
			l.hours[s.hour] = hourSlot{pass: i, last: s.last, lru: true}
			overflow = true
			continue
		}
		if i == len(passes) {
			passes = append(passes, openSpans{})
		}
		heap.Push(&passes[i], openSpan{last: s.last, cost: cost})
		l.hours[s.hour] = hourSlot{pass: i, last: s.last}
	}
	l.passes = len(passes)
	if overflow {
		l.passes++
	}
	return l
}

// openSpans are the hours of a pass open at the moment planLayout has reached, as a min-heap by
// their last event, with the sum of their costs.
type openSpans struct {
	spans []openSpan
	bytes int64
}

type openSpan struct {
	last uint64
	cost int64
}

// closeBefore drops the hours whose last event comes before seq.
func (o *openSpans) closeBefore(seq uint64) {
	for o.Len() > 0 && o.spans[0].last < seq {
		heap.Pop(o)
	}
}

func (o *openSpans) Len() int           { return len(o.spans) }
func (o *openSpans) Less(i, j int) bool { return o.spans[i].last < o.spans[j].last }
func (o *openSpans) Swap(i, j int)      { o.spans[i], o.spans[j] = o.spans[j], o.spans[i] }
func (o *openSpans) Push(v any) {
	s := v.(openSpan)
	o.spans = append(o.spans, s)
	o.bytes += s.cost
}
func (o *openSpans) Pop() any {
	s := o.spans[len(o.spans)-1]
	o.spans = o.spans[:len(o.spans)-1]
	o.bytes -= s.cost
	return s
}
