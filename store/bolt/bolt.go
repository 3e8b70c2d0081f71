// Package bolt is auditexport's embedded store engine: one bbolt file, nothing else to run.
// It stores, indexes and transacts for store.Store (see store.Engine); the rules are the
// store's. Write transactions are serialized and synced before Update returns.
package bolt

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/auditexport/auditexport/store"
	"github.com/google/uuid"
)

// Options configures Open. Zero fields take the defaults shown.
type Options struct {
	// Timeout bounds the wait for the file lock: a second process on the same file fails after
	// it instead of hanging. Default 1s.
	Timeout time.Duration
	// SegmentMaxEvents and SegmentMaxAge close a buffer segment, the unit the buffer is trimmed
	// by. Defaults 65,536 events and 1h.
	SegmentMaxEvents int64
	SegmentMaxAge    time.Duration
	// Now is the transactions' clock. Default time.Now.
	Now func() time.Time
	// Logger receives the engine's messages (migrations). Default: discard.
	Logger *slog.Logger
	// OnDamage is called once when a transaction finds the file damaged (see DamagedError);
	// from then on every call fails with that error.
	OnDamage func(error)
}

func (o *Options) fillDefaults() {
	o.Timeout = cmp.Or(max(o.Timeout, 0), time.Second)
	o.SegmentMaxEvents = cmp.Or(max(o.SegmentMaxEvents, 0), 65_536)
	o.SegmentMaxAge = cmp.Or(max(o.SegmentMaxAge, 0), time.Hour)
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
}

// ErrLocked means another process holds the data file open.
var ErrLocked = errors.New("data file is locked by another process")

// lockedError is ErrLocked for the file at path, with what to look for.
func lockedError(path string) error {
	return fmt.Errorf("open %s: %w (is another auditexport using this data directory?)", path, ErrLocked)
}

// Engine is the bbolt engine. It is safe for concurrent use.
type Engine struct {
	db   *bbolt.DB
	opts Options

	// writeMu serializes write transactions together with the in-memory state they change:
	// bbolt releases its own lock before commit handlers run.
	writeMu sync.Mutex
	// mu guards buf for readers; writers change it only under writeMu after a commit.
	mu  sync.RWMutex
	buf *buffer

	// added is the last write transaction's list of appended ids, kept for the next (under
	// writeMu).
	added []uuid.UUID
	// chunkValues, chunkRaw (one per encoding goroutine) and chunkOut are the write
	// transactions' buffers for chunks (chunks.go).
	chunkValues [][]byte
	chunkRaw    [2][]byte
	chunkOut    [][]byte

	// damaged is the first DamagedError a transaction met.
	damaged atomic.Pointer[DamagedError]

	// configs and jobs save decoding records read again unchanged.
	configs *decodeCache[store.ExportConfiguration]
	jobs    *decodeCache[store.ExportJob]
}

// Bounds of the decode caches: every configuration of a large installation, and a few jobs of
// each (the newest, which lists read).
const (
	configCacheSize = 100_000
	jobCacheSize    = 50_000
)

var _ store.Engine = (*Engine)(nil)

// initialMmapSize is how much of the file bbolt maps at open: a buffer of a few million events
// fits (about 1,000,000 events in 200 MiB of file).
const initialMmapSize = 2 << 30

