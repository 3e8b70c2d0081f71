package bolt

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/store/idhash"
)

// Deduplication of event ids without holding them all in memory. The ids of a sealed segment
// are kept on disk, sorted (bucketEventIDs); memory holds a 4-byte fingerprint of each, in one
// open-addressing table. An id whose fingerprint is absent is new (the common case: one or two
// memory reads); one whose fingerprint is present is looked up in the sealed segments' sorted
// ids, newest first. The open segment's ids (at most SegmentMaxEvents) are held exactly, in an
// id table (idtable.go). Memory is about 5 bytes per buffered event (5,000,000 events: ~25 MiB)
// instead of the ~70 bytes a map of every id takes, and Open reads the sorted ids, not the
// events.

// fingerprintOf hashes an id to 32 bits, never 0 (empty) or 1 (deleted).
func fingerprintOf(id uuid.UUID) uint32 {
	return max(uint32(idhash.Sum(id)>>32), 2)
}

// fingerprints is a multiset of fingerprints: open addressing with linear probing, 0 empty,
// 1 deleted. Several ids may share a fingerprint; each is held once per id.
type fingerprints struct {
	slots []uint32
	used  int // live entries
	dead  int // deleted slots
}

const (
	slotEmpty   = 0
	slotDeleted = 1
)

func (f *fingerprints) home(fp uint32) int {
	// Fibonacci hashing of the fingerprint to a slot of the power-of-two table.
	return int((uint64(fp) * 0x9e3779b97f4a7c15) >> (64 - bits.TrailingZeros(uint(len(f.slots)))))
}

// mayContain reports whether fp was added and not removed as often.
func (f *fingerprints) mayContain(fp uint32) bool {
	if len(f.slots) == 0 {
		return false
	}
	mask := len(f.slots) - 1
	for i := f.home(fp); ; i = (i + 1) & mask {
		switch f.slots[i] {
		case slotEmpty:
			return false
		case fp:
			return true
		}
	}
}

// warm reads the home slot of each id's fingerprint (PrefetchEventIDs) and returns their sum.
func (f *fingerprints) warm(ids []uuid.UUID) (sum uint64) {
	if len(f.slots) == 0 {
		return 0
	}
	for _, id := range ids {
		sum += uint64(f.slots[f.home(fingerprintOf(id))])
	}
	return sum
}

// addAll adds the fingerprints of ids in the order of their slots, so that a sealed segment's
// 65,536 walk the table once: added in the order of the ids, each was a cache miss in a table of
// megabytes (5 ms a seal, on the group commit's serial path).
func (f *fingerprints) addAll(ids []uuid.UUID) {
	if (f.used+f.dead+len(ids))*4 > len(f.slots)*3 {
		f.resize(max(64, 2*(f.used+len(ids))))
	}
	// A counting sort on the slots' top bits: near enough to slot order, in two passes.
	const bucketBits = 12
	shift := max(bits.TrailingZeros(uint(len(f.slots)))-bucketBits, 0)
	starts := make([]int32, 1<<bucketBits+1)
	fps := make([]uint32, len(ids))
	for i, id := range ids {
		fps[i] = fingerprintOf(id)
		starts[f.home(fps[i])>>shift+1]++
	}
	for b := 1; b < len(starts); b++ {
		starts[b] += starts[b-1]
	}
	ordered := make([]uint32, len(fps))
	for _, fp := range fps {
		b := f.home(fp) >> shift
		ordered[starts[b]] = fp
		starts[b]++
	}
	for _, fp := range ordered {
		f.add(fp)
	}
}

func (f *fingerprints) add(fp uint32) {
	if (f.used+f.dead+1)*4 > len(f.slots)*3 {
		f.resize(max(64, 2*(f.used+1)))
	}
	mask := len(f.slots) - 1
	for i := f.home(fp); ; i = (i + 1) & mask {
		switch f.slots[i] {
		case slotEmpty:
			f.slots[i] = fp
			f.used++
			return
		case slotDeleted:
			f.slots[i] = fp
			f.used++
			f.dead--
			return
		}
	}
}

func (f *fingerprints) remove(fp uint32) {
	if len(f.slots) == 0 {
		return
	}
	mask := len(f.slots) - 1
	for i := f.home(fp); ; i = (i + 1) & mask {
		switch f.slots[i] {
		case slotEmpty:
			return
		case fp:
			f.slots[i] = slotDeleted
			f.used--
			f.dead++
			if f.used*8 < len(f.slots) && len(f.slots) > 64 {
				f.resize(2 * f.used)
			}
			return
		}
	}
}

