package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/auditexport/auditexport/store/recordblock"
)

// Events are stored in chunks, one row of event_chunks per run of events appended together: an
// event as a row of its own cost a heap tuple and two index entries, and reads of 4,096 rows
// (profiled: the COPY of the rows was most of an ingest's time in the database, the rows' reads
// most of an export's). A chunk holds at most chunkMaxEvents events and chunkMaxBytes of
// records, and never crosses a block (the trim unit), so a trim deletes whole chunks.
//
// A chunk's data is a format byte, then the records, each preceded by its length as a uvarint,
// compressed as one S2 block (github.com/klauspost/compress/s2): the engine compresses, so the
// column is stored as it comes (STORAGE EXTERNAL), the server never compresses nor decompresses,
// and what travels and is logged is about a quarter of the records' size. Seqs are not stored:
// a chunk's records are first_seq, first_seq+1, … last_seq.
const (
	chunkMaxEvents      = 256
	chunkMaxBytes       = 1 << 20
	chunkFormatS2  byte = 1
)

// errCorruptChunk is a chunk the engine cannot decode: the database was changed by hand, or
// damaged.
var errCorruptChunk = errors.New("corrupt chunk of events")

// chunkEncoder builds the data of chunks, reusing its buffer.
type chunkEncoder struct {
	raw []byte
}

// encode returns the data of a chunk holding records: its format byte, then their block.
func (c *chunkEncoder) encode(records [][]byte) []byte {
	var data []byte
	data, c.raw = recordblock.Append([]byte{chunkFormatS2}, c.raw, records)
	return data
}

// encodeAll returns the data of the chunks records are cut into at bounds.
func (c *chunkEncoder) encodeAll(records [][]byte, bounds []span) [][]byte {
	data := make([][]byte, len(bounds))
	for i, b := range bounds {
		data[i] = c.encode(records[b.from:b.to])
	}
	return data
}

// chunkDecoder reads the records of chunks, reusing its buffer.
type chunkDecoder struct {
	raw []byte
}

// each calls fn with the seq and record of each event of the chunk [first, last] after seq
// after, until fn returns false; it reports whether fn stopped. The record is valid only during
// fn.
func (c *chunkDecoder) each(first, last uint64, data []byte, after uint64, fn func(seq uint64, record []byte) bool) (stopped bool, err error) {
	if len(data) == 0 || data[0] != chunkFormatS2 || last < first {
		return false, fmt.Errorf("chunk %d-%d: %w", first, last, errCorruptChunk)
	}
	seq, tooMany := first, false
	_, stopped, err = recordblock.Each(data[1:], &c.raw, func(record []byte) bool {
		if seq > last {
			tooMany = true
			return false
		}
		seq++
		return seq-1 <= after || fn(seq-1, record)
	})
	switch {
	case err != nil:
		return false, fmt.Errorf("chunk %d-%d: %w: %w", first, last, errCorruptChunk, err)
	case tooMany || !stopped && seq != last+1:
		return false, fmt.Errorf("chunk %d-%d holds %d events: %w", first, last, seq-first, errCorruptChunk)
	}
	return stopped, nil
}

// span is a run of the pending appends, [from, to) in ew.records.
type span struct{ from, to int }

// chunkBounds cuts the pending appends, the first of which has seq first, into chunks: at most
// chunkMaxEvents events and chunkMaxBytes bytes each (a longer record alone), none crossing a
// block.
func (ew *eventWriter) chunkBounds(first uint64) []span {
	b := 0
	return cutChunks(ew.records, func(i int) bool {
		seq := first + uint64(i)
		for b < len(ew.tail) && ew.tail[b].Last < seq {
			b++
		}
		return b < len(ew.tail) && ew.tail[b].First == seq
	})
}

// cutChunks cuts records into chunks: at most chunkMaxEvents events and chunkMaxBytes bytes each
// (a longer record alone), and a new one at each record i where opens(i) (called in order).
func cutChunks(records [][]byte, opens func(i int) bool) []span {
	var out []span
	start, bytes := 0, 0
	for i, r := range records {
		if i > start && (opens(i) || i-start == chunkMaxEvents || bytes+len(r) > chunkMaxBytes) {
			out = append(out, span{start, i})
			start, bytes = i, 0
		}
		bytes += len(r)
	}
	return append(out, span{start, len(records)})
}

// Reads of events go in pages of the chunks that hold the next scanPageEvents events (seqs are
// dense), so that a reader that stops early (ReadEvents reads 4,096 events at a time) makes the
// server read little more than it takes. The chunks are found by last_seq: those above after, up
// to the one holding after+scanPageEvents.
const (
	scanPageEvents = 4096
	scanPage       = `SELECT first_seq, last_seq, data FROM event_chunks WHERE last_seq > $1
	AND last_seq <= coalesce((SELECT last_seq FROM event_chunks WHERE last_seq >= $2 ORDER BY last_seq LIMIT 1), $2)
	ORDER BY last_seq`
)

// ScanEvents calls fn with each event after seq after, in order, until fn returns false. The
// record is valid only during fn.
func (r *readTx) ScanEvents(after uint64, fn func(seq uint64, record []byte) bool) error {
	if err := r.flushEvents(); err != nil {
		return err
	}
	var chunks chunkDecoder
	for {
		n, stopped, err := r.scanPage(&chunks, &after, fn)
		if err != nil || stopped || n == 0 {
			return err
		}
	}
}

// scanPage calls fn with the events of one page after *after, moving *after on; it reports how
// many chunks it read and whether fn stopped.
func (r *readTx) scanPage(chunks *chunkDecoder, after *uint64, fn func(seq uint64, record []byte) bool) (n int, stopped bool, err error) {
	rows, err := r.tx.Query(r.ctx, scanPage, int64(*after), int64(*after+scanPageEvents))
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 3 || len(raw[0]) != 8 || len(raw[1]) != 8 {
			return n, false, fmt.Errorf("unexpected chunk row")
		}
		first, last := binary.BigEndian.Uint64(raw[0]), binary.BigEndian.Uint64(raw[1])
		n++
		stopped, err := chunks.each(first, last, raw[2], *after, fn)
		if err != nil || stopped {
			return n, stopped, err
		}
		*after = last
	}
	return n, false, rows.Err()
}
