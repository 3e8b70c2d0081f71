package exporter

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/auditexport/auditexport/event/eventtest"
)

// TestDictionaryMirrorWritesAsWriteBatch: a nullable string column written through columnDict
// is byte for byte the column WriteBatch alone writes (pages, dictionary, statistics), whatever
// its chunks hold: known values only, new ones among them, values drifting (each chunk's least
// and greatest are not the column's), nulls, only nulls, values enough in number or in bytes to
// pass the mirror's limits, or the dictionary page's (the encoder falls back to plain). And the
// mirror does write most chunks of a column of few values as indices.
func TestDictionaryMirrorWritesAsWriteBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		distinct int // values drawn from
		pad      int // bytes each value is padded to
		newEvery int // every so many chunks, one of distinct values never seen
		drift    int // chunk c draws from values c/4*drift to c/4*drift+distinct
		nullRate float64
		dictMax  int64 // the dictionary page's limit
		indexed  bool  // most chunks must go as indices
	}{
		{name: "few values", distinct: 7, nullRate: 0.1, dictMax: 1 << 20, indexed: true},
		{name: "new values now and then", distinct: 300, newEvery: 3, nullRate: 0.3, dictMax: 1 << 20, indexed: true},
		{name: "no nulls", distinct: 1000, dictMax: 1 << 20, indexed: true},
		{name: "values drifting", distinct: 50, drift: 5, nullRate: 0.5, dictMax: 1 << 20, indexed: true},
		{name: "mostly nulls", distinct: 4, nullRate: 0.98, dictMax: 1 << 20, indexed: true},
		{name: "past the mirror's limit", distinct: 1 << 20, dictMax: 64 << 20},
		{name: "past the mirror's bytes", distinct: 400, pad: 1000, dictMax: 64 << 20},
		{name: "past the dictionary page", distinct: 1 << 20, dictMax: 32 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.distinct)))
			var chunks [][]parquet.ByteArray // nil is a null
			fresh := tc.distinct
			for c := range 60 {
				rows := make([]parquet.ByteArray, chunkRows-c%3) // the last chunk of a file is short
				for i := range rows {
					if rng.Float64() >= tc.nullRate {
						rows[i] = fmt.Appendf(nil, "value-%-*d", tc.pad, c/4*tc.drift+rng.IntN(tc.distinct))
					}
				}
				if tc.newEvery > 0 && c%tc.newEvery == 0 {
					rows[rng.IntN(len(rows))] = fmt.Appendf(nil, "value-%d", fresh)
					fresh++
				}
				chunks = append(chunks, rows)
			}
			if c := len(chunks) - 1; tc.nullRate > 0 {
				clear(chunks[c]) // a chunk of nulls only
			}
			var d columnDict
			mirrored := writeStringColumn(t, chunks, tc.dictMax, &d)
			plain := writeStringColumn(t, chunks, tc.dictMax, nil)
			sameParquet(t, mirrored, plain)
			if tc.indexed && d.indexed < len(chunks)/2 {
				t.Errorf("%d of %d chunks written as indices", d.indexed, len(chunks))
			}
			if !tc.indexed && !d.off {
				t.Errorf("the mirror is still on after %d chunks past its limits", len(chunks))
			}
		})
	}
}

// sameParquet fails unless a and b hold the same pages and the same column chunk metadata:
// encodings, statistics, sizes. Their footers may list the encoding statistics in another
// order: arrow-go gathers them in a map, so two files WriteBatch alone writes from the same
// values differ there when a dictionary falls back to plain.
func sameParquet(t *testing.T, a, b []byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("the files differ: %d bytes through the mirror, %d through WriteBatch", len(a), len(b))
	}
	footer := 8 + int(binary.LittleEndian.Uint32(a[len(a)-8:]))
	if !bytes.Equal(a[:len(a)-footer], b[:len(b)-footer]) {
		t.Fatal("the files' pages differ")
	}
	if da, db := describeChunks(t, a), describeChunks(t, b); da != db {
		t.Fatalf("the column chunks differ:\n%s\nagainst\n%s", da, db)
	}
}

