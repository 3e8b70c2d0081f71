package exporter

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/store"
)

// How much of a file waits in the encoder before its events go to the writer: chunks of
// chunkRows (Parquet's write batch, so the pages are those of a row group written whole) are
// handed on once the file holds streamAfter bytes of events. A small hour thus holds only its
// rows until it is finished, no Parquet writer (about 270 KiB with its column writers), and a
// pass may keep many small hours open; a large file streams, its row group held as compressed
// pages rather than as events.
const (
	chunkRows   = 1024
	streamAfter = 1 << 20
)

// partFile is one Parquet file being written. The encoder's fields are read and written on the
// encoder's goroutine; once the file has gone to the writer, only the writer touches sink,
// writer and rowGroup.
type partFile struct {
	hour        int64 // unix hour of its events
	path        string
	pending     []*rowChunk // the events not handed on yet, in order, the last chunk filling
	streaming   bool        // chunks go to the writer as they fill
	rgBytes     int64       // encoded event bytes in the row group being built
	eventBytes  int64       // encoded event bytes in the whole file
	first, last uint64
	count       int64 // events
	lastUse     int64 // order of last append, for closing the least recently used file

	sink     *lazyFile                   // the writer's
	writer   *file.Writer                // the writer's; nil until the first chunk is written
	rowGroup file.BufferedRowGroupWriter // the writer's; nil between row groups
	dicts    []columnDict                // the writer's: by column, the row group's dictionaries
}

// EncodedFile is a finished Parquet file waiting for upload.
type EncodedFile struct {
	Path        string // the temporary file
	Hour        time.Time
	First, Last uint64
	Rows        int64
	Bytes       int64
	Checksums   destination.Checksums // of its contents, computed as it was written
}

// SHA256 is the file's SHA-256, in hex.
func (f EncodedFile) SHA256() string { return hex.EncodeToString(f.Checksums.SHA256[:]) }

// encoder cuts a job's events into hour-partitioned Parquet files, reading them in seq order,
// in one pass or in the passes of a layout (see layout.go). Memory stays bounded: without a
// layout, at most plan.MaxOpenFiles files are open, each holding at most streamAfter bytes of
// events, or a row group of at most rowGroupBytes of events as compressed pages; with one, the
// layout keeps the open files within plan.MaxOpenBytes.
//
// Encoding (laying out columns, Parquet encoding and snappy) costs several times as much as
// reading the events (copying their records into chunks), so it runs on a second goroutine,
// the writer (columns.go), while the next chunk fills. The hand-off is unbuffered, so at most
// one chunk waits beside the one being written.
type encoder struct {
	plan          store.ExportPlan
	rowGroupBytes int64
	dir           string
	configID      string
	props         *parquet.WriterProperties
	open          map[int64]*partFile
	layout        *layout // nil: one pass, cut by MaxOpenFiles alone
	pass          int     // the layout's pass being read
	uses          int64
	done          func(EncodedFile) error // receives each file as it is finished, on the writer goroutine

	// pqarrowDictionaries keeps every dictionary to the dictionary page's limit, as pqarrow
	// does, for tests that compare the files with its.
	pqarrowDictionaries bool

	values *columnValues // the writer's

	writes     chan writeOp
	writerDone chan struct{} // closed when the writer has stopped, after a failure or close
	writeErr   error         // why the writer stopped early; read only after writerDone
	stopped    bool          // writes is closed
}

// writeOp is one piece of work for the writer on file f: a chunk of events to encode into its
// row group (if rows is not nil), then the row group to end, then the file to finish: its
// footer written and the file handed on.
type writeOp struct {
	f           *partFile
	rows        *rowChunk
	endRowGroup bool
	finish      bool
}

// newEncoder starts an encoder; close or abort stops its writer goroutine.
func newEncoder(plan store.ExportPlan, rowGroupBytes int64, dir, configID string, done func(EncodedFile) error) *encoder {
	e := &encoder{
		plan: plan, rowGroupBytes: rowGroupBytes, dir: dir, configID: configID, done: done,
		props: WriterProperties(), open: map[int64]*partFile{},
		values:     newColumnValues(),
		writes:     make(chan writeOp),
		writerDone: make(chan struct{}),
	}
	go e.writeLoop()
	return e
}

