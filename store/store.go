// Package store is auditexport's state and the rules that guard it: export configurations,
// their secrets (sealed with AES-256-GCM), API tokens (as hashes), the durable event buffer,
// export jobs, cursors and the digest signing key. The contract is written on small role
// interfaces (contract.go); Store implements it once over an Engine (engine.go), which only
// stores, indexes and transacts: store/bolt embedded, store/postgres shared by replicas.
// Every write is validated first, so invalid data never reaches an engine, and a failed write
// leaves the data as it was.
package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Config configures New.
type Config struct {
	// MasterKey seals secrets at rest: MasterKeySize bytes. Required.
	MasterKey []byte
	// Logger receives the store's own messages. Default: discard.
	Logger *slog.Logger
	// Now replaces the clock (tests). By default the store uses the engine's transaction clock
	// (the database's, for a shared engine), and time.Now outside transactions.
	Now func() time.Time
	// Buffer bounds the event buffer.
	Buffer BufferConfig
	// Endpoints restricts the endpoints configurations may name; the zero value allows any.
	Endpoints EndpointPolicy
	// NoTrimLoop leaves trimming to explicit Trim calls (tests).
	NoTrimLoop bool
}

// Store implements the contract over an Engine. It is safe for concurrent use, also by several
// processes over one shared engine.
type Store struct {
	engine    Engine
	sealer    *sealer
	log       *slog.Logger
	now       func() time.Time
	fixedNow  func() time.Time // Config.Now, when set
	metrics   *metrics
	endpoints EndpointPolicy
	buffer    BufferConfig
	digestKey ed25519.PrivateKey

	appends       chan appendRequest
	writes        chan writeRequest // to the group committer, when it is the only one; nil until it runs
	closing       chan struct{}
	closeOnce     sync.Once
	committerDone chan struct{}
	trimmerDone   chan struct{}
}

// Meta keys Store keeps in the engine.
const (
	metaMasterKeyCheck = "master_key_check"
	metaDigestKey      = "digest_signing_key"
	metaDroppedEvents  = "dropped_events"
)

// New returns a Store over engine, checking that the master key opens what it sealed before.
// The Store owns the engine from then on: Close closes it, also when New fails.
func New(ctx context.Context, engine Engine, cfg Config) (*Store, error) {
	sl, err := newSealer(cfg.MasterKey)
	if err != nil {
		engine.Close()
		return nil, err
	}
	cfg.Buffer.fillDefaults()
	s := &Store{
		engine: engine, sealer: sl, log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)), now: cfg.Now, fixedNow: cfg.Now,
		metrics: newMetrics(), endpoints: cfg.Endpoints, buffer: cfg.Buffer,
		appends: make(chan appendRequest), closing: make(chan struct{}),
		committerDone: make(chan struct{}), trimmerDone: make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := engine.Update(ctx, s.initialize); err != nil {
		engine.Close()
		return nil, err
	}
	if engine.Exclusive() {
		if err := s.releaseLeases(ctx); err != nil {
			engine.Close()
			return nil, err
		}
	}
	s.metrics.watch(s)
	s.startCommitters()
	if cfg.NoTrimLoop {
		close(s.trimmerDone)
	} else {
		go s.trimLoop()
	}
	return s, nil
}

// initialize checks the master key against the value it sealed at the first start, and loads
// (or makes) the digest signing key.
func (s *Store) initialize(tx Tx) error {
	// A known value sealed under the master key tells at start-up, not at the first export,
	// that the key has changed.
	const check = "auditexport master key check"
	sealed, err := tx.Meta(metaMasterKeyCheck)
	if err != nil {
		return err
	}
	if sealed != nil {
		plain, err := s.sealer.open(sealed, []byte(metaMasterKeyCheck))
		if err != nil || !bytes.Equal(plain, []byte(check)) {
			return ErrWrongMasterKey
		}
	} else if err := tx.PutMeta(metaMasterKeyCheck, s.sealer.seal([]byte(check), []byte(metaMasterKeyCheck))); err != nil {
		return err
	}
	return s.loadDigestKey(tx)
}

// Close stops the committer and the retention loop and closes the engine. Appends waiting for
// a commit get ErrClosed. The Store must not be used afterwards.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.committerDone
	<-s.trimmerDone
	return s.engine.Close()
}

// update runs fn in a write transaction, unless the store is closed or ctx has ended.
func (s *Store) update(ctx context.Context, fn func(Tx) error) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	return s.engine.Update(ctx, fn)
}

// view runs fn in a read transaction, unless the store is closed or ctx has ended.
func (s *Store) view(ctx context.Context, fn func(ReadTx) error) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	return s.engine.View(ctx, fn)
}

func (s *Store) usable(ctx context.Context) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	return ctx.Err()
}

// txNow is the time within a transaction: the engine's clock unless a test fixed one.
func (s *Store) txNow(tx Tx) time.Time {
	if s.fixedNow != nil {
		return s.fixedNow()
	}
	return tx.Now()
}

// Ready reports whether the engine can serve now.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	return s.engine.Ready(ctx)
}

// ErrClosed means the store is closed.
var ErrClosed = errors.New("store is closed")
