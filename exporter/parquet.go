package exporter

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/store"
)

// partFile is one Parquet file being written to a temporary file. The file is created with its
// first row group: an hour whose events fit one row group holds no file descriptor until it is
// finished, so a pass may keep many small hours open.
type partFile struct {
	hour        int64 // unix hour of its events
	path        string
	file        *os.File       // nil until the first row group
	out         *hashingWriter // nil until the first row group
	writer      *file.Writer   // nil until the first row group
	rows        *rowGroup      // the row group being built
	rgBytes     int64          // encoded event bytes in the row group being built
	eventBytes  int64          // encoded event bytes in the whole file
	first, last uint64
	count       int64 // events
	lastUse     int64 // order of last append, for closing the least recently used file
}

// hashingWriter counts and hashes what it writes, so a finished file's size and SHA-256 (for
// the job's digest) come without reading it again.
type hashingWriter struct {
	w    io.Writer
	n    int64
	hash hash.Hash
}

func (c *hashingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.hash.Write(p[:n])
	return n, err
}

// EncodedFile is a finished Parquet file waiting for upload.
type EncodedFile struct {
	Path        string // the temporary file
	Hour        time.Time
	First, Last uint64
	Rows        int64
	Bytes       int64
	SHA256      string // hex
}

// encoder cuts a job's events into hour-partitioned Parquet files, reading them in seq order,
// in one pass or in the passes of a layout (see layout.go). Memory stays bounded: without a
// layout, at most plan.MaxOpenFiles files are open, each building at most rowGroupBytes of
// events before writing them out as a row group; with one, the layout keeps the open files
// within plan.MaxOpenBytes.
//
// Writing a row group (laying out its columns, Parquet encoding and snappy) costs several times
// as much as building it (copying the records), so it runs on a second goroutine, the writer:
// the next row group is built while the last is written (rowgroup.go). The hand-off is
// unbuffered, so at most one built row group waits beside the one being written. Once a file
// is handed to the writer, only the writer touches its Parquet writer and temporary file.
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

	// spare holds row groups the writer has written, for files that go on to build another: at
	// most a few, so that the memory kept is bounded whatever the number of files.
	spare  chan *rowGroup
	values *columnValues // the writer's

	writes     chan writeOp
	writerDone chan struct{} // closed when the writer has stopped, after a failure or close
	writeErr   error         // why the writer stopped early; read only after writerDone
	stopped    bool          // writes is closed
}

// writeOp is one piece of work for the writer: a row group to write into f, or, with nil rows,
// f's footer to write and the finished file to hand on.
type writeOp struct {
	f    *partFile
	rows *rowGroup
}

// newEncoder starts an encoder; close or abort stops its writer goroutine.
func newEncoder(plan store.ExportPlan, rowGroupBytes int64, dir, configID string, done func(EncodedFile) error) *encoder {
	e := &encoder{
		plan: plan, rowGroupBytes: rowGroupBytes, dir: dir, configID: configID, done: done,
		props: WriterProperties(), open: map[int64]*partFile{},
		spare: make(chan *rowGroup, 2), values: newColumnValues(),
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
	for op := range e.writes {
		if op.rows == nil {
			e.writeErr = e.finishFile(op.f)
		} else {
			e.writeErr = e.values.fill(op.rows)
			if e.writeErr == nil {
				if err := e.values.write(op.f.writer); err != nil {
					e.writeErr = fmt.Errorf("write parquet file: %w", err)
				}
			}
			op.rows.reset()
			select {
			case e.spare <- op.rows:
			default:
			}
		}
		if e.writeErr != nil {
			return
		}
	}
}

// send hands op to the writer, or returns why the writer has stopped.
func (e *encoder) send(op writeOp) error {
	select {
	case e.writes <- op:
		return nil
	case <-e.writerDone:
		if op.rows == nil { // a finish: the file is no longer among the open ones
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
// checked whole when its row group is written.
func (e *encoder) add(seq uint64, rec []byte) error {
	micros, err := event.EventMicrosOf(rec)
	if err != nil {
		return fmt.Errorf("event %d: %w", seq, err)
	}
	hour := hourOf(micros)
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
		f = e.create(hour, seq)
	}
	e.uses++
	f.lastUse = e.uses
	f.rows.add(seq, rec)
	size := int64(len(rec))
	f.rgBytes += size
	f.eventBytes += size
	f.last = seq
	f.count++
	if f.rgBytes >= e.rowGroupBytes {
		if err := e.flushRowGroup(f, true); err != nil {
			return err
		}
	}
	if last || f.eventBytes >= e.plan.MaxFileEventBytes {
		return e.finish(f)
	}
	return nil
}

// create starts the file of an hour at its first event.
func (e *encoder) create(hour int64, first uint64) *partFile {
	// A new file's row group starts small: with a layout, many small hours may be open at once.
	f := &partFile{hour: hour, path: filepath.Join(e.dir, fmt.Sprintf("%020d.parquet", first)),
		rows: new(rowGroup), first: first}
	e.open[hour] = f
	return f
}

// createFile creates f's temporary file and Parquet writer, before its first row group.
func (e *encoder) createFile(f *partFile) error {
	file, err := os.OpenFile(f.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	out := &hashingWriter{w: file, hash: sha256.New()}
	w, err := newParquetWriter(out, e.props)
	if err != nil {
		file.Close()
		os.Remove(f.path)
		return err
	}
	f.file, f.out, f.writer = file, out, w
	return nil
}

// flushRowGroup hands f's row group to the writer; a file that goes on (more) starts another.
func (e *encoder) flushRowGroup(f *partFile, more bool) error {
	if f.rows.rows() == 0 {
		if !more { // another file may use it
			select {
			case e.spare <- f.rows:
			default:
			}
			f.rows = nil
		}
		return nil
	}
	if f.writer == nil {
		if err := e.createFile(f); err != nil {
			return err
		}
	}
	rows := f.rows
	f.rgBytes, f.rows = 0, nil
	if more {
		// Often to fill another row group: one the writer is done with, if any, saves growing
		// a new one.
		select {
		case f.rows = <-e.spare:
		default:
			f.rows = new(rowGroup)
		}
	}
	return e.send(writeOp{f: f, rows: rows})
}

// finish hands f's last row group and its footer to the writer.
func (e *encoder) finish(f *partFile) error {
	delete(e.open, f.hour)
	err := e.flushRowGroup(f, false)
	if err != nil {
		discard(f)
		return err
	}
	return e.send(writeOp{f: f})
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
	if cerr := f.file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.path)
		return fmt.Errorf("write parquet file: %w", err)
	}
	return e.done(EncodedFile{Path: f.path, Hour: time.Unix(f.hour*3600, 0).UTC(), First: f.first, Last: f.last, Rows: f.count, Bytes: f.out.n,
		SHA256: hex.EncodeToString(f.out.hash.Sum(nil))})
}

// discard closes f and removes its temporary file.
func discard(f *partFile) {
	if f.writer == nil {
		return
	}
	f.writer.Close()
	f.file.Close()
	os.Remove(f.path)
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

// abort stops the writer, then closes and removes every open file after a failure.
func (e *encoder) abort() {
	e.stop()
	for _, f := range e.open {
		discard(f)
	}
	e.open = map[int64]*partFile{}
}
