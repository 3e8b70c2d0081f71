package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Check refuses, before the engine opens it for writing, a data file bbolt would
// mishandle: a 0-byte file it would initialize as a new database (every configuration lost in
// silence), a truncated file it would read past the end of, a damaged page it would panic on.
// Open runs it first.
//
// The file is opened read-only first (bbolt validates both meta pages, magic, version and
// checksum, under a shared lock, so no writer changes it meanwhile), its size is compared with
// the meta page's high-water mark, and every branch and leaf page is visited on this goroutine,
// where faults and bbolt's assertions become panics recovered here. That must come before the
// engine's open: bbolt then rebuilds its freelist by walking the same pages on a goroutine of its
// own, where a damaged page would crash the process. Values are read, but for the buffer's
// events, whose chunks (most of a large file) are left to the engine: a chunk is checked against
// its CRC-32C when an export reads it, and damage then stops the service with the same error
// (DamagedError). A missing file is fine: it is a new data directory.
func Check(path string) error {
	_, err := check(path)
	return err
}

// check is Check, and reports whether the buffer holds events written one per key by a release
// before schema 3 (legacy). Their segments are not walked (every page of them holds events):
// only their first and last keys, as before, and such a file keeps bbolt's freelist written at
// every commit, since rebuilding it would read them all at open. A segment is legacy when its
// first value is not a chunk; once they are trimmed, the file is walked whole.
func check(path string) (legacy bool, err error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("data file: %w", err)
	}
	if info.Size() == 0 {
		return false, &DamagedError{Path: path, Empty: true}
	}
	defer faultsPanic()()
	defer func() {
		if v := recover(); v != nil {
			err = &DamagedError{Path: path, Problem: fmt.Sprint(v)}
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return false, lockedError(path)
	case errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch):
		return false, &DamagedError{Path: path, Problem: "neither of its two meta pages is valid: " + err.Error()}
	case err != nil:
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var visitor pageVisitor
	err = db.View(func(tx *bbolt.Tx) error {
		// Size is the meta page's high-water mark times the page size: bbolt grows the file before
		// it records a larger mark, so a healthy file is never shorter.
		if size, err := os.Stat(path); err == nil && size.Size() < tx.Size() {
			return &DamagedError{Path: path, Problem: fmt.Sprintf("truncated: %d bytes, its header says at least %d", size.Size(), tx.Size())}
		}
		visitor.bucket(tx.Cursor(), 0)
		return nil
	})
	return visitor.legacy, err
}

// pageVisitor walks the pages of a bucket and of the buckets in it, touching each key's and
// value's first and last byte.
type pageVisitor struct {
	sum    byte // keeps the reads from being optimized away
	legacy bool // a segment's first value is not a chunk (check)
}

func (p *pageVisitor) bucket(c *bbolt.Cursor, depth int) {
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p.touch(k)
		if v != nil {
			p.touch(v)
			continue
		}
		child := c.Bucket().Bucket(k)
		if child == nil {
			continue
		}
		if depth == 0 && bytes.Equal(k, bucketEvents) {
			p.segmentRoots(child)
			continue
		}
		p.bucket(child.Cursor(), depth+1)
	}
}

// segmentRoots visits every segment and every key in it, and the key of every chunk's bucket
// (schema 5), so every branch and leaf page, but not the values: the chunks of events, in
// overflow pages of their own. A legacy segment, whose first value is an event of its own
// (written before schema 3, every page of it holding events), only at its first and last keys.
func (p *pageVisitor) segmentRoots(events *bbolt.Bucket) {
	c := events.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		p.touch(k)
		seg := events.Bucket(k)
		if seg == nil {
			continue
		}
		sc := seg.Cursor()
		first, v := sc.First()
		if first != nil && v != nil && !isChunk(v) {
			p.legacy = true
			last, _ := sc.Last()
			p.touch(first)
			p.touch(last)
			continue
		}
		for key, v := first, v; key != nil; key, v = sc.Next() {
			p.touch(key)
			if v == nil {
				if chunk := seg.Bucket(key); chunk != nil {
					inner, _ := chunk.Cursor().First()
					p.touch(inner)
				}
			}
		}
	}
}

func (p *pageVisitor) touch(b []byte) {
	if len(b) > 0 {
		p.sum ^= b[0] ^ b[len(b)-1]
	}
}
