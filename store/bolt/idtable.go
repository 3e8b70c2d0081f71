package bolt

import (
	"github.com/google/uuid"

	"github.com/auditexport/auditexport/store/idhash"
)

// idTable maps the ids of the unsealed segments' events to their seqs, for deduplication: open
// addressing with linear probing, at most half full. It replaced a Go map, which cost the group
// committer a third of its time (profiles: the committer is ingestion's serial part): every
// append looked an id up and inserted it twice (the transaction's map, then the buffer's).
//
// Each slot has a 16-bit tag of its id's hash, 0 when the slot is empty, and a look-up reads a
// slot's id and seq only where the tags match. The tags (2 bytes a slot, 256 KiB for a segment
// of 65,536 events) stay in the cache where the ids and seqs (24 bytes a slot) do not: the
// look-up of a new id, nearly every one, read both arrays, two cache misses that made it 5% of
// the server's CPU end to end, on the commit's serial path; it now reads the tags.
type idTable struct {
	tags []uint16
	ids  []uuid.UUID
	seqs []uint64
	n    int
}

// home is id's first slot and its tag.
func (t *idTable) home(id uuid.UUID) (int, uint16) {
	h := idhash.Sum(id)
	return int(h & uint64(len(t.tags)-1)), uint16(h>>48) | 1
}

// get returns the seq of id, if held.
func (t *idTable) get(id uuid.UUID) (uint64, bool) {
	if t.n == 0 {
		return 0, false
	}
	if i, ok := t.find(id); ok {
		return t.seqs[i], true
	}
	return 0, false
}

// find returns the slot holding id, if any.
func (t *idTable) find(id uuid.UUID) (int, bool) {
	mask := len(t.tags) - 1
	i, tag := t.home(id)
	for ; t.tags[i] != 0; i = (i + 1) & mask {
		if t.tags[i] == tag && t.ids[i] == id {
			return i, true
		}
	}
	return 0, false
}

// warm reads the first slot's tag of each id (PrefetchEventIDs) and returns their sum.
func (t *idTable) warm(ids []uuid.UUID) (sum uint64) {
	if t.n == 0 {
		return 0
	}
	for _, id := range ids {
		i, _ := t.home(id)
		sum += uint64(t.tags[i])
	}
	return sum
}

// put adds id at seq; id must not be held.
func (t *idTable) put(id uuid.UUID, seq uint64) {
	if 2*(t.n+1) > len(t.tags) {
		t.grow()
	}
	mask := len(t.tags) - 1
	i, tag := t.home(id)
	for t.tags[i] != 0 {
		i = (i + 1) & mask
	}
	t.tags[i], t.ids[i], t.seqs[i] = tag, id, seq
	t.n++
}

func (t *idTable) grow() {
	tags, ids, seqs := t.tags, t.ids, t.seqs
	size := max(1024, 2*len(tags))
	t.tags, t.ids, t.seqs, t.n = make([]uint16, size), make([]uuid.UUID, size), make([]uint64, size), 0
	for i, tag := range tags {
		if tag != 0 {
			t.put(ids[i], seqs[i])
		}
	}
}

// remove deletes id, shifting back the entries after it (no tombstones).
func (t *idTable) remove(id uuid.UUID) {
	if t.n == 0 {
		return
	}
	i, ok := t.find(id)
	if !ok {
		return
	}
	t.n--
	mask := len(t.tags) - 1
	for j := (i + 1) & mask; t.tags[j] != 0; j = (j + 1) & mask {
		// The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
		if home, _ := t.home(t.ids[j]); (j-home)&mask >= (j-i)&mask {
			t.tags[i], t.ids[i], t.seqs[i] = t.tags[j], t.ids[j], t.seqs[j]
			i = j
		}
	}
	t.tags[i], t.ids[i], t.seqs[i] = 0, uuid.UUID{}, 0
}

// dropBetween removes the ids held with a seq in [first, last], those of a segment being
// sealed: it puts the others back in the cleared table, in one pass over its slots. Removing a
// segment's 65,536 ids one by one, each a cache miss and a shift back, held the group commit
// that sealed it for milliseconds.
func (t *idTable) dropBetween(first, last uint64) {
	type entry struct {
		id  uuid.UUID
		seq uint64
	}
	var keep []entry
	for i, tag := range t.tags {
		if seq := t.seqs[i]; tag != 0 && (seq < first || seq > last) {
			keep = append(keep, entry{t.ids[i], seq})
		}
	}
	clear(t.tags)
	clear(t.ids)
	clear(t.seqs)
	t.n = 0
	for _, e := range keep {
		t.put(e.id, e.seq)
	}
}

// between lists the ids held with a seq in [first, last].
func (t *idTable) between(first, last uint64) []uuid.UUID {
	var out []uuid.UUID
	for i, seq := range t.seqs {
		if t.tags[i] != 0 && seq >= first && seq <= last {
			out = append(out, t.ids[i])
		}
	}
	return out
}
