package store

import (
	"context"
	"sync"
)

// readChunk bounds what one read transaction of ReadEvents copies out.
const (
	readChunkEvents = 4096
	readChunkBytes  = 8 << 20
)

// chunk is what one read transaction of ReadEvents copied out: records back to back in data,
// each ending at its ends entry.
type chunk struct {
	seqs []uint64
	ends []int
	data []byte
	err  error
}

// chunks keeps the chunks of finished reads for the next: an export reads its events once or
// twice, and growing two chunks each time was a fifth of its allocation (the profiles).
var chunks = sync.Pool{New: func() any { return new(chunk) }}

// ReadEvents calls fn with each buffered event after seq after, in order; see EventBuffer.
//
// Events are copied out in chunks, each in a short read transaction, and fn runs with no
// transaction open: fn may take as long as it likes, and may wait on work that writes to the
// store. (A bbolt read transaction held across such a wait deadlocks: a write that grows the
// file waits for every open read transaction to end.) While fn works through one chunk, the
// next is read: an engine behind a network (a database) reads while the caller encodes.
func (s *Store) ReadEvents(ctx context.Context, after uint64, limit int, fn func(seq uint64, record []byte) bool) error {
	// Two chunks' buffers, passed back and forth: one read, one delivered.
	free := make(chan *chunk, 2)
	for range 2 {
		free <- chunks.Get().(*chunk)
	}
	defer func() { // both are free on every way out but a panic of fn's: then they are left
		for range 2 {
			select {
			case c := <-free:
				c.err = nil
				chunks.Put(c)
			default:
			}
		}
	}()
	next := make(chan *chunk, 1)
	// readAfter reads the chunk after seq from, at most want events (want <= 0: no limit).
	readAfter := func(from uint64, want int) {
		c := <-free
		c.err = s.view(ctx, func(tx ReadTx) error {
			c.seqs, c.ends, c.data = c.seqs[:0], c.ends[:0], c.data[:0]
			return tx.ScanEvents(from, func(seq uint64, rec []byte) bool {
				c.seqs = append(c.seqs, seq)
				c.data = append(c.data, rec...)
				c.ends = append(c.ends, len(c.data))
				return len(c.seqs) < readChunkEvents && len(c.data) < readChunkBytes && (want <= 0 || len(c.seqs) < want)
			})
		})
		next <- c
	}
	go readAfter(after, limit)
	read := 0
	for {
		c := <-next
		if err := c.err; err != nil || len(c.seqs) == 0 {
			free <- c
			return err
		}
		delivered := read + len(c.seqs)
		ahead := limit <= 0 || delivered < limit
		if ahead {
			go readAfter(c.seqs[len(c.seqs)-1], max(limit-delivered, 0))
		}
		start := 0
		for i, seq := range c.seqs {
			if !fn(seq, c.data[start:c.ends[i]:c.ends[i]]) {
				if ahead {
					free <- <-next // the read under way ends by itself; it is not left behind
				}
				free <- c
				return nil
			}
			start = c.ends[i]
			read++
		}
		free <- c
		if !ahead {
			return nil
		}
	}
}
