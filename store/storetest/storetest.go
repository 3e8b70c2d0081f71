// Package storetest opens throwaway stores for tests, and holds the conformance suite every
// store engine must pass (Run).
package storetest

import (
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/auditexport/auditexport/internal/pgtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/postgres"
)

// Key returns a random master key.
func Key() []byte {
	key := make([]byte, store.MasterKeySize)
	rand.Read(key)
	return key
}

// New opens a store on a bbolt file in a fresh temporary directory, closed when the test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	return Open(t, filepath.Join(t.TempDir(), "auditexport.db"), Key())
}

// Open opens the store on the bbolt file at path with key, closed when the test ends; options
// change its Config.
func Open(t testing.TB, path string, key []byte, options ...func(*store.Config)) *store.Store {
	t.Helper()
	cfg := store.Config{MasterKey: key}
	for _, option := range options {
		option(&cfg)
	}
	return OpenBolt(t, path, cfg, bolt.Options{})
}

// OpenBolt opens a store with cfg on the bbolt file at path with opts, closed when the test ends.
func OpenBolt(t testing.TB, path string, cfg store.Config, opts bolt.Options) *store.Store {
	t.Helper()
	if opts.Now == nil {
		opts.Now = cfg.Now
	}
	engine, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("open bbolt engine: %v", err)
	}
	st, err := store.New(t.Context(), engine, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// NewPostgres opens a store with cfg (a random master key when it has none) on a fresh database
// of the test PostgreSQL (internal/pgtest), closed when the test ends.
func NewPostgres(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	if cfg.MasterKey == nil {
		cfg.MasterKey = Key()
	}
	engine, err := postgres.Open(t.Context(), pgtest.Require(t).NewDatabase(t), postgres.Options{Now: cfg.Now})
	if err != nil {
		t.Fatalf("open PostgreSQL engine: %v", err)
	}
	st, err := store.New(t.Context(), engine, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Status is the buffer's status, failing the test on error.
func Status(t testing.TB, b store.EventBuffer) store.BufferStatus {
	t.Helper()
	st, err := b.BufferStatus(t.Context())
	if err != nil {
		t.Fatalf("buffer status: %v", err)
	}
	return st
}

// Pending is how many events wait after cursor, failing the test on error.
func Pending(t testing.TB, c store.Cursors, cursor uint64) int64 {
	t.Helper()
	n, err := c.PendingEvents(t.Context(), cursor)
	if err != nil {
		t.Fatalf("pending events: %v", err)
	}
	return n
}
