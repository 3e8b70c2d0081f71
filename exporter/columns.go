package exporter

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/exporter/destination"
)

// How events become columns. The files are those pqarrow writes from Arrow record batches of
// Schema (the same schema, key-value metadata, pages, encodings and statistics:
// TestEncoderWritesAsPqarrow compares them byte for byte), but written through Parquet's column
// writers straight from the buffered records, chunk by chunk: each string column's values are
// slices of the records themselves. Building Arrow arrays first copied every field into builders
// grown by doubling, a whole row group of them, and pqarrow converted them back: most of the
// export's allocation and of its memory (the profiles of BenchmarkVersusDuckDB).

// rowChunk is up to chunkRows events of a file, their records copied out of the buffer back to
// back, with their seqs. The encoder fills it; the writer encodes it and gives it back.
type rowChunk struct {
	data []byte
	ends []int
	seqs []uint64
	cols *rowColumns // its values laid out as columns, once handed to the writer
}

func (c *rowChunk) add(seq uint64, rec []byte) {
	c.data = append(c.data, rec...)
	c.ends = append(c.ends, len(c.data))
	c.seqs = append(c.seqs, seq)
}

func (c *rowChunk) rows() int { return len(c.seqs) }

func (c *rowChunk) reset() {
	c.data, c.ends, c.seqs = c.data[:0], c.ends[:0], c.seqs[:0]
}

// record returns row i's record.
func (c *rowChunk) record(i int) []byte {
	start := 0
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.data[start:c.ends[i]]
}

// Chunks and their columns written, for reuse by the next chunk of any export: an export job
// in a steady stream of events lasts about a tenth of a second, and growing each job's chunks
// anew was an eighth of what an export allocated end to end.
var (
	spareChunks  = sync.Pool{New: func() any { return new(rowChunk) }}
	spareColumns = sync.Pool{New: func() any { return newRowColumns() }}
)

// newChunk returns an empty chunk, a spare one if any.
func (e *encoder) newChunk() *rowChunk { return spareChunks.Get().(*rowChunk) }

// layOut lays c out as columns, for the writer.
func (e *encoder) layOut(c *rowChunk) error {
	c.cols = spareColumns.Get().(*rowColumns)
	return c.cols.fill(c)
}

// recycle keeps a chunk, and its columns, for reuse; it runs on either goroutine.
func (e *encoder) recycle(c *rowChunk) {
	if c.cols != nil {
		spareColumns.Put(c.cols)
		c.cols = nil
	}
	poisonIfTesting(c.data[:cap(c.data)]) // tests: a chunk's records must not be read once it is recycled
	c.reset()
	spareChunks.Put(c)
}

// rowColumns are a chunk's values column by column. Strings point into the chunk's records, but
// the ids, written as text into idText. The encoder lays a chunk out as it hands it to the
// writer, which meanwhile encodes the chunk before: laid out by the writer, it was a quarter
// of the writer's time, the export's critical path, while the writer's helper waited.
type rowColumns struct {
	strings [][]parquet.ByteArray // by column; nil for the int64 columns
	defs    [][]int16             // definition levels of the nullable columns: 1 present, 0 null
	ints    [][]int64             // the timestamp and sequence columns
	idText  []byte
	record  event.Record
}

func newRowColumns() *rowColumns {
	return &rowColumns{strings: make([][]parquet.ByteArray, len(columns)), defs: make([][]int16, len(columns)),
		ints: make([][]int64, len(columns))}
}

// columnValues is the writer's: it encodes a chunk's columns into a row group on two
// goroutines, the writer and a helper, each taking the next column left: encoding is most of
// an export's CPU, and a file's columns are independent (the row group writes them out in
// order when it ends). work hands the helper a chunk, done says it is through with it.
type columnValues struct {
	cols   *rowColumns
	rg     file.BufferedRowGroupWriter
	dicts  []columnDict
	next   atomic.Int32
	errs   []error
	work   chan struct{}
	done   chan struct{}
	helper sync.Once
}

func newColumnValues() *columnValues {
	return &columnValues{errs: make([]error, len(columns)), work: make(chan struct{}), done: make(chan struct{})}
}

// stop ends the helper, if it was started; the values must not be written afterwards.
func (c *columnValues) stop() {
	c.helper.Do(func() {}) // never started after this
	close(c.work)
}

// fill lays out g's rows as columns.
func (c *rowColumns) fill(g *rowChunk) error {
	n := g.rows()
	for i := range columns {
		c.strings[i], c.defs[i], c.ints[i] = c.strings[i][:0], c.defs[i][:0], c.ints[i][:0]
	}
	if cap(c.idText) < 36*n {
		c.idText = make([]byte, 36*n)
	}
	c.idText = c.idText[:36*n]
	for row := range n {
		r := &c.record
		if err := r.Parse(g.record(row)); err != nil {
			return fmt.Errorf("event %d: %w", g.seqs[row], err)
		}
		for i, col := range columns {
			switch i {
			case colID:
				text := c.idText[36*row : 36*row+36 : 36*row+36]
				encodeUUID(text, r.ID)
				c.strings[i] = append(c.strings[i], text)
			case colEventTimestamp:
				c.ints[i] = append(c.ints[i], r.EventMicros)
			case colRecvTimestamp:
				c.ints[i] = append(c.ints[i], r.RecvMicros)
			case colSequence:
				c.ints[i] = append(c.ints[i], int64(g.seqs[row]))
			default:
				if v := r.Fields[col.field]; len(v) > 0 {
					c.strings[i] = append(c.strings[i], v)
					c.defs[i] = append(c.defs[i], 1)
				} else {
					c.defs[i] = append(c.defs[i], 0)
				}
			}
		}
	}
	return nil
}

