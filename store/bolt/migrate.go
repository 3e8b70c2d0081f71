package bolt

import (
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/store"
)

// migrate brings the file to schemaVersion within the opening transaction: a new file gets its
// buckets; a file of an earlier version is upgraded step by step, each step one function; a
// file of a newer version is refused. The transaction is all or nothing: a failed upgrade
// leaves the file as it was.
func migrate(tx *bbolt.Tx, opts Options) error {
	version, err := schemaOf(tx)
	if err != nil {
		return err
	}
	if version > schemaVersion {
		return fmt.Errorf("data was written by a newer auditexport (schema %d, this binary knows %d)", version, schemaVersion)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if version == 1 {
		opts.Logger.Info("upgrading the data file", "from_schema", 1, "to_schema", schemaVersion)
		if err := upgradeFrom1(tx); err != nil {
			return fmt.Errorf("upgrade the data file from schema 1: %w", err)
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, schemaVersion))
}

// upgradeFrom1 builds what schema 2 adds to schema 1: the indexes of configurations, tokens and
// jobs (schema 1 scanned whole buckets), and the sorted ids of every segment but the last
// (schema 1 rebuilt an in-memory map of every buffered id at each start).
func upgradeFrom1(tx *bbolt.Tx) error {
	w := &writeTx{readTx{tx: tx}}
	var configs []store.ExportConfiguration
	if err := w.Configs(func(c store.ExportConfiguration) bool {
		configs = append(configs, c)
		return true
	}); err != nil {
		return err
	}
	for _, c := range configs {
		c.Reindex()
		if err := w.reindexConfig(nil, &c); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketConfigs), []byte(c.ID), c); err != nil {
			return err
		}
	}
	var tokens []store.Token
	if err := w.Tokens(func(t store.Token) bool {
		tokens = append(tokens, t)
		return true
	}); err != nil {
		return err
	}
	for _, t := range tokens {
		if err := tx.Bucket(bucketTokenNames).Put(tokenNameKey(t.Name), []byte(t.ID)); err != nil {
			return err
		}
	}
	var jobs []store.ExportJob
	if err := eachJSON(tx.Bucket(bucketJobs), func(j store.ExportJob) bool {
		jobs = append(jobs, j)
		return true
	}); err != nil {
		return err
	}
	for _, j := range jobs {
		if err := w.PutJob(j); err != nil {
			return err
		}
	}
	return sealSegmentsFrom1(tx)
}

// sealSegmentsFrom1 writes the sorted ids of every segment but the last, which stays open.
func sealSegmentsFrom1(tx *bbolt.Tx) error {
	var segs []segment
	c := tx.Bucket(bucketSegments).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		g, err := segmentJSON(v)
		if err != nil {
			return fmt.Errorf("decode segment %x: %w", k, err)
		}
		segs = append(segs, g)
	}
	for i := 0; i+1 < len(segs); i++ {
		g := segs[i]
		var ids []uuid.UUID
		if err := eachEventID(tx, g, func(_ uint64, id uuid.UUID) { ids = append(ids, id) }); err != nil {
			return err
		}
		if err := putSegmentIDs(tx, g.key(), sortedIDs(ids)); err != nil {
			return err
		}
		g.Sealed = true
		if err := putJSON(tx.Bucket(bucketSegments), g.key(), g); err != nil {
			return err
		}
	}
	return nil
}
