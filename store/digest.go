package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
)

// DigestRef names a digest object and the SHA-256 (hex) of its body: the link from each digest
// to the one before it, so a removed or altered digest breaks the chain.
type DigestRef struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
}

// loadDigestKey reads the digest signing key, generating it on first use: one per store, so
// replicas sharing an engine sign with one key.
func (s *Store) loadDigestKey(tx Tx) error {
	sealed, err := tx.Meta(metaDigestKey)
	if err != nil {
		return err
	}
	if sealed == nil {
		seed := make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		sealed = s.sealer.seal(seed, []byte(metaDigestKey))
		if err := tx.PutMeta(metaDigestKey, sealed); err != nil {
			return err
		}
	}
	seed, err := s.sealer.open(sealed, []byte(metaDigestKey))
	if err != nil || len(seed) != ed25519.SeedSize {
		return fmt.Errorf("open the digest signing key: %w", ErrWrongMasterKey)
	}
	s.digestKey = ed25519.NewKeyFromSeed(seed)
	return nil
}

// DigestSigningKey returns the Ed25519 key that signs export digests. The exporter signs; the
// store only keeps the key, sealed.
func (s *Store) DigestSigningKey(ctx context.Context) (ed25519.PrivateKey, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	return s.digestKey, nil
}
