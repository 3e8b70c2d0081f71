package postgres

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/idhash"
)

// Deduplication in the replica's memory. An id stored through any replica must be a duplicate
// on every replica while its event is buffered; a unique index of the ids in the database did
// that, and inserting one random UUID per event into it was, profiled, about 60% of the
// database's work for an ingest (and half the ingest's throughput). So each replica holds the
// buffered ids itself: a 4-byte fingerprint of each, with the chunk that holds it, in one
// open-addressing table (8 bytes a slot, from three eighths to three quarters full: 11–21 bytes
// per buffered event, 64 MiB for the default 5,000,000). The database keeps each chunk's ids beside its
// events (event_chunks.ids), and a replica learns the ids others stored by reading the chunks
// committed since it last looked, under the writers' lock (events.go), so it knows every id
// committed before its own commit. An id whose fingerprint is absent is new; one whose
// fingerprint is present is a candidate, and the ids of the chunks that may hold it are read back,
// in the same round trip as the lock, to answer exactly (in the replica: a client resending
// a large batch makes every id a candidate, which a query comparing ids with ids would answer in
// quadratic time). Open reads every buffered chunk's ids.
//
// A trimmed chunk's entries die with it: an entry is live while its chunk is held (chunks are
// numbered in seq order and dropped from the oldest), dead slots are reused or dropped when the
// table is rebuilt. Should the database go back (restored from a backup, or a failover to a
// standby that had not every commit), its head falls below what the index has seen, or the event
// at the seq the index synced through is another (or missing, though not trimmed), since other
// replicas may have written past it meanwhile: the index is read again from the database.
//
// A replica that has not looked for a while (it ingested nothing) first catches up outside the
// lock, a page at a time, so that what it reads under the lock stays small.

// idIndex is the fingerprints of the buffered ids, with the chunks that hold them.
type idIndex struct {
	mu sync.Mutex
	// slots holds fingerprint<<32 | chunk number; 0 is empty. A slot whose chunk is no longer
	// held is dead.
	slots []uint64
	used  int // slots live or dead
	// chunks are the held chunks, oldest first: chunk number base+i is chunks[i].
	chunks []heldChunk
	base   uint32
	live   int // ids in the held chunks
	// synced is the head through which every committed chunk is held (or trimmed); anchor the
	// id of the event at seq synced, when anchored (it was held); syncedAt when the index last
	// caught up.
	synced   uint64
	anchor   [16]byte
	anchored bool
	syncedAt time.Time
	// numbered counts the chunk numbers given since the last rebuild: numbers wrap at 2^32,
	// so the table is rebuilt (dropping dead slots) long before a dead one could look live.
	numbered uint32
}

type heldChunk struct {
	last uint64 // last seq
	ids  int
}

// idChunk is a chunk's last seq and ids, as read from event_chunks.
type idChunk struct {
	last uint64
	ids  [][16]byte
}

// fingerprintOf hashes an id to 32 bits, never 0.
func fingerprintOf(id [16]byte) uint32 {
	return max(uint32(idhash.Sum(id)>>32), 1)
}

func (x *idIndex) held(number uint32) bool { return number-x.base < uint32(len(x.chunks)) }

func (x *idIndex) home(fp uint32) int {
	return int((uint64(fp) * 0x9e3779b97f4a7c15) >> (64 - bits.TrailingZeros(uint(len(x.slots)))))
}

// syncPoint is where an index stands: synced through seq, the event there anchor when anchored.
type syncPoint struct {
	seq      uint64
	anchor   [16]byte
	anchored bool
}

// candidates returns where the index stands, and the chunks (their last seqs, in order, each
// once) that may hold one of ids.
func (x *idIndex) candidates(ids []uuid.UUID) (at syncPoint, chunks []int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	at = x.positionLocked()
	if x.live == 0 {
		return at, nil
	}
	mask := len(x.slots) - 1
	for _, id := range ids {
		fp := uint64(fingerprintOf(id))
		for i := x.home(uint32(fp)); x.slots[i] != 0; i = (i + 1) & mask {
			if s := x.slots[i]; s>>32 == fp && x.held(uint32(s)) {
				chunks = append(chunks, int64(x.chunks[uint32(s)-x.base].last))
			}
		}
	}
	slices.Sort(chunks)
	return at, slices.Compact(chunks)
}

// position is where the index stands.
func (x *idIndex) position() syncPoint {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.positionLocked()
}

func (x *idIndex) positionLocked() syncPoint {
	return syncPoint{seq: x.synced, anchor: x.anchor, anchored: x.anchored}
}

// stale reports whether the index last caught up longer than d ago.
func (x *idIndex) stale(d time.Duration) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return time.Since(x.syncedAt) > d
}

// add holds chunks, every committed chunk after seq after up to one, in seq order, and notes
// that every chunk through head is held. Chunks through what is held already are skipped, so
// that a chunk met twice (a group commit's own, also read by the next) is held once. When the
// index has not synced through after (it was reset meanwhile), it holds nothing: the next sync
// reads them.
func (x *idIndex) add(after uint64, chunks []idChunk, head uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.synced < after {
		return
	}
	for _, c := range chunks {
		if c.last <= x.synced {
			continue
		}
		x.hold(c)
		x.synced = c.last
		if len(c.ids) > 0 {
			x.anchor, x.anchored = c.ids[len(c.ids)-1], true
		}
	}
	if head > x.synced { // the chunks up to head were trimmed: no event to anchor to
		x.synced, x.anchored = head, false
	}
	x.syncedAt = time.Now()
}

