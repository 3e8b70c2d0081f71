package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"
	"sync/atomic"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/recordblock"
)

// Buffered events are stored in chunks: the events one write transaction appends to a
// segment, as one value under the seq of the first. A chunk value is
//
//	0xC2, uvarint count, CRC-32C (4 bytes, big-endian) of what follows, then the hour: 1 and the
//	unix hour (varint) of its events' event times when they share one, else 0; the records'
//	bytes (uvarint), then an s2 block of each event's record as a uvarint length and its bytes
//
// and the chunks of schema 3, still read, are the same without the hour and bytes (0xC1).
// Schema 5 keeps a chunk of ownBucketMinBytes or more in a bucket of its own, under that seq,
// its value under valueKey (putValue); smaller chunks, and those of schemas 3 and 4, are values
// in the segment's bucket, and read alike. Schema 2
// stored each event under its own seq, the value its record (which begins with the record's
// format byte, 1); it is read as well. Why chunks: an event per key made a group commit, the
// serial part of ingestion, put, page and write 4,000 values one by one (a write system call
// per page) and sync every byte of them: about 6 ms per commit, most of an ingest's time. A
// chunk is one value, compressed about four times (the events of a batch share their keys and
// much of their values), its pages contiguous: a commit of 4,000 events then takes under 2 ms.
// The checksum makes damage inside a chunk, which bbolt does not check, a DamagedError rather
// than wrong events. The hour lets an export's first pass (store.EventHourReader) lay its files
// out without decompressing the chunks: it was a tenth of an export's time.
const (
	formatChunk      byte = 0xC1 // schema 3
	formatChunkHours byte = 0xC2 // schema 4
)

// isChunk reports whether a segment's value is a chunk, not a single event of schema 2.
func isChunk(v []byte) bool {
	return len(v) > 0 && (v[0] == formatChunk || v[0] == formatChunkHours)
}

// Why large values have a bucket each (schema 5): bbolt keeps at least two values in a leaf and
// rewrites a whole leaf, overflow pages and all, when a key is added to it. With the chunks in
// the segment's bucket, every chunk was written again at each of the next few appends, about
// five times in all (the commits' pages were five times the chunks'), and each seal wrote again
// the megabyte of sorted ids of the two to four segments sealed before it (a sealing commit
// wrote about 5 MB, and took up to 20 ms). A value in a bucket of its own is written once; the
// leaves above it hold its 16-byte bucket header, cheap to rewrite. A value smaller than a page
// stays where it was: several share a leaf page, cheap to rewrite too, where a bucket of its own
// would take a page (or, under a quarter of a page, be kept inline in the parent's leaf with a
// bucket's overhead besides).
const ownBucketMinBytes = 4096

// valueKey is the one key of a bucket that holds one value (schema 5).
var valueKey = []byte{0}

// putValue stores v under key in b, in a bucket of its own when it is large.
func putValue(b *bbolt.Bucket, key, v []byte) error {
	if len(v) < ownBucketMinBytes {
		return b.Put(key, v)
	}
	own, err := b.CreateBucket(key)
	if err != nil {
		return err
	}
	return own.Put(valueKey, v)
}

// getValue returns the value under key in b, wherever putValue put it (nil if none).
func getValue(b *bbolt.Bucket, key []byte) []byte {
	if own := b.Bucket(key); own != nil {
		return own.Get(valueKey)
	}
	return b.Get(key)
}

// deleteValue removes the value under key in b, wherever putValue put it.
func deleteValue(b *bbolt.Bucket, key []byte) error {
	if b.Bucket(key) != nil {
		return b.DeleteBucket(key)
	}
	return b.Delete(key)
}

// segmentCursor walks a segment's values, chunks in buckets of their own (schema 5) or in the
// segment itself (schemas 2 to 4) alike: a bucket's key comes with its chunk as the value.
type segmentCursor struct {
	seg *bbolt.Bucket
	c   *bbolt.Cursor
}

