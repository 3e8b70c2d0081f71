package exporter

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// Dictionary columns without arrow-go's per-value hashing. Its dictionary encoder looks every
// value up in a memo table that takes it as an interface{}: an allocation and a hash per value,
// 15% of the server's CPU in the end-to-end profile of BenchmarkVersusDuckDB, for columns that
// mostly repeat a few values. columnDict mirrors the dictionary the encoder builds for one
// column chunk (values in order of first appearance, as the memo numbers them), so a chunk of
// rows whose values are all known goes to the column writer as indices (WriteDictIndices) with
// its page statistics updated from its distinct values; a chunk with a new value goes through
// WriteBatch as before, and the mirror learns what the encoder did. The pages are those
// WriteBatch alone writes (TestEncoderWritesAsPqarrow).

// A column chunk whose first dictionaryCheckChunks chunks hold more distinct values than
// 1/dictionaryMaxShare of their values falls back to plain encoding there, its dictionary
// dropped: parquet-mr's rule (arrow-go applies it only to uncompressed columns). A dictionary of
// mostly distinct values is larger than the values it replaces, and costs a hash per value.
const (
	dictionaryCheckChunks = 2
	dictionaryMaxShare    = 2
)

// Limits of a mirror, beyond which its column chunk is written as before: a column whose chunks
// keep bringing new values (addresses, say) gains little from the mirror and would double the
// hashing, and its dictionary would be held twice. A mirror holds at most dictMirrorMaxEntries
// values (about 80 bytes each with the map's) of at most dictMirrorMaxBytes, and one chunk's
// new values beyond: under 1 MiB for each dictionary column of each file being written.
const (
	dictMirrorMaxEntries = 1 << 12
	dictMirrorMaxBytes   = 256 << 10
	dictMirrorNewShare   = 2 // a chunk after the first with more than 1/dictMirrorNewShare new values
)

// columnDict is the mirror of one column chunk's dictionary. Only the goroutine encoding its
// column touches it.
type columnDict struct {
	index   map[string]int32 // value → its index in the encoder's dictionary
	values  []string         // by index
	bytes   int              // of the values
	off     bool             // the column chunk is written through WriteBatch alone
	chunks  int              // chunks written into the column chunk
	indexed int              // of which as indices
	present int              // values (not nulls) written into the column chunk
	keep    bool             // never fall back early (as pqarrow writes)
	indices []int32          // scratch: the chunk's indices, one per row
	valid   []byte           // scratch: the chunk's validity bitmap
	seen    []uint32         // by index: the last chunk that used it, for statistics
}

// reset readies d for a new column chunk; keep turns the early fallback to plain off.
func (d *columnDict) reset(keep bool) {
	if d.index == nil {
		d.index = map[string]int32{}
	}
	clear(d.index)
	d.forget()
	clear(d.seen)
	d.off, d.chunks, d.indexed, d.present, d.keep = false, 0, 0, 0, keep
}

// dictEncoding is the part of arrow-go's dictionary encoder the mirror checks itself against.
type dictEncoding interface {
	Encoding() parquet.Encoding
	NumEntries() int
	AddRawSize(int64) // the values' plain size, by which the writer cuts pages
}

// write writes one chunk of rows of a nullable dictionary column: values are the present ones,
// defs one per row.
func (d *columnDict) write(cw *file.ByteArrayColumnChunkWriter, values []parquet.ByteArray, defs []int16) error {
	d.chunks++
	d.present += len(values)
	enc, isDict := cw.CurrentEncoder().(dictEncoding)
	if !isDict || enc.Encoding() != parquet.Encodings.PlainDict {
		d.off = true
		_, err := cw.WriteBatch(values, defs, nil)
		return err
	}
	// One batch of the writer's, or the raw size counted up front would cut pages early.
	if !d.off && int64(rowsOf(values, defs)) <= cw.Properties().WriteBatchSize() && d.lookUp(values, defs) {
		d.indexed++
		return d.writeIndices(cw, enc, values, defs)
	}
	if _, err := cw.WriteBatch(values, defs, nil); err != nil {
		return err
	}
	if !d.off {
		d.learn(values, enc)
	}
	if !d.keep && d.chunks == dictionaryCheckChunks && enc.Encoding() == parquet.Encodings.PlainDict &&
		enc.NumEntries()*dictionaryMaxShare > d.present {
		d.off = true
		return fallBackToPlain(cw)
	}
	return nil
}

