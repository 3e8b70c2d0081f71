package event

import (
	"fmt"
	"slices"
	"strings"
)

// Batch is a decoded request: its records laid end to end.
type Batch struct {
	Data []byte
	ends []int
}

// Len is the number of records.
func (b *Batch) Len() int { return len(b.ends) }

// Record returns record i.
func (b *Batch) Record(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.Data[start:b.ends[i]:b.ends[i]]
}

// reset empties b, keeping room for size bytes of records.
func (b *Batch) reset(size int) {
	b.Data, b.ends = slices.Grow(b.Data[:0], size), b.ends[:0]
}

func (b *Batch) add(record []byte) {
	b.Data = append(b.Data, record...)
	b.ends = append(b.ends, len(b.Data))
}

// LineError is one problem of a bad event: its line (NDJSON) or position (JSON array), 1-based,
// and what is wrong. An event with several problems has one LineError for each.
type LineError struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// BatchError lists the problems of a batch's bad events, the first maxListedErrors of them; a
// batch with any is rejected whole.
type BatchError struct {
	Unit  string // "line" for NDJSON, "event" for a JSON array
	Lines []LineError
	// More counts problems beyond those listed.
	More int
}

func (e *BatchError) Error() string {
	var b strings.Builder
	for i, l := range e.Lines {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %d: %s", e.Unit, l.Line, l.Reason)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "; and %d more", e.More)
	}
	return b.String()
}

func (e *BatchError) add(line int, errs ...error) {
	for _, err := range errs {
		if len(e.Lines) < maxListedErrors {
			e.Lines = append(e.Lines, LineError{Line: line, Reason: err.Error()})
		} else {
			e.More++
		}
	}
}