func newSegmentCursor(seg *bbolt.Bucket) segmentCursor { return segmentCursor{seg, seg.Cursor()} }

func (s segmentCursor) First() ([]byte, []byte)        { return s.value(s.c.First()) }
func (s segmentCursor) Last() ([]byte, []byte)         { return s.value(s.c.Last()) }
func (s segmentCursor) Next() ([]byte, []byte)         { return s.value(s.c.Next()) }
func (s segmentCursor) Prev() ([]byte, []byte)         { return s.value(s.c.Prev()) }
func (s segmentCursor) Seek(k []byte) ([]byte, []byte) { return s.value(s.c.Seek(k)) }

// value resolves a chunk's bucket (v nil) to its chunk; one without it gives nil, which reads as
// damage.
func (s segmentCursor) value(k, v []byte) ([]byte, []byte) {
	if v == nil && k != nil {
		v = getValue(s.seg, k)
	}
	return k, v
}

// chunkMaxBytes bounds a chunk's records, so a group commit of several bodies is several
// chunks, each far below bbolt's largest value, which writePending compresses side by side: the
// group commit is ingestion's serial part, and its other requests wait for it.
const chunkMaxBytes = 1 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errChunkDamaged is a chunk whose checksum or contents do not hold.
var errChunkDamaged = errors.New("a chunk of buffered events fails its checksum")

// pendingChunk is the events a write transaction has appended to one segment since its last
// chunk was written; the records are the caller's, valid until the transaction ends.
type pendingChunk struct {
	segment uint64 // the segment's first seq: its bucket's key
	first   uint64 // the first event's seq: the chunk's key
	records [][]byte
	bytes   int // of the records
}

// writePending writes the pending chunks, in order. A transaction writes them when it ends, or
// before it reads the events (it must see its own appends).
func (w *eventWriter) writePending() error {
	n := len(w.pending)
	if cap(w.e.chunkOut) < n {
		w.e.chunkOut = make([][]byte, n)
	}
	values := w.e.chunkOut[:n]
	for i := range values {
		values[i] = w.e.chunkValue(w.chunks + i)
	}
	w.encodePending(values)
	for i := range w.pending {
		p := &w.pending[i]
		seg := w.tx.Bucket(bucketEvents).Bucket(seqKey(p.segment))
		if seg == nil {
			return fmt.Errorf("segment %d has no bucket", p.segment)
		}
		seg.FillPercent = 1 // append-only: fill pages completely
		if w.chunks < keptChunkBuffers {
			w.e.chunkValues[w.chunks] = values[i]
		}
		w.chunks++
		if err := putValue(seg, seqKey(p.first), values[i]); err != nil {
			return fmt.Errorf("append events %d-%d: %w", p.first, p.first+uint64(len(p.records))-1, err)
		}
		clear(p.records)
		p.records, p.bytes = p.records[:0], 0
	}
	clear(values) // bbolt holds them until the commit; the kept ones are in chunkValues
	w.pending = w.pending[:0]
	return nil
}

// encodePending encodes each pending chunk into values[i] (its buffer on entry), on two
// goroutines when there are several.
func (w *eventWriter) encodePending(values [][]byte) {
	var next atomic.Int32
	encode := func(raw *[]byte) {
		for i := int(next.Add(1)) - 1; i < len(values); i = int(next.Add(1)) - 1 {
			values[i], *raw = encodeChunk(values[i], *raw, w.pending[i].records)
		}
	}
	var helper sync.WaitGroup
	if len(values) > 1 {
		helper.Go(func() { encode(&w.e.chunkRaw[1]) })
	}
	encode(&w.e.chunkRaw[0])
	helper.Wait()
}

// keptChunkBuffers is how many chunk buffers are kept across transactions (each up to about
// chunkMaxBytes): enough for a usual group commit, so a burst does not pin its memory.
const keptChunkBuffers = 8

