package store

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// DigestRef names a digest object and the SHA-256 (hex) of its body: the link from each digest
// to the one before it, so a removed or altered digest breaks the chain.
type DigestRef struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
}

// loadDigestKey reads the digest signing key, generating it on first use.
func (s *Store) loadDigestKey(meta *bolt.Bucket) error {
	sealed := meta.Get(keyDigestSigningKey)
	if sealed == nil {
		seed := make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		sealed = s.sealer.seal(seed, keyDigestSigningKey)
		if err := meta.Put(keyDigestSigningKey, sealed); err != nil {
			return err
		}
	}
	seed, err := s.sealer.open(sealed, keyDigestSigningKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return fmt.Errorf("open the digest signing key: %w", ErrWrongMasterKey)
	}
	s.digestKey = ed25519.NewKeyFromSeed(seed)
	return nil
}

// SignDigest signs a digest body with the store's Ed25519 key.
func (s *Store) SignDigest(body []byte) []byte { return ed25519.Sign(s.digestKey, body) }

// DigestPublicKey is the key that verifies digest signatures.
func (s *Store) DigestPublicKey() ed25519.PublicKey {
	return s.digestKey.Public().(ed25519.PublicKey)
}

// DigestPublicKeyPEM is DigestPublicKey as a PEM "PUBLIC KEY" block (PKIX), as openssl reads it.
func (s *Store) DigestPublicKeyPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: s.digestPublicKeyDER()}))
}

// DigestPublicKeySHA256 is the hex SHA-256 of the key's PKIX form: the name of the key that
// signed, in every digest's metadata.
func (s *Store) DigestPublicKeySHA256() string {
	sum := sha256.Sum256(s.digestPublicKeyDER())
	return hex.EncodeToString(sum[:])
}

func (s *Store) digestPublicKeyDER() []byte {
	der, err := x509.MarshalPKIXPublicKey(s.DigestPublicKey())
	if err != nil {
		panic(err) // an Ed25519 public key always marshals
	}
	return der
}
