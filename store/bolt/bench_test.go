package bolt_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/storetest"
)

const benchBatch = 1000

// BenchmarkBoltBatchedAppend is the raw limit the buffer is measured against: bbolt appending
// records of the same size under sequential keys, one transaction (and fsync) per batch.
func BenchmarkBoltBatchedAppend(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var d event.Decoder
	batch, err := d.NDJSON(eventtest.NewBodies(benchBatch).Next(), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var seq uint64
	for b.Loop() {
		err := db.Update(func(tx *bbolt.Tx) error {
			bucket, err := tx.CreateBucketIfNotExists([]byte("events"))
			if err != nil {
				return err
			}
			bucket.FillPercent = 1
			for i := range batch.Len() {
				seq++
				if err := bucket.Put(binary.BigEndian.AppendUint64(nil, seq), batch.Record(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeAppend is ingestion without HTTP: 4 writers each decoding 1,000-event NDJSON
// bodies and appending them durably, the store coalescing concurrent batches (group commit).
func BenchmarkDecodeAppend(b *testing.B) {
	st := storetest.OpenBolt(b, filepath.Join(b.TempDir(), "a.db"), store.Config{MasterKey: testKey,
		Buffer: store.BufferConfig{MaxEvents: 1 << 40, MaxBytes: 1 << 50}}, bolt.Options{})
	bodies := eventtest.NewBodies(benchBatch)
	const writers = 4
	work := make(chan []byte, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			var d event.Decoder
			for body := range work {
				batch, err := d.NDJSON(body, time.Now())
				if err == nil {
					_, err = st.AppendEvents(context.Background(), batch)
				}
				if err != nil {
					b.Error(err)
				}
			}
		})
	}
	// Bodies are made outside the timed region's critical path: the feeder runs ahead.
	b.ResetTimer()
	for b.Loop() {
		work <- bodies.Next()
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "events/s")
}