// fallBackToPlain is cw.FallbackToPlain, which panics on a failed write, as an error.
func fallBackToPlain(cw *file.ByteArrayColumnChunkWriter) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("column %s: fall back to plain encoding: %v", cw.Descr().Name(), r)
		}
	}()
	cw.FallbackToPlain()
	return nil
}

// lookUp fills d.indices with the rows' indices, if every value is known; a null row's is 0.
// defs is nil for a column without nulls.
func (d *columnDict) lookUp(values []parquet.ByteArray, defs []int16) bool {
	d.indices = d.indices[:0]
	next := 0
	for row := range rowsOf(values, defs) {
		if defs != nil && defs[row] == 0 {
			d.indices = append(d.indices, 0)
			continue
		}
		j, ok := d.index[string(values[next])]
		if !ok {
			return false
		}
		d.indices = append(d.indices, j)
		next++
	}
	return true
}

func rowsOf(values []parquet.ByteArray, defs []int16) int {
	if defs == nil {
		return len(values)
	}
	return len(defs)
}

// learn adds the values the encoder has just numbered, or gives the mirror up.
func (d *columnDict) learn(values []parquet.ByteArray, enc dictEncoding) {
	added := 0
	for _, v := range values {
		if _, ok := d.index[string(v)]; !ok {
			s := string(v)
			d.index[s] = int32(len(d.values))
			d.values = append(d.values, s)
			d.bytes += len(s)
			added++
		}
	}
	stillDict := enc.Encoding() == parquet.Encodings.PlainDict
	if !stillDict || enc.NumEntries() != len(d.values) || len(d.values) > dictMirrorMaxEntries || d.bytes > dictMirrorMaxBytes ||
		(d.chunks > 1 && added*dictMirrorNewShare > len(values)) {
		d.off = true
		d.index = nil // its memory too; reset makes another
		d.forget()
	}
}

// forget drops the values, so that they may be collected.
func (d *columnDict) forget() {
	clear(d.values)
	d.values, d.bytes = d.values[:0], 0
}

// writeIndices writes the chunk as d.indices, updating the page statistics as WriteBatch would.
func (d *columnDict) writeIndices(cw *file.ByteArrayColumnChunkWriter, enc dictEncoding, values []parquet.ByteArray, defs []int16) error {
	rows, present := rowsOf(values, defs), len(values)
	nulls := rows - present
	switch stats := cw.PageStatistics().(type) {
	case nil:
	case *metadata.ByteArrayStatistics:
		stats.IncNulls(int64(nulls))
		stats.IncNumValues(int64(present))
		if present > 0 {
			lo, hi := d.minMax(defs)
			stats.SetMinMax(parquet.ByteArray(lo), parquet.ByteArray(hi))
		}
	default:
		return fmt.Errorf("column %s: unexpected statistics %T", cw.Descr().Name(), stats)
	}
	var validity *memory.Buffer
	if nulls > 0 {
		size := int(bitutil.BytesForBits(int64(rows)))
		d.valid = slices.Grow(d.valid[:0], size)[:size]
		clear(d.valid)
		for row, def := range defs {
			if def != 0 {
				bitutil.SetBit(d.valid, row)
			}
		}
		validity = memory.NewBufferBytes(d.valid)
	}
	data := array.NewData(arrow.PrimitiveTypes.Int32, rows,
		[]*memory.Buffer{validity, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(d.indices))}, nil, nulls, 0)
	defer data.Release()
	indices := array.NewInt32Data(data)
	defer indices.Release()
	// WriteBatch counts each value's plain size (length and bytes) before the page's check;
	// WriteDictIndices counts none, and would cut no page.
	rawSize := int64(4 * present)
	for _, v := range values {
		rawSize += int64(len(v))
	}
	enc.AddRawSize(rawSize)
	return cw.WriteDictIndices(indices, defs, nil)
}

// minMax returns the least and greatest of the values the rows in d.indices hold, comparing
// each distinct one once: string columns order their statistics as unsigned bytes, as Go
// compares strings.
func (d *columnDict) minMax(defs []int16) (lo, hi string) {
	if len(d.seen) < len(d.values) {
		d.seen = append(d.seen, make([]uint32, len(d.values)-len(d.seen))...)
	}
	mark, first := uint32(d.chunks), true
	for row, j := range d.indices {
		if defs != nil && defs[row] == 0 {
			continue
		}
		if d.seen[j] == mark {
			continue
		}
		d.seen[j] = mark
		v := d.values[j]
		switch {
		case first:
			lo, hi, first = v, v, false
		case v < lo:
			lo = v
		case v > hi:
			hi = v
		}
	}
	return lo, hi
}
