package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/auditexport/auditexport/graph"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/postgres"
)

// The store's engine: the bbolt file in the data directory by default, or, with a database URL,
// PostgreSQL, which any number of replicas share (each exports the configurations whose jobs it
// holds the lease of; see the README's "Running replicas").

// startWait bounds how long a starting replica waits for an unreachable database (one starting
// beside it, say) before it gives up.
const startWait = time.Minute

// openEngine opens the engine cfg names.
func openEngine(ctx context.Context, cfg Config, log *slog.Logger, onDamage func(error)) (store.Engine, error) {
	if cfg.DatabaseURL == "" {
		return bolt.Open(filepath.Join(cfg.DataDir, dbFileName), bolt.Options{Logger: log, OnDamage: onDamage})
	}
	deadline := time.Now().Add(startWait)
	for {
		e, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log})
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			return nil, fmt.Errorf("open the PostgreSQL store: %w", err)
		}
		log.Warn("the database is unreachable; trying again", "error", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// masterKey is loadMasterKey, except that replicas sharing a database never generate a key:
// each would generate its own, and all but the first would be refused.
func masterKey(cfg Config, log *slog.Logger) ([]byte, error) {
	if cfg.DatabaseURL != "" && cfg.MasterKey == "" {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, masterKeyFileName)); errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("with a database URL every replica must share one master key: set AUDITEXPORT_MASTER_KEY " +
				"(openssl rand -base64 32) to the same value on each, or put it in <data-dir>/" + masterKeyFileName)
		}
	}
	return loadMasterKey(cfg.DataDir, cfg.MasterKey, log)
}

// storeKind names the engine in the start-up log (never the URL: it may hold a password).
func storeKind(cfg Config) string {
	if cfg.DatabaseURL != "" {
		return "postgres"
	}
	return "bbolt"
}

// writeUnavailable answers 503 while the store's database cannot be reached: nothing of the
// request was kept, and the client should retry.
func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, graph.CodeUnavailable, "the database cannot be reached; the request was not carried out: retry later (events sent again are deduplicated)")
}
