package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/auditexport/auditexport/store"
)

// DataFileError is a data file the server refuses to open: empty, truncated or damaged.
type DataFileError struct {
	Path    string
	Problem string
	// Empty is a 0-byte file, which bbolt would silently take for a new database.
	Empty bool
}

func (e *DataFileError) Error() string {
	if e.Empty {
		return fmt.Sprintf("data file %s is empty (0 bytes): starting on it would begin a blank database "+
			"(no configurations, tokens or buffered events, a new digest signing key). Restore %s from a backup "+
			"made with this master key; only if this data directory never held data, delete the empty file", e.Path, e.Path)
	}
	return fmt.Sprintf("data file %s is damaged (%s): restore the data directory from a backup "+
		"(auditexport.db with the master key it was sealed with), or move the file away to start empty and lose what it held", e.Path, e.Problem)
}

// checkDataFile refuses, before the store opens it, a data file bbolt would mishandle. bbolt
// trusts its file: a 0-byte file it initializes as a new database; on a truncated file it reads
// past the end of its memory map (SIGBUS/SIGSEGV); on a damaged page it panics in a goroutine of
// its own while rebuilding the free list at open, where no recover reaches. Any of them would
// end the process with a stack trace or lose every configuration in silence.
//
// So the file is opened read-only first (bbolt validates both meta pages, magic, version and
// checksum, and takes a shared lock, so no other writer changes it meanwhile), its size is
// compared with the meta page's high-water mark, and every page reachable from the root is
// visited on this goroutine, where faults and bbolt's assertions become panics it recovers.
// A missing file is fine: it is a new data directory.
func checkDataFile(path string, lockTimeout time.Duration) (err error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data file: %w", err)
	}
	if info.Size() == 0 {
		return &DataFileError{Path: path, Empty: true}
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = &DataFileError{Path: path, Problem: fmt.Sprint(v)}
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("open %s: %w (is another auditexport using this data directory?)", path, store.ErrLocked)
	case errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch):
		return &DataFileError{Path: path, Problem: "neither of its two meta pages is valid: " + err.Error()}
	case err != nil:
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		// Size is the meta page's high-water mark times the page size: bbolt grows the file before
		// it records a larger mark, so a healthy file is never shorter.
		if size, err := os.Stat(path); err == nil && size.Size() < tx.Size() {
			return &DataFileError{Path: path, Problem: fmt.Sprintf("truncated: %d bytes, its header says at least %d", size.Size(), tx.Size())}
		}
		var v pageVisitor
		v.bucket(tx.Cursor())
		return nil
	})
}

// pageVisitor walks every page of a bucket and of the buckets in it, touching each key's and
// value's first and last byte, as bbolt's free-list scan at open will read them.
type pageVisitor struct{ sum byte } // sum keeps the reads from being optimized away

func (p *pageVisitor) bucket(c *bolt.Cursor) {
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p.touch(k)
		if v != nil {
			p.touch(v)
		} else if child := c.Bucket().Bucket(k); child != nil {
			p.bucket(child.Cursor())
		}
	}
}

func (p *pageVisitor) touch(b []byte) {
	if len(b) > 0 {
		p.sum ^= b[0] ^ b[len(b)-1]
	}
}

// openStore is store.Open turning a bbolt panic (a check at open that found the file
// inconsistent) into a DataFileError rather than a crash.
func openStore(cfg store.Config) (st *store.Store, err error) {
	defer func() {
		if v := recover(); v != nil {
			st, err = nil, &DataFileError{Path: cfg.Path, Problem: fmt.Sprint(v)}
		}
	}()
	return store.Open(cfg)
}