// write encodes cols into the row group rg, whose dictionary columns dicts mirror: for each
// column, what pqarrow's writing of the same rows as a record batch does, in the same batches.
func (c *columnValues) write(cols *rowColumns, rg file.BufferedRowGroupWriter, dicts []columnDict) error {
	c.helper.Do(func() {
		go func() {
			for range c.work {
				c.encodeColumns()
				c.done <- struct{}{}
			}
		}()
	})
	c.cols, c.rg, c.dicts = cols, rg, dicts
	c.next.Store(0)
	c.work <- struct{}{}
	c.encodeColumns()
	<-c.done
	err := errors.Join(c.errs...)
	clear(c.errs)
	return err
}

// encodeColumns encodes the next column left until none is.
func (c *columnValues) encodeColumns() {
	for {
		k := int(c.next.Add(1)) - 1
		if k >= len(encodeOrder) {
			return
		}
		i := encodeOrder[k]
		c.errs[i] = c.encodeColumn(i)
	}
}

// encodeOrder is the order the two goroutines take a chunk's columns in: the costly first
// (strings written plain, each value its own bytes; then dictionary strings; then integers), so
// that what is left when one of them is through is small and the other waits little for it.
var encodeOrder = func() []int {
	order := make([]int, len(columns))
	for i := range order {
		order[i] = i
	}
	cost := func(i int) int {
		switch c := columns[i]; {
		case c.dataType.ID() != arrow.STRING:
			return 0
		case c.dict:
			return 1
		default:
			return 2
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cost(b) - cost(a) })
	return order
}()

func (c *columnValues) encodeColumn(i int) error {
	col := columns[i]
	cw, err := c.rg.Column(i)
	if err != nil {
		return err
	}
	var defs []int16
	if col.nullable {
		defs = c.cols.defs[i]
	}
	switch cw := cw.(type) {
	case *file.ByteArrayColumnChunkWriter:
		if col.dict {
			return c.dicts[i].write(cw, c.cols.strings[i], defs)
		}
		_, err = cw.WriteBatch(c.cols.strings[i], defs, nil)
	case *file.Int64ColumnChunkWriter:
		_, err = cw.WriteBatch(c.cols.ints[i], defs, nil)
	default:
		err = fmt.Errorf("column %s: unexpected writer %T", col.name, cw)
	}
	return err
}

// parquetSchema is Schema as pqarrow maps it to Parquet, and storedSchema the key-value
// metadata pqarrow.WithStoreSchema adds: Schema serialized as Arrow IPC, which Arrow readers
// use to restore its exact types.
var parquetSchema, storedSchema = func() (*schema.GroupNode, metadata.KeyValueMetadata) {
	sc, err := pqarrow.ToParquet(Schema, WriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		panic(err)
	}
	var ipcSchema bytes.Buffer // as pqarrow serializes it (flight.SerializeSchema)
	iw := ipc.NewWriter(&ipcSchema, ipc.WithSchema(Schema), ipc.WithAllocator(memory.DefaultAllocator))
	if err := iw.Close(); err != nil {
		panic(err)
	}
	meta := metadata.KeyValueMetadata{}
	meta.Append("ARROW:schema", base64.StdEncoding.EncodeToString(ipcSchema.Bytes()))
	return sc.Root(), meta
}()

// newParquetWriter starts a file of Schema on out.
func newParquetWriter(out io.Writer, props *parquet.WriterProperties) (*file.Writer, error) {
	// The writer appends the file's own metadata to this: each its own copy.
	meta := make(metadata.KeyValueMetadata, len(storedSchema))
	copy(meta, storedSchema)
	return file.NewParquetWriterWithError(out, parquetSchema, file.WithWriterProps(props), file.WithWriteMetadata(meta))
}

// lazyFile is a temporary file that is created at its first write beyond the Parquet header
// (so a file holds no descriptor until a row group or its footer is written), counting and
// hashing what is written, so a finished file's size and SHA-256 (for the job's digest) come
// without reading it again.
type lazyFile struct {
	path string
	file *os.File
	head []byte // written before the file was created
	n    int64
	hash hash.Hash   // SHA-256, for the job's digest and the upload
	crc  hash.Hash32 // CRC-32C, for the upload
}

func newLazyFile(path string) *lazyFile {
	return &lazyFile{path: path, hash: sha256.New(), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
}

// checksums are those of what has been written.
func (l *lazyFile) checksums() destination.Checksums {
	var c destination.Checksums
	l.hash.Sum(c.SHA256[:0])
	c.CRC32C = l.crc.Sum32()
	return c
}

func (l *lazyFile) Write(p []byte) (int, error) {
	if l.file == nil {
		if len(l.head)+len(p) <= 16 {
			l.head = append(l.head, p...)
			l.n += int64(len(p))
			l.hash.Write(p)
			l.crc.Write(p)
			return len(p), nil
		}
		if err := l.create(); err != nil {
			return 0, err
		}
	}
	n, err := l.file.Write(p)
	l.n += int64(n)
	l.hash.Write(p[:n])
	l.crc.Write(p[:n])
	return n, err
}

// close closes the file, creating it if nothing was written beyond the header.
func (l *lazyFile) close() error {
	if l.file == nil {
		if err := l.create(); err != nil {
			if l.file != nil {
				l.file.Close()
			}
			return err
		}
	}
	return l.file.Close()
}

// create creates the file and writes the header held so far.
func (l *lazyFile) create() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	l.file = f
	_, err = f.Write(l.head)
	return err
}

// remove closes and removes the file, if it was created.
func (l *lazyFile) remove() {
	if l.file != nil {
		l.file.Close()
		os.Remove(l.path)
	}
}
