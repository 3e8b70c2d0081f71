package bolt

import (
	"github.com/google/uuid"

	"github.com/auditexport/auditexport/store/idhash"
)

// idTable maps the ids of the unsealed segments' events to their seqs, for deduplication: open
// addressing with linear probing, at most half full. It replaced a Go map, which cost the group
// committer a third of its time (profiles: the committer is ingestion's serial part): every
// append looked an id up and inserted it twice (the transaction's map, then the buffer's).
// Seq 0 is never given, so it marks an empty slot.
type idTable struct {
	ids  []uuid.UUID
	seqs []uint64
	n    int
}

func (t *idTable) slot(id uuid.UUID) int {
	return int(idhash.Sum(id) & uint64(len(t.seqs)-1))
}

// get returns the seq of id, if held.
func (t *idTable) get(id uuid.UUID) (uint64, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := len(t.seqs) - 1
	for i := t.slot(id); t.seqs[i] != 0; i = (i + 1) & mask {
		if t.ids[i] == id {
			return t.seqs[i], true
		}
	}
	return 0, false
}

// put adds id at seq; id must not be held.
func (t *idTable) put(id uuid.UUID, seq uint64) {
	if 2*(t.n+1) > len(t.seqs) {
		t.grow()
	}
	mask := len(t.seqs) - 1
	i := t.slot(id)
	for t.seqs[i] != 0 {
		i = (i + 1) & mask
	}
	t.ids[i], t.seqs[i] = id, seq
	t.n++
}

func (t *idTable) grow() {
	ids, seqs := t.ids, t.seqs
	size := max(1024, 2*len(seqs))
	t.ids, t.seqs, t.n = make([]uuid.UUID, size), make([]uint64, size), 0
	for i, seq := range seqs {
		if seq != 0 {
			t.put(ids[i], seq)
		}
	}
}

// remove deletes id, shifting back the entries after it (no tombstones).
func (t *idTable) remove(id uuid.UUID) {
	if t.n == 0 {
		return
	}
	mask := len(t.seqs) - 1
	i := t.slot(id)
	for t.ids[i] != id {
		if t.seqs[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	if t.seqs[i] == 0 {
		return // the zero id, absent
	}
	t.n--
	for j := (i + 1) & mask; t.seqs[j] != 0; j = (j + 1) & mask {
		// The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
		if home := t.slot(t.ids[j]); (j-home)&mask >= (j-i)&mask {
			t.ids[i], t.seqs[i] = t.ids[j], t.seqs[j]
			i = j
		}
	}
	t.ids[i], t.seqs[i] = uuid.UUID{}, 0
}

// between lists the ids held with a seq in [first, last].
func (t *idTable) between(first, last uint64) []uuid.UUID {
	var out []uuid.UUID
	for i, seq := range t.seqs {
		if seq >= first && seq <= last {
			out = append(out, t.ids[i])
		}
	}
	return out
}
