package exporter

import (
	"bytes"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
)

// TestRowGroupsAsPqarrowWritesThem: a file written from the records, row group by row group,
// is byte for byte the file pqarrow writes from Arrow record batches of the same rows (how the
// exporter wrote them before), with the same metadata: same schema, pages, encodings and
// statistics. The events have nulls, empty values, long payloads and repeated values, so that
// every column kind, dictionaries and their fallback to plain encoding are met.
func TestRowGroupsAsPqarrowWritesThem(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	body := eventtest.NDJSON(0, 3000, start, time.Second)
	body = append(body, eventtest.Large(start, 40, 20_000, "q")...) // past the dictionary's page limit
	body = append(body, `{"eventTimestamp":"2026-11-21T00:00:00Z","tenantId":"","action":null,"x":{"y":[1,2]}}`+"\n"...)
	recs := recordsOf(t, body)
	const perGroup = 1000
	metadata := [][2]string{{MetaSchemaVersion, SchemaVersion}, {MetaConfigurationID, "cfg"}, {MetaFirstSequence, "1"}}

	var ours bytes.Buffer
	w, err := newParquetWriter(&ours, WriterProperties())
	if err != nil {
		t.Fatal(err)
	}
	values := newColumnValues()
	for first := 0; first < len(recs); first += perGroup {
		var g rowGroup
		for i := first; i < min(first+perGroup, len(recs)); i++ {
			g.add(uint64(i+1), recs[i])
		}
		if err := values.fill(&g); err != nil {
			t.Fatal(err)
		}
		if err := values.write(w); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range metadata {
		w.AppendKeyValueMetadata(kv[0], kv[1])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	var theirs bytes.Buffer
	pw, err := pqarrow.NewFileWriter(Schema, &theirs, WriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, Schema)
	defer b.Release()
	for first := 0; first < len(recs); first += perGroup {
		for i := first; i < min(first+perGroup, len(recs)); i++ {
			var r event.Record
			if err := r.Parse(recs[i]); err != nil {
				t.Fatal(err)
			}
			appendRow(b, uint64(i+1), &r)
		}
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
	if !bytes.Equal(ours.Bytes(), theirs.Bytes()) {
		t.Fatalf("the files differ: %d bytes written from the records, %d by pqarrow", ours.Len(), theirs.Len())
	}
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