// chunkValue returns the i-th buffer for chunk values, kept across transactions: bbolt refers
// to a value until its transaction commits, so a transaction uses each once. Only the write
// transaction holding writeMu uses them, and chunkRaw.
func (e *Engine) chunkValue(i int) []byte {
	if i >= keptChunkBuffers {
		return nil // a rare large commit's: not kept after it
	}
	for len(e.chunkValues) <= i {
		e.chunkValues = append(e.chunkValues, nil)
	}
	return e.chunkValues[i]
}

// encodeChunk encodes records as a chunk value into dst (grown as needed), laying them out in
// raw first; it returns both buffers for reuse.
func encodeChunk(dst, raw []byte, records [][]byte) (value, rawOut []byte) {
	dst = append(dst[:0], formatChunkHours)
	dst = binary.AppendUvarint(dst, uint64(len(records)))
	dst = append(dst, 0, 0, 0, 0) // the checksum, once the rest is known
	checked := len(dst)
	hour, shared, size := store.ChunkHour(records)
	if shared {
		dst = binary.AppendVarint(append(dst, 1), hour)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(size))
	dst, raw = recordblock.Append(dst, raw, records)
	binary.BigEndian.PutUint32(dst[checked-4:checked], crc32.Checksum(dst[checked:], castagnoli))
	return dst, raw
}

// chunkCount is how many events a chunk value holds.
func chunkCount(v []byte) (uint64, error) {
	if !isChunk(v) {
		return 0, errChunkDamaged
	}
	n, size := binary.Uvarint(v[1:])
	if size <= 0 || n == 0 {
		return 0, errChunkDamaged
	}
	return n, nil
}

// chunkHeader is what a chunk value says of its events; the checksum has been checked.
type chunkHeader struct {
	count      uint64
	sharedHour bool  // all of its events' event times fall in hour (schema 4)
	hour       int64 // unix hour
	bytes      int64 // the records' bytes (schema 4)
	block      []byte
}

// parseChunk checks a chunk value's checksum and reads its header.
func parseChunk(v []byte) (chunkHeader, error) {
	count, err := chunkCount(v)
	if err != nil {
		return chunkHeader{}, err
	}
	_, size := binary.Uvarint(v[1:])
	checked := 1 + size + 4
	if len(v) < checked {
		return chunkHeader{}, errChunkDamaged
	}
	rest := v[checked:]
	if crc32.Checksum(rest, castagnoli) != binary.BigEndian.Uint32(v[checked-4:checked]) {
		return chunkHeader{}, errChunkDamaged
	}
	h := chunkHeader{count: count, block: rest}
	if v[0] == formatChunk {
		return h, nil
	}
	if len(rest) == 0 || rest[0] > 1 {
		return chunkHeader{}, errChunkDamaged
	}
	h.sharedHour, rest = rest[0] == 1, rest[1:]
	if h.sharedHour {
		hour, n := binary.Varint(rest)
		if n <= 0 {
			return chunkHeader{}, errChunkDamaged
		}
		h.hour, rest = hour, rest[n:]
	}
	bytes, n := binary.Uvarint(rest)
	if n <= 0 || bytes > math.MaxInt64 {
		return chunkHeader{}, errChunkDamaged
	}
	h.bytes, h.block = int64(bytes), rest[n:]
	return h, nil
}

// decodeBlock calls fn with each record of a parsed chunk (valid during fn) and its index, until
// fn returns false.
func decodeBlock(h chunkHeader, buf *[]byte, fn func(i uint64, rec []byte) bool) error {
	var i uint64
	n, stopped, err := recordblock.Each(h.block, buf, func(rec []byte) bool {
		if i == h.count {
			return false // more records than its count says
		}
		i++
		return fn(i-1, rec)
	})
	if err != nil || uint64(n) > h.count || !stopped && uint64(n) != h.count {
		return errChunkDamaged
	}
	return nil
}

