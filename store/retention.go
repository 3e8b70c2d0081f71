package store

import (
	"context"
	"encoding/binary"
	"time"
)

// trimLoop trims the buffer every TrimInterval until the store closes.
func (s *Store) trimLoop() {
	defer close(s.trimmerDone)
	ticker := time.NewTicker(s.buffer.TrimInterval)
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
	// Segments counts the engine's units removed (segments, row ranges).
	Segments int
	Events   int64
	// Dropped counts removed events that some enabled configuration had not exported yet.
	Dropped int64
}

// Trim removes the oldest events that every enabled configuration has exported and that are
// older than MinRetention, and those older than MaxAge whatever their state (counted as
// dropped). The buffer stays one contiguous run of seqs. Trims are transactions: on a shared
// engine, replicas trimming at once serialize, and what one removed the other does not find.
func (s *Store) Trim(ctx context.Context) (TrimResult, error) {
	var res TrimResult
	err := s.update(ctx, func(tx Tx) error {
		watermark, err := exportedWatermark(tx)
		if err != nil {
			return err
		}
		now := s.txNow(tx)
		res, err = tx.TrimEvents(TrimPolicy{
			ExportedThrough: watermark,
			ExportedBefore:  now.Add(-s.buffer.MinRetention),
			DropBefore:      now.Add(-s.buffer.MaxAge),
		})
		if err != nil || res.Dropped == 0 {
			return err
		}
		dropped, err := metaCounter(tx, metaDroppedEvents)
		if err != nil {
			return err
		}
		return tx.PutMeta(metaDroppedEvents, binary.BigEndian.AppendUint64(nil, dropped+uint64(res.Dropped)))
	})
	if err != nil {
		return TrimResult{}, err
	}
	if res.Dropped > 0 {
		s.metrics.dropped.Add(float64(res.Dropped))
		s.log.Warn("dropped events older than the buffer's age limit before every enabled configuration exported them",
			"dropped", res.Dropped, "max_age", s.buffer.MaxAge.String())
	}
	if res.Segments > 0 {
		s.log.Info("trimmed event buffer", "segments", res.Segments, "events", res.Events)
	}
	return res, nil
}

// exportedWatermark is the highest seq every enabled configuration has exported: the smallest
// cursor among them (one indexed read), or the head when none is enabled (no one waits for the
// events then).
func exportedWatermark(tx ReadTx) (uint64, error) {
	stats, err := tx.EventStats()
	if err != nil {
		return 0, err
	}
	watermark := stats.Head
	err = tx.EnabledConfigsByCursor(func(c ExportConfiguration) bool {
		watermark = min(watermark, c.Cursor)
		return false
	})
	return watermark, err
}

// metaCounter reads an 8-byte big-endian counter kept in the engine's metadata (0 when absent).
func metaCounter(tx ReadTx, key string) (uint64, error) {
	v, err := tx.Meta(key)
	if err != nil || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}