func (x *idIndex) hold(c idChunk) {
	if x.numbered >= 1<<30 || (x.used+len(c.ids))*4 > len(x.slots)*3 {
		x.rebuild(len(c.ids))
	}
	number := x.base + uint32(len(x.chunks))
	x.chunks = append(x.chunks, heldChunk{last: c.last, ids: len(c.ids)})
	x.live += len(c.ids)
	x.numbered++
	mask := len(x.slots) - 1
	for _, id := range c.ids {
		fp := fingerprintOf(id)
		i := x.home(fp)
		for x.slots[i] != 0 && x.held(uint32(x.slots[i])) {
			i = (i + 1) & mask
		}
		if x.slots[i] == 0 {
			x.used++
		}
		x.slots[i] = uint64(fp)<<32 | uint64(number)
	}
}

// expire drops the chunks below oldest (the buffer's oldest seq; head+1 when it is empty), and
// resets the index when the database's head is below what it has seen (the database went back).
func (x *idIndex) expire(oldest, head uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if head < x.synced {
		x.reset()
		return
	}
	n := 0
	for n < len(x.chunks) && x.chunks[n].last < oldest {
		x.live -= x.chunks[n].ids
		n++
	}
	if n == 0 {
		return
	}
	x.chunks, x.base = x.chunks[n:], x.base+uint32(n)
	if len(x.slots) > 1024 && x.live*8 < len(x.slots) {
		x.rebuild(0)
	}
}

// forget empties the index: the next sync reads every buffered chunk.
func (x *idIndex) forget() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.reset()
}

// reset is forget, with x.mu held.
func (x *idIndex) reset() {
	x.slots, x.used, x.chunks, x.base, x.live, x.synced, x.numbered = nil, 0, nil, 0, 0, 0, 0
	x.anchored, x.syncedAt = false, time.Time{}
}

// rebuild rehashes the live slots into a table at most half full with room more, dropping the
// dead ones, and numbers the held chunks from 0 again.
func (x *idIndex) rebuild(room int) {
	size := 64
	for size < 2*(x.live+room) {
		size *= 2
	}
	old, oldBase := x.slots, x.base
	x.slots, x.used, x.base, x.numbered = make([]uint64, size), 0, 0, 0
	mask := size - 1
	for _, s := range old {
		number := uint32(s) - oldBase
		if s == 0 || number >= uint32(len(x.chunks)) {
			continue
		}
		i := x.home(uint32(s >> 32))
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = s&^0xffffffff | uint64(number)
		x.used++
	}
}

// sizes reports the index's slots and live ids (tests).
func (x *idIndex) sizes() (slots, live int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.slots), x.live
}

// syncChunks is the query that reads the chunks committed after $1 (what the index has synced),
// up to $2 (the head before the transaction's own appends).
const syncChunks = "SELECT last_seq, ids FROM event_chunks WHERE last_seq > $1 AND last_seq <= $2 ORDER BY last_seq"

// scanIDChunks reads rows of (last_seq, ids).
func scanIDChunks(rows pgx.Rows) ([]idChunk, error) {
	defer rows.Close()
	var out []idChunk
	var last int64
	for rows.Next() {
		var ids [][16]byte
		if err := rows.Scan(&last, &ids); err != nil {
			return nil, err
		}
		out = append(out, idChunk{last: uint64(last), ids: ids})
	}
	return out, rows.Err()
}

// syncPage is how many chunks one query of syncPages reads.
const syncPage = 1024

// syncPages holds the chunks committed after where the index stands, up to seq upTo, read
// syncPage at a time through query.
func (x *idIndex) syncPages(upTo uint64, query func(sql string, args ...any) (pgx.Rows, error)) error {
	for {
		at := x.position()
		rows, err := query(syncChunks+" LIMIT "+strconv.Itoa(syncPage), int64(at.seq), int64(upTo))
		if err != nil {
			return err
		}
		chunks, err := scanIDChunks(rows)
		if err != nil {
			return fmt.Errorf("read the buffered ids: %w", err)
		}
		x.add(at.seq, chunks, 0)
		if len(chunks) < syncPage {
			return nil
		}
	}
}

// load reads the ids of every buffered chunk, in one snapshot with the head, a page at a time.
func (x *idIndex) load(ctx context.Context, e *Engine) error {
	return e.View(ctx, func(tx store.ReadTx) error {
		r := tx.(*readTx)
		var head int64
		if err := r.tx.QueryRow(r.ctx, "SELECT head FROM event_log").Scan(&head); err != nil {
			return err
		}
		x.forget()
		err := x.syncPages(uint64(head), func(sql string, args ...any) (pgx.Rows, error) { return r.tx.Query(r.ctx, sql, args...) })
		if err == nil {
			x.add(x.position().seq, nil, uint64(head)) // the chunks up to the head, if any, were trimmed
		}
		return err
	})
}
