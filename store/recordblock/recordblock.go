// Package recordblock packs event records into one S2-compressed block
// (github.com/klauspost/compress/s2) and reads them back: each record as a uvarint length and
// its bytes, compressed as a whole. Both store engines keep buffered events in such blocks, a
// run of events appended together, each engine around it what it needs (bbolt a count and a
// checksum, PostgreSQL the run's seqs in columns): a batch's events share their keys and much of
// their values, so a block is about a quarter of its records' size.
package recordblock

import (
	"encoding/binary"
	"errors"

	"github.com/klauspost/compress/s2"
)

// ErrCorrupt is a block that does not decode into whole records.
var ErrCorrupt = errors.New("corrupt block of records")

// Append appends the block holding records to dst, laying the records out in scratch first;
// it returns both, grown as needed, for reuse.
func Append(dst, scratch []byte, records [][]byte) (out, scratchOut []byte) {
	scratch = scratch[:0]
	for _, r := range records {
		scratch = binary.AppendUvarint(scratch, uint64(len(r)))
		scratch = append(scratch, r...)
	}
	start := len(dst)
	need := start + s2.MaxEncodedLen(len(scratch))
	if cap(dst) < need {
		dst = append(make([]byte, 0, need), dst...)
	}
	block := s2.Encode(dst[start:need], scratch)
	return dst[:start+len(block)], scratch
}

// Each decodes block into *buf (grown as needed, kept by the caller for the next) and calls fn
// with each record in order, valid only during fn, until fn returns false. It reports how many
// records fn was given and whether it stopped; a block that does not decode, or whose last
// record is cut short, is ErrCorrupt (the records before it have been given).
func Each(block []byte, buf *[]byte, fn func(record []byte) bool) (n int, stopped bool, err error) {
	size, err := s2.DecodedLen(block)
	if err != nil {
		return 0, false, ErrCorrupt
	}
	if cap(*buf) < size {
		*buf = make([]byte, size)
	}
	raw, err := s2.Decode((*buf)[:size], block)
	if err != nil {
		return 0, false, ErrCorrupt
	}
	for len(raw) > 0 {
		l, k := binary.Uvarint(raw)
		if k <= 0 || uint64(len(raw)-k) < l {
			return n, false, ErrCorrupt
		}
		record := raw[k : k+int(l) : k+int(l)]
		raw = raw[k+int(l):]
		n++
		if !fn(record) {
			return n, true, nil
		}
	}
	return n, false, nil
}