// describeChunks is the metadata of a file's column chunks, as text.
func describeChunks(t *testing.T, data []byte) string {
	t.Helper()
	r, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for g := range r.NumRowGroups() {
		rg := r.MetaData().RowGroup(g)
		for c := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			stats, err := cc.StatsSet()
			if err != nil {
				t.Fatal(err)
			}
			var pages []string
			for _, s := range cc.EncodingStats() {
				pages = append(pages, fmt.Sprintf("%v %v", s.PageType, s.Encoding))
			}
			slices.Sort(pages)
			fmt.Fprintf(&out, "%d/%d: %v %v values %d, %d bytes (%d), dictionary at %d, data at %d, stats %v",
				g, c, cc.Encodings(), pages, cc.NumValues(), cc.TotalCompressedSize(), cc.TotalUncompressedSize(),
				cc.DictionaryPageOffset(), cc.DataPageOffset(), stats)
			if stats {
				s, err := cc.Statistics()
				if err != nil {
					t.Fatal(err)
				}
				e, err := s.Encode()
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&out, " min %q max %q nulls %d", e.Min, e.Max, e.NullCount)
			}
			out.WriteString("\n")
		}
	}
	return out.String()
}

// writeStringColumn writes chunks as one row group of a file of one nullable string column,
// dictionary-encoded and snappy-compressed, in small pages, through d, or WriteBatch alone if d is nil.
func writeStringColumn(t *testing.T, chunks [][]parquet.ByteArray, dictMax int64, d *columnDict) []byte {
	t.Helper()
	node, err := schema.NewPrimitiveNodeLogical("v", parquet.Repetitions.Optional, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	root, err := schema.NewGroupNode("schema", parquet.Repetitions.Required, schema.FieldList{node}, -1)
	if err != nil {
		t.Fatal(err)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(true),
		parquet.WithDictionaryPageSizeLimit(dictMax), parquet.WithStats(true),
		parquet.WithDataPageSize(512)) // a page, with its statistics, per chunk or two

	var out bytes.Buffer
	w, err := file.NewParquetWriterWithError(&out, root, file.WithWriterProps(props))
	if err != nil {
		t.Fatal(err)
	}
	rg, err := w.AppendBufferedRowGroupChecked()
	if err != nil {
		t.Fatal(err)
	}
	if d != nil {
		d.reset(true)
	}
	for _, rows := range chunks {
		var values []parquet.ByteArray
		defs := make([]int16, len(rows))
		for i, v := range rows {
			if v != nil {
				values, defs[i] = append(values, v), 1
			}
		}
		cw, err := rg.Column(0)
		if err != nil {
			t.Fatal(err)
		}
		if d != nil {
			err = d.write(cw.(*file.ByteArrayColumnChunkWriter), values, defs)
		} else {
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(values, defs, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestDictionaryOfDistinctValuesFallsBack: in each row group, a dictionary column whose first
// chunks are mostly distinct values (the sample's actor addresses) is written plain, without a
// dictionary, while one of few values (the actors) keeps its dictionary; the file reads back as
// the same table as the one written keeping every dictionary, as pqarrow does.
func TestDictionaryOfDistinctValuesFallsBack(t *testing.T) {
	t.Parallel()
	recs := recordsOf(t, eventtest.NDJSON(0, 6000, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 100*time.Millisecond))
	ours, kept := encodeOneFile(t, recs, 2<<20, false), encodeOneFile(t, recs, 2<<20, true)
	r, err := file.NewParquetReader(bytes.NewReader(ours))
	if err != nil {
		t.Fatal(err)
	}
	if r.NumRowGroups() < 2 {
		t.Fatalf("%d row groups, want several", r.NumRowGroups())
	}
	for g := range r.NumRowGroups() {
		for _, c := range []struct {
			name string
			dict bool
		}{{"actor_ip", false}, {"actor_id", true}, {"tenant_id", true}} {
			cc, err := r.MetaData().RowGroup(g).ColumnChunk(r.MetaData().Schema.ColumnIndexByName(c.name))
			if err != nil {
				t.Fatal(err)
			}
			if got := cc.HasDictionaryPage(); got != c.dict {
				t.Errorf("row group %d, column %s: dictionary page %v, want %v (encodings %v)", g, c.name, got, c.dict, cc.Encodings())
			}
		}
	}
	if len(ours) >= len(kept) {
		t.Errorf("the file without the addresses' dictionaries is %d bytes, with them %d", len(ours), len(kept))
	}
	if a, b := readTable(t, ours), readTable(t, kept); !array.TableEqual(a, b) {
		t.Error("the files read back as different tables")
	}
}

func readTable(t *testing.T, data []byte) arrow.Table {
	t.Helper()
	table, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(data), nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(table.Release)
	return table
}