// writeLoop is the writer goroutine. It stops at its first failure; the encoder's next hand-off
// then returns the failure, and abort cleans up the files still open.
func (e *encoder) writeLoop() {
	defer close(e.writerDone)
	defer e.values.stop()
	for op := range e.writes {
		if e.writeErr = e.write(op); e.writeErr != nil {
			return
		}
	}
}

// write does one writeOp, on the writer goroutine.
func (e *encoder) write(op writeOp) error {
	f := op.f
	if op.rows != nil {
		err := e.writeChunk(f, op.rows)
		e.recycle(op.rows)
		if err != nil {
			return err
		}
	}
	if op.endRowGroup && f.rowGroup != nil {
		err := f.rowGroup.Close()
		f.rowGroup = nil
		if err != nil {
			return fmt.Errorf("write parquet file: %w", err)
		}
	}
	if op.finish {
		return e.finishFile(f)
	}
	return nil
}

// writeChunk encodes a chunk into f's row group, starting the file or the row group first.
func (e *encoder) writeChunk(f *partFile, rows *rowChunk) error {
	if f.writer == nil {
		f.sink = newLazyFile(f.path)
		w, err := newParquetWriter(f.sink, e.props)
		if err != nil {
			return fmt.Errorf("write parquet file: %w", err)
		}
		f.writer = w
	}
	if f.rowGroup == nil {
		rg, err := f.writer.AppendBufferedRowGroupChecked()
		if err != nil {
			return fmt.Errorf("write parquet file: %w", err)
		}
		f.rowGroup = rg
		if f.dicts == nil {
			f.dicts = make([]columnDict, len(columns))
		}
		for i := range f.dicts {
			f.dicts[i].reset(e.pqarrowDictionaries)
		}
	}
	if err := e.values.write(rows.cols, f.rowGroup, f.dicts); err != nil {
		return fmt.Errorf("write parquet file: %w", err)
	}
	return nil
}

// send hands op to the writer, or returns why the writer has stopped.
func (e *encoder) send(op writeOp) error {
	select {
	case e.writes <- op:
		return nil
	case <-e.writerDone:
		if op.finish { // the file is no longer among the open ones
			discard(op.f)
		}
		return e.writeErr
	}
}

// stop closes the hand-off and waits for the writer to finish what it was given.
func (e *encoder) stop() error {
	if !e.stopped {
		e.stopped = true
		close(e.writes)
	}
	<-e.writerDone
	return e.writeErr
}

// passes is how many times the job's events are to be read.
func (e *encoder) passes() int {
	if e.layout == nil {
		return 1
	}
	return e.layout.passes
}

// add appends one buffered event, if its hour belongs to the pass being read. The record is
// checked whole when it is encoded.
func (e *encoder) add(seq uint64, rec []byte) error {
	micros, err := event.EventMicrosOf(rec)
	if err != nil {
		return fmt.Errorf("event %d: %w", seq, err)
	}
	hour := event.UnixHour(micros)
	last, lru := false, e.layout == nil
	if e.layout != nil {
		slot, ok := e.layout.hours[hour]
		if !ok { // the range's events cannot change; never drop one if they did
			return fmt.Errorf("event %d is of an hour the job's first pass did not see", seq)
		}
		if slot.pass != e.pass {
			return nil
		}
		last, lru = seq == slot.last, slot.lru
	}
	f := e.open[hour]
	if f == nil {
		if lru && len(e.open) >= e.plan.MaxOpenFiles {
			if err := e.closeLeastRecent(); err != nil {
				return err
			}
		}
		f = &partFile{hour: hour, path: e.pathOf(seq), first: seq}
		e.open[hour] = f
	}
	e.uses++
	f.lastUse = e.uses
	if err := e.append(f, seq, rec); err != nil {
		return err
	}
	if f.rgBytes >= e.rowGroupBytes {
		if err := e.hand(f, writeOp{f: f, endRowGroup: true}); err != nil {
			return err
		}
	}
	if last || f.eventBytes >= e.plan.MaxFileEventBytes {
		return e.finish(f)
	}
	return nil
}

func (e *encoder) pathOf(first uint64) string {
	return filepath.Join(e.dir, fmt.Sprintf("%020d.parquet", first))
}

