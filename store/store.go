// Package store keeps auditexport's state in one bbolt file: export configurations, their secrets
// (sealed with AES-256-GCM), and API tokens (as hashes). Every write is validated first, so
// invalid data never reaches the file, and a failed write leaves the file as it was.
package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Config configures Open.
type Config struct {
	// Path of the bbolt file. Created with mode 0600 when missing.
	Path string
	// OpenTimeout bounds the wait for the file lock; a second process on the same file fails
	// after it instead of hanging. Default 1s.
	OpenTimeout time.Duration
	// MasterKey seals secrets at rest: MasterKeySize bytes. Required.
	MasterKey []byte
	// Logger receives the store's own messages. Default: discard.
	Logger *slog.Logger
	// Now is the clock; tests may replace it. Default time.Now.
	Now func() time.Time
	// Buffer bounds the event buffer.
	Buffer BufferConfig
	// Endpoints restricts the endpoints configurations may name; the zero value allows any.
	Endpoints EndpointPolicy
}

// DefaultConfig returns a Config with every default filled in but Path and MasterKey.
func DefaultConfig() Config {
	return Config{OpenTimeout: time.Second, Logger: slog.New(slog.DiscardHandler), Now: time.Now}
}

// Store is the bbolt-backed state of one auditexport server. It is safe for concurrent use.
type Store struct {
	db      *bolt.DB
	sealer  *sealer
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	// endpoints is checked when a configuration is created or its endpoint changes.
	endpoints EndpointPolicy
	// digestKey signs export digests; generated once per store, kept sealed in it.
	digestKey ed25519.PrivateKey

	// writeMu serializes write transactions with the in-memory buffer state they change
	// (bbolt serializes the transactions themselves, but not what happens after commit).
	writeMu sync.Mutex
	buf     *buffer

	appends       chan appendRequest
	closing       chan struct{}
	closeOnce     sync.Once
	committerDone chan struct{}
	trimmerDone   chan struct{}
}

// Open opens or creates the store at cfg.Path, creating its buckets and checking that the
// file's schema version and master key match this binary.
func Open(cfg Config) (*Store, error) {
	def := DefaultConfig()
	cfg.OpenTimeout = cmp.Or(max(cfg.OpenTimeout, 0), def.OpenTimeout)
	cfg.Logger = cmp.Or(cfg.Logger, def.Logger)
	if cfg.Now == nil {
		cfg.Now = def.Now
	}
	sl, err := newSealer(cfg.MasterKey)
	if err != nil {
		return nil, err
	}
	cfg.Buffer.fillDefaults()
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout: cfg.OpenTimeout,
		// The freelist is rebuilt at open instead of written at every commit: cheaper commits.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w (is another auditexport using this data directory?)", cfg.Path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	// bbolt keeps the mode of an existing file; data files must not be readable by others.
	if err := os.Chmod(cfg.Path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("restrict permissions of %s: %w", cfg.Path, err)
	}
	s := &Store{
		db: db, sealer: sl, log: cfg.Logger, now: cfg.Now, metrics: newMetrics(), endpoints: cfg.Endpoints,
		appends: make(chan appendRequest), closing: make(chan struct{}),
		committerDone: make(chan struct{}), trimmerDone: make(chan struct{}),
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := s.initialize(tx); err != nil {
			return err
		}
		s.buf, err = loadBuffer(tx, cfg.Buffer)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	s.metrics.watch(s)
	go s.commitLoop()
	go s.trimLoop()
	return s, nil
}

// initialize creates missing buckets and checks the schema version and master key.
func (s *Store) initialize(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keySchemaVersion); v != nil {
		if len(v) != 8 {
			return fmt.Errorf("schema version record is corrupt")
		}
		if got := binary.BigEndian.Uint64(v); got > schemaVersion {
			return fmt.Errorf("data was written by a newer auditexport (schema %d, this binary knows %d)", got, schemaVersion)
		}
	}
	if err := meta.Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, schemaVersion)); err != nil {
		return err
	}
	// A known value sealed under the master key tells at start-up, not at the first export,
	// that the key has changed.
	const check = "auditexport master key check"
	if sealed := meta.Get(keyMasterKeyCheck); sealed != nil {
		plain, err := s.sealer.open(sealed, keyMasterKeyCheck)
		if err != nil || !bytes.Equal(plain, []byte(check)) {
			return ErrWrongMasterKey
		}
	} else if err := meta.Put(keyMasterKeyCheck, s.sealer.seal([]byte(check), keyMasterKeyCheck)); err != nil {
		return err
	}
	return s.loadDigestKey(meta)
}

// Close stops the committer and the retention loop and closes the file. Appends waiting for a
// commit get ErrClosed. The Store must not be used afterwards.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.committerDone
	<-s.trimmerDone
	return s.db.Close()
}

// update runs fn in a write transaction. Events fn appends through w, and the changes it
// schedules with w.afterCommit, become visible only once the transaction has committed.
func (s *Store) update(fn func(tx *bolt.Tx, w *eventWriter) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var w *eventWriter
	err := s.db.Update(func(tx *bolt.Tx) error {
		w = s.buf.writer(tx, s.now())
		if err := fn(tx, w); err != nil {
			return err
		}
		return w.flush()
	})
	if err == nil {
		s.buf.apply(w)
	}
	return err
}

// Ready reports whether the file is open and readable.
func (s *Store) Ready(ctx context.Context) error {
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("store is not initialized")
		}
		return nil
	})
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.db.Path() }
