package exporter

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/auditexport/auditexport/event"
)

// How row groups are written. The files are those pqarrow writes from Arrow record batches of
// Schema (the same schema, key-value metadata, pages, encodings and statistics:
// TestRowGroupsAsPqarrowWritesThem compares them byte for byte), but written through Parquet's
// column writers straight from the buffered records: each string column's values are slices of
// the records themselves. Building Arrow arrays first copied every field into builders grown by
// doubling, and pqarrow converted them back: together most of the export's allocation and a third
// of its CPU (the profiles of BenchmarkVersusDuckDB).

// rowGroup is one row group's events: their records copied out of the buffer back to back, and
// their seqs. The encoder fills it; the writer turns it into columns, writes it and gives it
// back for another row group.
type rowGroup struct {
	data []byte
	ends []int
	seqs []uint64
}

func (g *rowGroup) add(seq uint64, rec []byte) {
	g.data = append(g.data, rec...)
	g.ends = append(g.ends, len(g.data))
	g.seqs = append(g.seqs, seq)
}

func (g *rowGroup) rows() int { return len(g.seqs) }

func (g *rowGroup) reset() {
	g.data, g.ends, g.seqs = g.data[:0], g.ends[:0], g.seqs[:0]
}

// record returns row i's record.
func (g *rowGroup) record(i int) []byte {
	start := 0
	if i > 0 {
		start = g.ends[i-1]
	}
	return g.data[start:g.ends[i]]
}

// columnValues is the writer's scratch: a row group's values column by column. Strings point into
// the row group's records, but the ids, written as text into idText.
type columnValues struct {
	strings [][]parquet.ByteArray // by column; nil for the int64 columns
	defs    [][]int16             // definition levels of the nullable columns: 1 present, 0 null
	ints    [][]int64             // the timestamp and sequence columns
	idText  []byte
	record  event.Record
}

func newColumnValues() *columnValues {
	return &columnValues{strings: make([][]parquet.ByteArray, len(columns)), defs: make([][]int16, len(columns)),
		ints: make([][]int64, len(columns))}
}

// fill lays out g's rows as columns.
func (c *columnValues) fill(g *rowGroup) error {
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

// write writes the columns as the next row group of w, as pqarrow writes one record batch.
func (c *columnValues) write(w *file.Writer) error {
	rgw, err := w.AppendRowGroupChecked()
	if err != nil {
		return err
	}
	for i, col := range columns {
		cw, err := rgw.NextColumn()
		if err != nil {
			return err
		}
		var defs []int16
		if col.nullable {
			defs = c.defs[i]
		}
		switch cw := cw.(type) {
		case *file.ByteArrayColumnChunkWriter:
			_, err = cw.WriteBatch(c.strings[i], defs, nil)
		case *file.Int64ColumnChunkWriter:
			_, err = cw.WriteBatch(c.ints[i], defs, nil)
		default:
			err = fmt.Errorf("column %s: unexpected writer %T", col.name, cw)
		}
		if err != nil {
			return err
		}
	}
	return rgw.Close()
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
