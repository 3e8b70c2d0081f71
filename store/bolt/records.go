package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditexport/auditexport/store"
)

// Meta returns a metadata value (a copy: it outlives the transaction).
func (r *readTx) Meta(key string) ([]byte, error) {
	return bytes.Clone(r.bucket(bucketMeta).Get([]byte(key))), nil
}

// PutMeta sets a metadata value.
func (w *writeTx) PutMeta(key string, value []byte) error {
	return w.bucket(bucketMeta).Put([]byte(key), value)
}

// getJSON decodes the record at key, if any.
func getJSON[T any](b *bbolt.Bucket, key []byte) (T, bool, error) {
	var v T
	raw := b.Get(key)
	if raw == nil {
		return v, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("decode record %q: %w", key, err)
	}
	return v, true, nil
}

func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, data)
}

// eachJSON decodes every record of b in key order until fn returns false.
func eachJSON[T any](b *bbolt.Bucket, fn func(T) bool) error {
	c := b.Cursor()
	for k, raw := c.First(); k != nil; k, raw = c.Next() {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode record %q: %w", k, err)
		}
		if !fn(v) {
			return nil
		}
	}
	return nil
}

// timeKey orders times as bytes: microseconds since 1970 with the sign bit flipped, so that
// the zero time (year 1) sorts first.
func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixMicro())^(1<<63))
}

// indexKey is <8-byte order key><id>.
func indexKey(order []byte, id string) []byte { return append(order, id...) }

func (r *readTx) Config(id string) (store.ExportConfiguration, bool, error) {
	if r.e == nil { // migrations
		return getJSON[store.ExportConfiguration](r.bucket(bucketConfigs), []byte(id))
	}
	return getCached(r.e.configs, r.bucket(bucketConfigs), []byte(id))
}

// getCached is getJSON through a decode cache.
func getCached[T any](cache *decodeCache[T], b *bbolt.Bucket, key []byte) (T, bool, error) {
	raw := b.Get(key)
	if raw == nil {
		var zero T
		return zero, false, nil
	}
	v, err := cache.decode(key, raw)
	if err != nil {
		return v, false, fmt.Errorf("decode record %q: %w", key, err)
	}
	return v, true, nil
}

func (r *readTx) ConfigIDByName(name string) (string, bool, error) {
	id := r.bucket(bucketConfigNames).Get([]byte(name))
	return string(id), id != nil, nil
}

func (r *readTx) Configs(fn func(store.ExportConfiguration) bool) error {
	if r.e == nil { // migrations
		return eachJSON(r.bucket(bucketConfigs), fn)
	}
	c := r.bucket(bucketConfigs).Cursor()
	for k, raw := c.First(); k != nil; k, raw = c.Next() {
		v, err := r.e.configs.decode(k, raw)
		if err != nil {
			return fmt.Errorf("decode record %q: %w", k, err)
		}
		if !fn(v) {
			return nil
		}
	}
	return nil
}

func (r *readTx) EnabledConfigsByCursor(fn func(store.ExportConfiguration) bool) error {
	return r.configsByIndex(bucketConfigsByCursor, fn)
}

func (r *readTx) EnabledConfigsByCheckDue(fn func(store.ExportConfiguration) bool) error {
	return r.configsByIndex(bucketConfigsByCheckDue, fn)
}

func (r *readTx) EnabledConfigsByScheduleDue(fn func(store.ExportConfiguration) bool) error {
	return r.configsByIndex(bucketConfigsByScheduleDue, fn)
}

// configsByIndex iterates the configurations an index names, in its order.
func (r *readTx) configsByIndex(index []byte, fn func(store.ExportConfiguration) bool) error {
	c := r.tx.Bucket(index).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		id := string(k[8:])
		cfg, found, err := r.Config(id)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("index %s names configuration %s, which does not exist", index, id)
		}
		if !fn(cfg) {
			return nil
		}
	}
	return nil
}

func (r *readTx) Secret(configID string) ([]byte, bool, error) {
	v := r.bucket(bucketSecrets).Get([]byte(configID))
	return bytes.Clone(v), v != nil, nil
}