// Open opens or creates the engine's file at path (mode 0600), upgrading a file written by an
// earlier release in place and refusing one written by a newer release, and a damaged one
// (Check).
func Open(path string, opts Options) (_ *Engine, err error) {
	opts.fillDefaults()
	legacy, err := check(path)
	if err != nil {
		return nil, err
	}
	var db *bbolt.DB
	defer func() {
		if v := recover(); v != nil {
			if db != nil {
				db.Close()
			}
			err = &DamagedError{Path: path, Problem: fmt.Sprint(v)}
		}
	}()
	defer faultsPanic()()
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.Timeout,
		// The freelist is rebuilt at open, not written at every commit (as etcd does): written,
		// it cost every group commit about 0.15 ms in a file of 100,000 jobs (an append 1.18× the
		// same in an empty file, BenchmarkIngestAtScale). Rebuilding walks the branch and leaf
		// pages, not the chunks' overflow pages, after Check has walked them where damage is
		// recovered (BenchmarkRestart: 5,000,000 buffered events).
		// A file still holding events written one per key (before schema 3) keeps it written:
		// rebuilding it would read every one of their pages at open (check).
		FreelistType: bbolt.FreelistMapType, NoFreelistSync: !legacy,
		// bbolt maps the file, and a commit that outgrows the map remaps it: it waits for every
		// read transaction to end (an export reading its events), and the ingests waiting on the
		// group commit wait with it. Mapping ahead (address space only; the file grows as
		// written) keeps commits from waiting on reads until the file outgrows it.
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, lockedError(path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// bbolt keeps the mode of an existing file; data files must not be readable by others.
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("restrict permissions of %s: %w", path, err)
	}
	e := &Engine{db: db, opts: opts,
		configs: newDecodeCache[store.ExportConfiguration](configCacheSize), jobs: newDecodeCache[store.ExportJob](jobCacheSize)}
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := migrate(tx, opts); err != nil {
			return err
		}
		e.buf, err = loadBuffer(tx, opts)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return e, nil
}

// Update runs fn in a write transaction synced to disk before it returns.
func (e *Engine) Update(ctx context.Context, fn func(store.Tx) error) (err error) {
	if err := cmp.Or(ctx.Err(), e.damage()); err != nil {
		return err
	}
	defer e.guard(&err)
	defer faultsPanic()()
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	var w *writeTx
	committed := false
	defer func() { // on every other way out, a panic included
		if w != nil && !committed {
			w.events.rollback()
		}
	}()
	err = e.db.Update(func(tx *bbolt.Tx) error {
		w = e.newWriteTx(tx)
		if err := fn(w); err != nil {
			return err
		}
		return w.events.flush()
	})
	if err == nil {
		committed = true
		e.mu.Lock()
		w.events.apply()
		e.mu.Unlock()
	}
	if w != nil && cap(w.events.added) <= 1<<20 {
		e.added = w.events.added[:0]
	}
	return err
}

// View runs fn in a read transaction.
func (e *Engine) View(ctx context.Context, fn func(store.ReadTx) error) (err error) {
	if err := cmp.Or(ctx.Err(), e.damage()); err != nil {
		return err
	}
	defer e.guard(&err)
	defer faultsPanic()()
	return e.db.View(func(tx *bbolt.Tx) error {
		return fn(&readTx{tx: tx, e: e})
	})
}

// Ready reports whether the file is open and readable.
func (e *Engine) Ready(ctx context.Context) error {
	return e.View(ctx, func(store.ReadTx) error { return nil })
}

// Exclusive is true: the file lock gives this process the data alone.
func (e *Engine) Exclusive() bool { return true }

// Close closes the file.
func (e *Engine) Close() error { return e.db.Close() }

// Path is the file the engine lives in.
func (e *Engine) Path() string { return e.db.Path() }

// readTx reads from a bbolt transaction.
type readTx struct {
	tx      *bbolt.Tx
	e       *Engine
	buckets map[*byte]*bbolt.Bucket // looked up once per transaction: a lookup is a search
	// events is the write transaction's pending buffer state; nil in read transactions.
	events *eventWriter
}

// bucket returns a top-level bucket of the transaction.
func (r *readTx) bucket(name []byte) *bbolt.Bucket {
	if b, ok := r.buckets[&name[0]]; ok {
		return b
	}
	if r.buckets == nil {
		r.buckets = make(map[*byte]*bbolt.Bucket, 8)
	}
	b := r.tx.Bucket(name)
	r.buckets[&name[0]] = b
	return b
}

// writeTx writes to a bbolt transaction.
type writeTx struct {
	readTx
}

func (e *Engine) newWriteTx(tx *bbolt.Tx) *writeTx {
	w := &writeTx{readTx{tx: tx, e: e}}
	w.events = newEventWriter(e, tx)
	return w
}

// Now is the engine's clock.
func (w *writeTx) Now() time.Time { return w.e.opts.Now() }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
