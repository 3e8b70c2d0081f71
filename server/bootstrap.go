package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/auditexport/auditexport/store"
)

// Files under the data directory.
const (
	dbFileName         = "auditexport.db"
	masterKeyFileName  = "master.key"
	adminTokenFileName = "admin-token"
	exportTempDirName  = "export-tmp"
	// MinAdminTokenLength is the shortest AUDITEXPORT_ADMIN_TOKEN the server accepts.
	MinAdminTokenLength = 16
)

// prepareDataDir creates the data directory, readable by the service's user only.
func prepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			log.Warn("data directory is readable by other users and cannot be restricted", "path", dir, "error", err)
		}
	}
	return nil
}

// loadMasterKey returns the key that seals secrets: from AUDITEXPORT_MASTER_KEY when set, else
// from <data-dir>/master.key, generating that file on first start.
func loadMasterKey(dataDir, fromEnv string, log *slog.Logger) ([]byte, error) {
	if fromEnv != "" {
		key, err := decodeMasterKey(fromEnv)
		if err != nil {
			return nil, fmt.Errorf("AUDITEXPORT_MASTER_KEY %w", err)
		}
		return key, nil
	}
	path := filepath.Join(dataDir, masterKeyFileName)
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := decodeMasterKey(string(data))
		if err != nil {
			return nil, fmt.Errorf("%s %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	key := make([]byte, store.MasterKeySize)
	rand.Read(key)
	if err := writeSecretFile(path, base64.StdEncoding.EncodeToString(key)+"\n"); err != nil {
		return nil, fmt.Errorf("write master key: %w", err)
	}
	log.Info("generated master key; back it up with the data, secrets cannot be read without it", "path", path)
	return key, nil
}

func decodeMasterKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(key) != store.MasterKeySize {
		return nil, fmt.Errorf("must be the base64 encoding of %d bytes (for example: openssl rand -base64 32)", store.MasterKeySize)
	}
	return key, nil
}

// ensureAdminToken installs the bootstrap admin token: AUDITEXPORT_ADMIN_TOKEN when set; else the
// one from an earlier start; else a new one written to <data-dir>/admin-token. The token's value
// is never logged, only the file's path.
func ensureAdminToken(ctx context.Context, dataDir, fromEnv string, st store.Tokens, log *slog.Logger) error {
	if fromEnv != "" {
		if len(fromEnv) < MinAdminTokenLength {
			return fmt.Errorf("AUDITEXPORT_ADMIN_TOKEN must be at least %d characters", MinAdminTokenLength)
		}
		if err := st.SetBootstrapToken(ctx, fromEnv); err != nil {
			return fmt.Errorf("store admin token: %w", err)
		}
		log.Info("admin token taken from AUDITEXPORT_ADMIN_TOKEN")
		return nil
	}
	has, err := st.HasBootstrapToken(ctx)
	if err != nil {
		return fmt.Errorf("read admin token: %w", err)
	}
	path := filepath.Join(dataDir, adminTokenFileName)
	if has {
		log.Info("admin token kept from an earlier start", "path", path)
		return nil
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token := "aexadmin_" + base64.RawURLEncoding.EncodeToString(raw)
	// The file first: if storing the hash fails, the next start simply makes a new pair.
	if err := writeSecretFile(path, token+"\n"); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	if err := st.SetBootstrapToken(ctx, token); err != nil {
		return fmt.Errorf("store admin token: %w", err)
	}
	log.Info("generated admin token", "path", path)
	return nil
}

// writeSecretFile writes content with mode 0600 and syncs it, so a crash right after start
// cannot leave a key the store was sealed with only half on disk.
func writeSecretFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
