package exporter

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
)

// TestEncoderWritesAsPqarrow: a file the encoder writes, chunk by chunk from the records, is
// byte for byte the file pqarrow writes from Arrow record batches of the same row groups (how
// the exporter wrote them before), with the same metadata: same schema, pages, encodings and
// statistics. The events have nulls, empty values, long payloads and repeated values, so that
// every column kind, dictionaries and their fallback to plain encoding are met; row groups end
// before the file streams and after. (The encoder's own rule, dropping a dictionary of mostly
// distinct values early, is off here: TestDictionaryOfDistinctValuesFallsBack.)
func TestEncoderWritesAsPqarrow(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	body := eventtest.NDJSON(0, 3000, start, time.Second)
	body = append(body, eventtest.Large(start, 40, 20_000, "q")...) // past the dictionary's page limit
	body = append(body, `{"eventTimestamp":"2026-11-21T00:00:00Z","tenantId":"","action":null,"x":{"y":[1,2]}}`+"\n"...)
	recs := recordsOf(t, body)
	for _, rowGroupBytes := range []int64{300 << 10, 1200 << 10} {
		ours := encodeOneFile(t, recs, rowGroupBytes, true)
		r, err := file.NewParquetReader(bytes.NewReader(ours))
		if err != nil {
			t.Fatal(err)
		}
		var groups []int
		for i := range r.NumRowGroups() {
			groups = append(groups, int(r.MetaData().RowGroup(i).NumRows()))
		}
		if len(groups) < 2 {
			t.Fatalf("row groups of %d bytes: %v, want several", rowGroupBytes, groups)
		}
		theirs := pqarrowFile(t, recs, groups, [][2]string{{MetaSchemaVersion, SchemaVersion}, {MetaConfigurationID, "cfg"},
			{MetaFirstSequence, "1"}, {MetaLastSequence, fmt.Sprint(len(recs))}})
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("row groups %v: the files differ: %d bytes written by the encoder, %d by pqarrow", groups, len(ours), len(theirs))
		}
	}
}

// pqarrowFile writes recs as pqarrow does, in row groups of the given sizes, with metadata.
func pqarrowFile(t *testing.T, recs [][]byte, groups []int, metadata [][2]string) []byte {
	t.Helper()
	var out bytes.Buffer
	pw, err := pqarrow.NewFileWriter(Schema, &out, WriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, Schema)
	defer b.Release()
	next := 0
	for _, n := range groups {
		for i := next; i < next+n; i++ {
			var r event.Record
			if err := r.Parse(recs[i]); err != nil {
				t.Fatal(err)
			}
			appendRow(b, uint64(i+1), &r)
		}
		next += n
		batch := b.NewRecordBatch()
		if err := pw.Write(batch); err != nil {
			t.Fatal(err)
		}
		batch.Release()
	}
	for _, kv := range metadata {
		pw.AppendKeyValueMetadata(kv[0], kv[1])
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// appendRow adds a parsed record to the builders of a record batch of Schema: how the exporter
// built row groups before it wrote them from the records.
func appendRow(b *array.RecordBuilder, seq uint64, r *event.Record) {
	var idText [36]byte
	for i, c := range columns {
		switch i {
		case colID:
			encodeUUID(idText[:], r.ID)
			b.Field(i).(*array.StringBuilder).BinaryBuilder.Append(idText[:])
		case colEventTimestamp:
			b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(r.EventMicros))
		case colRecvTimestamp:
			b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(r.RecvMicros))
		case colSequence:
			b.Field(i).(*array.Int64Builder).Append(int64(seq))
		default:
			sb := b.Field(i).(*array.StringBuilder)
			if v := r.Fields[c.field]; len(v) > 0 {
				sb.BinaryBuilder.Append(v)
			} else {
				sb.AppendNull()
			}
		}
	}
}

// BenchmarkEncoder is the encoder alone: 100,000 buffered events of one hour, read in seq
// order, into one file in the temporary directory.
func BenchmarkEncoder(b *testing.B) {
	var d event.Decoder
	batch, err := d.NDJSON(eventtest.NDJSON(0, 100_000, time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), 30*time.Millisecond), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for b.Loop() {
		enc := newEncoder(store.ExportPlan{MaxFileEventBytes: 128 << 20, MaxOpenFiles: 8}, 16<<20, dir, "cfg", func(f EncodedFile) error { return os.Remove(f.Path) })
		for i := range batch.Len() {
			if err := enc.add(uint64(i+1), batch.Record(i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := enc.close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch.Len()*b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestDataPagesAreSmall: a column's data pages are cut at dataPageBytes, overshooting it by at
// most the chunk of rows written last (the writer checks a page's size after each), in a file
// with a row group of about 12 MiB of events.
func TestDataPagesAreSmall(t *testing.T) {
	t.Parallel()
	recs := recordsOf(t, eventtest.NDJSON(0, 20_000, time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), 100*time.Millisecond))
	longest := 0
	for _, r := range recs {
		longest = max(longest, len(r))
	}
	r, err := file.NewParquetReader(bytes.NewReader(encodeOneFile(t, recs, 64<<20, false)))
	if err != nil {
		t.Fatal(err)
	}
	if r.NumRowGroups() != 1 {
		t.Fatalf("%d row groups, want 1", r.NumRowGroups())
	}
	rg := r.RowGroup(0)
	largest, largestColumn := 0, ""
	for c := range columns {
		pages, err := rg.GetColumnPageReader(c)
		if err != nil {
			t.Fatal(err)
		}
		for pages.Next() {
			p := pages.Page()
			if _, dict := p.(*file.DictionaryPage); !dict && len(p.Data()) > largest {
				largest, largestColumn = len(p.Data()), columns[c].name
			}
		}
		if err := pages.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if limit := dataPageBytes + chunkRows*(longest+4); largest > limit {
		t.Errorf("column %s has a data page of %d bytes, over %d", largestColumn, largest, limit)
	}
	if largest < dataPageBytes {
		t.Errorf("the largest data page (column %s) holds %d bytes, under %d: no page was cut", largestColumn, largest, dataPageBytes)
	}
	t.Logf("largest data page: %d bytes, column %s", largest, largestColumn)
}