// decodeBuffers keeps the buffers chunks are decoded into, across read transactions.
var decodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// eachEvent calls fn with each event of a segment's bucket from seq from on, in order, until fn
// returns false (then it reports false), reading chunks and single events alike. holds says the
// segment must hold from (a later segment follows it).
func eachEvent(seg *bbolt.Bucket, from uint64, holds bool, fn func(seq uint64, rec []byte) bool) (bool, error) {
	buf := decodeBuffers.Get().(*[]byte)
	defer decodeBuffers.Put(buf)
	return eachValue(seg, from, holds, func(seq uint64, v []byte) (uint64, bool, error) {
		return eachEventOf(seq, v, from, buf, fn)
	})
}

// eachEventOf calls fn with the events from seq from on of the value v, under key seq, until fn
// returns false; it returns how many events the value holds and whether fn wants more.
func eachEventOf(seq uint64, v []byte, from uint64, buf *[]byte, fn func(seq uint64, rec []byte) bool) (uint64, bool, error) {
	if isChunk(v) {
		h, err := parseChunk(v)
		if err != nil {
			return 0, false, err
		}
		return eachEventOfChunk(seq, h, from, buf, fn)
	}
	if _, err := event.IDOf(v); err != nil {
		// Neither a chunk nor a record (schema 2): its first byte was damaged.
		return 0, false, errChunkDamaged
	}
	more := true
	if seq >= from {
		more = fn(seq, v)
	}
	return 1, more, nil
}

// eachEventOfChunk is eachEventOf for a chunk already parsed (its checksum checked).
func eachEventOfChunk(seq uint64, h chunkHeader, from uint64, buf *[]byte, fn func(seq uint64, rec []byte) bool) (uint64, bool, error) {
	more := true
	err := decodeBlock(h, buf, func(i uint64, rec []byte) bool {
		if seq+i < from {
			return true
		}
		more = fn(seq+i, rec)
		return more
	})
	return h.count, more, err
}

// eachValue calls visit with each value of a segment's bucket, from the one holding seq from on,
// in order, until visit reports no more (then it reports false); visit returns how many events
// the value under key seq holds. holds says the segment must hold from (a later segment follows
// it).
//
// A segment's seqs have no gaps (each chunk's key follows the events of the one before), so a
// from that falls after a value it lies before another value of, or after the last value of a
// segment that must hold it, means a damaged count (chunk headers are outside the checksum):
// that is damage, never events skipped in silence.
func eachValue(seg *bbolt.Bucket, from uint64, holds bool, visit func(seq uint64, v []byte) (uint64, bool, error)) (bool, error) {
	c := newSegmentCursor(seg)
	k, v := c.Seek(seqKey(from))
	if k == nil || binary.BigEndian.Uint64(k) > from {
		// from may lie inside the chunk before.
		var pk, pv []byte
		if k == nil {
			pk, pv = c.Last()
		} else {
			pk, pv = c.Prev()
		}
		switch {
		case pk != nil && covers(pk, pv, from):
			k, v = pk, pv
		case k != nil && pk != nil || holds:
			return false, fmt.Errorf("no value holds event %d, which the keys around it place here: %w", from, errChunkDamaged)
		default:
			k, v = c.Seek(seqKey(from)) // back to the first key after from, if any
		}
	}
	more := true
	// A segment's seqs have no gaps: each value begins where the one before it ended, so a
	// damaged count (outside the checksum) is met as a gap, not as events skipped.
	var next uint64
	for ; k != nil && more; k, v = c.Next() {
		seq := binary.BigEndian.Uint64(k)
		if next != 0 && seq != next {
			return false, fmt.Errorf("events %d-%d are missing between two values: %w", next, seq-1, errChunkDamaged)
		}
		n, m, err := visit(seq, v)
		if err != nil {
			return false, fmt.Errorf("events from %d: %w", seq, err)
		}
		next, more = seq+n, m
	}
	return more, nil
}

// covers reports whether the value at key k, a chunk or one event, holds seq.
func covers(k, v []byte, seq uint64) bool {
	first := binary.BigEndian.Uint64(k)
	if !isChunk(v) {
		return first == seq
	}
	n, err := chunkCount(v)
	return err == nil && first <= seq && seq-first < n
}