// configIndexKeys are the keys of c in each configuration index (nil when not indexed).
func configIndexKeys(c store.ExportConfiguration) map[string][]byte {
	keys := map[string][]byte{string(bucketConfigsByCursor): nil, string(bucketConfigsByCheckDue): nil, string(bucketConfigsByScheduleDue): nil}
	if c.Enabled {
		keys[string(bucketConfigsByCursor)] = indexKey(seqKey(c.Cursor), c.ID)
		keys[string(bucketConfigsByCheckDue)] = indexKey(timeKey(c.NextCheckAt), c.ID)
		keys[string(bucketConfigsByScheduleDue)] = indexKey(timeKey(c.ScheduleDueAt), c.ID)
	}
	return keys
}

// reindexConfig moves a configuration's index entries from old (nil: none) to c (nil: none).
func (w *writeTx) reindexConfig(old, c *store.ExportConfiguration) error {
	var oldKeys, newKeys map[string][]byte
	if old != nil {
		oldKeys = configIndexKeys(*old)
		if old.Name != "" {
			if err := w.bucket(bucketConfigNames).Delete([]byte(old.Name)); err != nil {
				return err
			}
		}
	}
	if c != nil {
		newKeys = configIndexKeys(*c)
		if c.Name != "" {
			if err := w.bucket(bucketConfigNames).Put([]byte(c.Name), []byte(c.ID)); err != nil {
				return err
			}
		}
	}
	for _, index := range [][]byte{bucketConfigsByCursor, bucketConfigsByCheckDue, bucketConfigsByScheduleDue} {
		from, to := oldKeys[string(index)], newKeys[string(index)]
		if bytes.Equal(from, to) {
			continue
		}
		b := w.tx.Bucket(index)
		if from != nil {
			if err := b.Delete(from); err != nil {
				return err
			}
		}
		if to != nil {
			if err := b.Put(to, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *writeTx) PutConfig(c store.ExportConfiguration) error {
	if c.Name != "" {
		if other, found, _ := w.ConfigIDByName(c.Name); found && other != c.ID {
			return fmt.Errorf("an export configuration named %q already exists: %w", c.Name, store.ErrConflict)
		}
	}
	old, found, err := w.Config(c.ID)
	if err != nil {
		return err
	}
	previous := &old
	if !found {
		previous = nil
	}
	if err := w.reindexConfig(previous, &c); err != nil {
		return err
	}
	return putJSON(w.bucket(bucketConfigs), []byte(c.ID), c)
}

func (w *writeTx) DeleteConfig(id string) error {
	old, found, err := w.Config(id)
	if err != nil || !found {
		return err
	}
	if err := w.reindexConfig(&old, nil); err != nil {
		return err
	}
	if err := w.bucket(bucketSecrets).Delete([]byte(id)); err != nil {
		return err
	}
	return w.bucket(bucketConfigs).Delete([]byte(id))
}

func (w *writeTx) PutSecret(configID string, sealed []byte) error {
	return w.bucket(bucketSecrets).Put([]byte(configID), sealed)
}

func (r *readTx) Token(id string) (store.Token, bool, error) {
	return getJSON[store.Token](r.bucket(bucketTokens), []byte(id))
}

func tokenNameKey(name string) []byte { return []byte(strings.ToLower(name)) }

func (r *readTx) TokenIDByName(name string) (string, bool, error) {
	id := r.bucket(bucketTokenNames).Get(tokenNameKey(name))
	return string(id), id != nil, nil
}

func (r *readTx) Tokens(fn func(store.Token) bool) error {
	return eachJSON(r.bucket(bucketTokens), fn)
}

func (w *writeTx) PutToken(t store.Token) error {
	if other, found, _ := w.TokenIDByName(t.Name); found && other != t.ID {
		return fmt.Errorf("a token named %q already exists: %w", t.Name, store.ErrConflict)
	}
	if old, found, err := w.Token(t.ID); err != nil {
		return err
	} else if found {
		if err := w.bucket(bucketTokenNames).Delete(tokenNameKey(old.Name)); err != nil {
			return err
		}
	}
	if err := w.bucket(bucketTokenNames).Put(tokenNameKey(t.Name), []byte(t.ID)); err != nil {
		return err
	}
	return putJSON(w.bucket(bucketTokens), []byte(t.ID), t)
}

func (w *writeTx) DeleteToken(id string) error {
	old, found, err := w.Token(id)
	if err != nil || !found {
		return err
	}
	if err := w.bucket(bucketTokenNames).Delete(tokenNameKey(old.Name)); err != nil {
		return err
	}
	return w.bucket(bucketTokens).Delete([]byte(id))
}

func (r *readTx) Job(id string) (store.ExportJob, bool, error) {
	if r.e == nil { // migrations
		return getJSON[store.ExportJob](r.bucket(bucketJobs), []byte(id))
	}
	return getCached(r.e.jobs, r.bucket(bucketJobs), []byte(id))
}

// JobsOf iterates a configuration's jobs newest first: job ids are UUIDv7, so the index's key
// order is creation order.
func (r *readTx) JobsOf(configID string, fn func(store.ExportJob) bool) error {
	prefix := []byte(configID)
	c := r.bucket(bucketJobsByConfig).Cursor()
	// The last key with the prefix: seek past it, then step back.
	k, _ := c.Seek(append(bytes.Clone(prefix), 0xff))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		if !r.yieldJob(k[len(prefix):], fn) {
			return nil
		}
	}
	return nil
}

func (r *readTx) UnfinishedJobs(fn func(store.ExportJob) bool) error {
	c := r.bucket(bucketUnfinishedJobs).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if !r.yieldJob(k, fn) {
			return nil
		}
	}
	return nil
}

// yieldJob calls fn with the job an index names; a missing job is skipped (an index never
// outlives its job, but a reader must not stop on it).
func (r *readTx) yieldJob(id []byte, fn func(store.ExportJob) bool) bool {
	job, found, err := r.Job(string(id))
	if err != nil || !found {
		return true
	}
	return fn(job)
}

func (w *writeTx) PutJob(j store.ExportJob) error {
	if err := w.bucket(bucketJobsByConfig).Put([]byte(j.ConfigID+j.ID), nil); err != nil {
		return err
	}
	unfinished := w.bucket(bucketUnfinishedJobs)
	var err error
	if j.Finished() {
		err = unfinished.Delete([]byte(j.ID))
	} else {
		err = unfinished.Put([]byte(j.ID), nil)
	}
	if err != nil {
		return err
	}
	return putJSON(w.bucket(bucketJobs), []byte(j.ID), j)
}

func (w *writeTx) DeleteJob(id string) error {
	j, found, err := w.Job(id)
	if err != nil || !found {
		return err
	}
	for _, b := range []struct {
		bucket []byte
		key    string
	}{{bucketJobsByConfig, j.ConfigID + j.ID}, {bucketUnfinishedJobs, j.ID}, {bucketJobs, j.ID}} {
		if err := w.tx.Bucket(b.bucket).Delete([]byte(b.key)); err != nil {
			return err
		}
	}
	var keys [][]byte
	prefix := []byte(id + "/")
	c := w.bucket(bucketTasks).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := w.bucket(bucketTasks).Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func taskKey(jobID string, index int) []byte {
	return binary.BigEndian.AppendUint32([]byte(jobID+"/"), uint32(index))
}

func (r *readTx) Task(jobID string, index int) (store.ExportTask, bool, error) {
	return getJSON[store.ExportTask](r.bucket(bucketTasks), taskKey(jobID, index))
}

func (r *readTx) Tasks(jobID string, fn func(store.ExportTask) bool) error {
	prefix := []byte(jobID + "/")
	c := r.bucket(bucketTasks).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var t store.ExportTask
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode task %q: %w", k, err)
		}
		if !fn(t) {
			return nil
		}
	}
	return nil
}

func (w *writeTx) PutTask(t store.ExportTask) error {
	if w.bucket(bucketJobs).Get([]byte(t.JobID)) == nil {
		return &store.NotFoundError{What: "export job", ID: t.JobID}
	}
	return putJSON(w.bucket(bucketTasks), taskKey(t.JobID, t.Index), t)
}