// append adds an event to f's last chunk, and hands full chunks on once f streams.
func (e *encoder) append(f *partFile, seq uint64, rec []byte) error {
	n := len(f.pending)
	if n == 0 || f.pending[n-1].rows() == chunkRows {
		f.pending = append(f.pending, e.newChunk())
		n++
	}
	c := f.pending[n-1]
	c.add(seq, rec)
	size := int64(len(rec))
	f.rgBytes += size
	f.eventBytes += size
	f.last = seq
	f.count++
	if c.rows() == chunkRows && (f.streaming || f.eventBytes >= streamAfter) {
		return e.hand(f, writeOp{f: f})
	}
	return nil
}

// hand sends f's pending chunks to the writer, in order, the last one with op's row group end
// and finish; it sends op alone when no chunk is pending. From then on f streams.
func (e *encoder) hand(f *partFile, op writeOp) error {
	f.streaming = true
	if op.endRowGroup {
		f.rgBytes = 0
	}
	pending := f.pending
	f.pending = f.pending[:0]
	if len(pending) == 0 {
		if op.endRowGroup || op.finish {
			return e.send(op)
		}
		return nil
	}
	for i, c := range pending {
		next := writeOp{f: f, rows: c}
		if i == len(pending)-1 {
			next.endRowGroup, next.finish = op.endRowGroup, op.finish
		}
		err := e.layOut(c)
		if err == nil {
			err = e.send(next)
		}
		if err != nil {
			e.recycle(c) // not handed on
			for _, c := range pending[i+1:] {
				e.recycle(c)
			}
			return err
		}
	}
	return nil
}

// finish hands f's last events to the writer, which ends its row group and finishes it.
func (e *encoder) finish(f *partFile) error {
	delete(e.open, f.hour)
	return e.hand(f, writeOp{f: f, endRowGroup: true, finish: true})
}

// finishFile writes f's footer and hands the finished file on; it runs on the writer goroutine
// and removes the file when it fails.
func (e *encoder) finishFile(f *partFile) error {
	var err error
	for _, kv := range [][2]string{
		{MetaSchemaVersion, SchemaVersion}, {MetaConfigurationID, e.configID},
		{MetaFirstSequence, fmt.Sprint(f.first)}, {MetaLastSequence, fmt.Sprint(f.last)},
	} {
		if err == nil {
			err = f.writer.AppendKeyValueMetadata(kv[0], kv[1])
		}
	}
	if cerr := f.writer.Close(); err == nil {
		err = cerr
	}
	if cerr := f.sink.close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.sink.remove()
		return fmt.Errorf("write parquet file: %w", err)
	}
	return e.done(EncodedFile{Path: f.path, Hour: time.Unix(f.hour*3600, 0).UTC(), First: f.first, Last: f.last, Rows: f.count,
		Bytes: f.sink.n, Checksums: f.sink.checksums()})
}

// discard removes f's temporary file, if the writer made one; the writer must have stopped, or
// never have seen f.
func discard(f *partFile) {
	if f.sink != nil {
		f.sink.remove()
	}
}

func (e *encoder) closeLeastRecent() error {
	var oldest *partFile
	for _, f := range e.open {
		if oldest == nil || f.lastUse < oldest.lastUse {
			oldest = f
		}
	}
	return e.finish(oldest)
}

// close finishes every open file and waits until the writer has handed the last one on.
func (e *encoder) close() error {
	if err := e.finishOpen(); err != nil {
		return err
	}
	return e.stop()
}

// finishOpen finishes every open file, in the order of their first event. With a layout, a
// pass finishes each file at its hour's last event, so none is left unless events of the range
// left the buffer meanwhile.
func (e *encoder) finishOpen() error {
	for len(e.open) > 0 {
		var first *partFile
		for _, f := range e.open {
			if first == nil || f.first < first.first {
				first = f
			}
		}
		if err := e.finish(first); err != nil {
			return err
		}
	}
	return nil
}

// abort stops the writer, then removes every open file's temporary file after a failure.
func (e *encoder) abort() {
	e.stop()
	for _, f := range e.open {
		discard(f)
	}
	e.open = map[int64]*partFile{}
}