// resize rehashes into a table of at least capacity*4/3 slots, a power of two, dropping the
// deleted slots.
func (f *fingerprints) resize(capacity int) {
	n := 64
	for n*3 < capacity*4 {
		n *= 2
	}
	old := f.slots
	f.slots, f.used, f.dead = make([]uint32, n), 0, 0
	for _, fp := range old {
		if fp > slotDeleted {
			f.add(fp)
		}
	}
}

// Schema 5 keeps a sealed segment's sorted ids, when large (a full segment's are a megabyte),
// in a bucket of their own, as it does chunks (putValue, chunks.go); earlier schemas put them
// in bucketEventIDs itself, read as well.

// putSegmentIDs stores a sealed segment's sorted ids under its key.
func putSegmentIDs(tx *bbolt.Tx, key, sorted []byte) error {
	return putValue(tx.Bucket(bucketEventIDs), key, sorted)
}

// segmentIDs returns the sorted ids of the sealed segment under key (nil if none).
func segmentIDs(tx *bbolt.Tx, key []byte) []byte {
	return getValue(tx.Bucket(bucketEventIDs), key)
}

// deleteSegmentIDs removes the sorted ids of the segment under key, if any.
func deleteSegmentIDs(tx *bbolt.Tx, key []byte) error {
	return deleteValue(tx.Bucket(bucketEventIDs), key)
}

// sortedIDs encodes ids as the sorted concatenation of their bytes.
func sortedIDs(ids []uuid.UUID) []byte {
	// Sorted as pairs of big-endian words, loaded once: the order of bytes.Compare, several
	// times faster (a segment's 65,536 ids are sorted inside the commit that seals it, which
	// holds up ingestion).
	keys := make([]idWords, len(ids))
	for i, id := range ids {
		keys[i] = idWords{binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])}
	}
	keys = sortIDWords(keys)
	out := make([]byte, 0, 16*len(keys))
	for _, k := range keys {
		out = binary.BigEndian.AppendUint64(out, k.hi)
		out = binary.BigEndian.AppendUint64(out, k.lo)
	}
	return out
}

type idWords struct{ hi, lo uint64 }

func compareIDWords(a, b idWords) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// sortIDWords sorts keys, returning them in a slice of its own. Random ids (version 4) are
// spread by their first 16 bits into as many buckets, a handful in each, which insertion sort
// orders: 1.2 ms for 65,536 ids where comparison sorting took 6.7. Ids that share their first
// bits (time-ordered ones, version 7) fall into few large buckets, comparison-sorted as before.
func sortIDWords(keys []idWords) []idWords {
	const bits = 16
	if len(keys) < 1<<(bits-4) {
		slices.SortFunc(keys, compareIDWords)
		return keys
	}
	starts := make([]int32, 1<<bits+1)
	for _, k := range keys {
		starts[k.hi>>(64-bits)+1]++
	}
	for b := 1; b < len(starts); b++ {
		starts[b] += starts[b-1]
	}
	out := make([]idWords, len(keys))
	next := slices.Clone(starts[:1<<bits])
	for _, k := range keys {
		b := k.hi >> (64 - bits)
		out[next[b]] = k
		next[b]++
	}
	for b := range 1 << bits {
		bucket := out[starts[b]:starts[b+1]]
		if len(bucket) <= 12 {
			insertionSortIDWords(bucket)
		} else {
			slices.SortFunc(bucket, compareIDWords)
		}
	}
	return out
}

func insertionSortIDWords(keys []idWords) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && compareIDWords(keys[j], keys[j-1]) < 0; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

// containsID binary-searches sorted (as sortedIDs encodes it) for id.
func containsID(sorted []byte, id uuid.UUID) bool {
	lo, hi := 0, len(sorted)/16
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(sorted[mid*16:mid*16+16], id[:]); {
		case c == 0:
			return true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return false
}

// eachID calls fn with each id of a sorted list.
func eachID(sorted []byte, fn func(uuid.UUID)) {
	for i := 0; i+16 <= len(sorted); i += 16 {
		fn(uuid.UUID(sorted[i : i+16]))
	}
}
