package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/event"
)

// trimLoop removes segments on every TrimInterval until the store closes.
func (s *Store) trimLoop() {
	defer close(s.trimmerDone)
	ticker := time.NewTicker(s.buf.cfg.TrimInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-ticker.C:
			if _, err := s.Trim(context.Background()); err != nil {
				s.log.Error("trim event buffer", "error", err)
			}
		}
	}
}

// TrimResult says what one Trim removed.
type TrimResult struct {
	Segments int
	Events   int64
	// Dropped counts removed events that some enabled configuration had not exported yet.
	Dropped int64
}

// Trim removes the oldest segments whose events every enabled configuration has exported and
// that are older than MinRetention, and segments older than MaxAge whatever their state. It stops
// at the first segment it must keep, so the buffer stays one contiguous run of seqs.
func (s *Store) Trim(ctx context.Context) (TrimResult, error) {
	var res TrimResult
	err := s.update(func(tx *bolt.Tx, w *eventWriter) error {
		watermark, err := exportedWatermark(tx, w.next-1)
		if err != nil {
			return err
		}
		s.buf.mu.RLock()
		segments := append([]segment(nil), s.buf.segments...)
		cfg := s.buf.cfg
		s.buf.mu.RUnlock()

		var removed []segment
		var ids []uuid.UUID
		for _, g := range segments {
			age := w.now.Sub(g.LastAppend)
			exported := g.Last <= watermark
			if !(exported && age >= cfg.MinRetention) && age < cfg.MaxAge {
				break
			}
			if !exported {
				res.Dropped += int64(g.Last - max(watermark, g.First-1))
			}
			segIDs, err := removeSegment(tx, g)
			if err != nil {
				return err
			}
			ids = append(ids, segIDs...)
			removed = append(removed, g)
			res.Segments++
			res.Events += g.Count
		}
		if len(removed) == 0 {
			return nil
		}
		s.buf.mu.RLock()
		dropped := s.buf.dropped + uint64(res.Dropped)
		s.buf.mu.RUnlock()
		if err := tx.Bucket(bucketMeta).Put(keyDroppedEvents, binary.BigEndian.AppendUint64(nil, dropped)); err != nil {
			return err
		}
		w.afterCommit = append(w.afterCommit, func() { s.buf.forget(removed, ids, dropped) })
		return nil
	})
	if err != nil {
		return TrimResult{}, err
	}
	if res.Dropped > 0 {
		s.metrics.dropped.Add(float64(res.Dropped))
		s.log.Warn("dropped events older than the buffer's age limit before every enabled configuration exported them",
			"dropped", res.Dropped, "max_age", s.buf.cfg.MaxAge.String())
	}
	if res.Segments > 0 {
		s.log.Info("trimmed event buffer", "segments", res.Segments, "events", res.Events)
	}
	return res, nil
}

// exportedWatermark is the highest seq every enabled configuration has exported: the smallest
// cursor among them, or head when none is enabled (no one waits for the events then).
func exportedWatermark(tx *bolt.Tx, head uint64) (uint64, error) {
	watermark := head
	err := eachJSON(tx.Bucket(bucketConfigs), func(c ExportConfiguration) error {
		if c.Enabled {
			watermark = min(watermark, c.Cursor)
		}
		return nil
	})
	return watermark, err
}

// removeSegment deletes a segment's bucket and record and returns the ids it held.
func removeSegment(tx *bolt.Tx, g segment) ([]uuid.UUID, error) {
	events := tx.Bucket(bucketEvents)
	ids := make([]uuid.UUID, 0, g.Count)
	if err := events.Bucket(g.key()).ForEach(func(_, v []byte) error {
		id, err := event.IDOf(v)
		ids = append(ids, id)
		return err
	}); err != nil {
		return nil, fmt.Errorf("read segment %d: %w", g.First, err)
	}
	if err := events.DeleteBucket(g.key()); err != nil {
		return nil, fmt.Errorf("delete segment %d: %w", g.First, err)
	}
	return ids, tx.Bucket(bucketSegments).Delete(g.key())
}

// forget removes trimmed segments from the in-memory state.
func (b *buffer) forget(removed []segment, ids []uuid.UUID, dropped uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.segments = b.segments[len(removed):]
	for _, g := range removed {
		b.count -= g.Count
		b.bytes -= g.Bytes
	}
	for _, id := range ids {
		delete(b.ids, id)
	}
	b.dropped = dropped
}
