package exporter

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/store"
)

// DigestDir is the folder under a configuration's path that holds its digests. The leading
// underscore makes Athena, Spark and Hive skip it as they read the data, and DuckDB's
// **/*.parquet globs do not match its .json files.
const DigestDir = "_auditexport_digests"

// Digest metadata names, sent as x-amz-meta-* (S3) or x-ms-meta-* with "_" for "-" (Azure,
// whose metadata names cannot hold a hyphen): the signature lives beside the body it signs,
// as CloudTrail's digests do, so the body is exactly the signed bytes.
const (
	MetaSignature          = "signature"           // base64 Ed25519 signature of the body
	MetaSignatureAlgorithm = "signature-algorithm" // "Ed25519"
	MetaPublicKeySHA256    = "public-key-sha256"   // hex SHA-256 of the verifying key (PKIX DER)
)

// Digest is one job's record of what it wrote: every object with its SHA-256, and the link to
// the configuration's previous digest, so a customer can prove no object was altered or
// removed and no digest is missing. Its fields never change between retries of a job, so a
// retry overwrites the digest with the same bytes.
type Digest struct {
	Version         int              `json:"version"`
	ConfigurationID string           `json:"configurationId"`
	JobID           string           `json:"jobId"`
	JobCreatedAt    time.Time        `json:"jobCreatedAt"`
	FirstSequence   uint64           `json:"firstSequence"`
	LastSequence    uint64           `json:"lastSequence"`
	Events          int64            `json:"events"`
	SkippedEvents   int64            `json:"skippedEvents"`
	Objects         []DigestObject   `json:"objects"`
	PreviousDigest  *store.DigestRef `json:"previousDigest"` // null in the first
}

// DigestObject is one exported object as its digest lists it.
type DigestObject struct {
	Key           string `json:"key"`
	Bytes         int64  `json:"bytes"`
	SHA256        string `json:"sha256"`
	FirstSequence uint64 `json:"firstSequence"`
	LastSequence  uint64 `json:"lastSequence"`
	Events        int64  `json:"events"`
}

func digestKey(path string, job store.ExportJob, configID string) string {
	return joinKey(path, fmt.Sprintf("%s/%020d-%020d-%s-digest.json", DigestDir, job.From+1, job.To, configID))
}

// writeDigest uploads the signed digest of a job whose objects are all uploaded, and returns the
// link the next digest will carry.
func (x *Exporter) writeDigest(ctx context.Context, dest destination.Destination, cfg store.ExportConfiguration, job store.ExportJob, stats exportStats) (store.DigestRef, error) {
	events, _, _ := stats.totals()
	d := Digest{
		Version: 1, ConfigurationID: cfg.ID, JobID: job.ID, JobCreatedAt: job.CreatedAt.UTC(),
		FirstSequence: job.From + 1, LastSequence: job.To, Events: events,
		SkippedEvents: job.Skipped(events), Objects: stats.objects,
	}
	if cfg.LastDigest.Key != "" {
		d.PreviousDigest = &cfg.LastDigest
	}
	body, err := json.Marshal(d)
	if err != nil {
		return store.DigestRef{}, err
	}
	body = append(body, '\n')
	key, err := x.store.DigestSigningKey(ctx)
	if err != nil {
		return store.DigestRef{}, err
	}
	ref := digestRef(digestKey(cfg.Path, job, cfg.ID), body)
	metadata := map[string]string{
		MetaSignature:          base64.StdEncoding.EncodeToString(ed25519.Sign(key, body)),
		MetaSignatureAlgorithm: "Ed25519",
		MetaPublicKeySHA256:    PublicKeySHA256(key.Public().(ed25519.PublicKey)),
	}
	return ref, destination.WithinTime(ctx, x.cfg.UploadTimeout, func(ctx context.Context) error {
		return dest.Put(ctx, smallObject(ref.Key, "application/json", body, metadata))
	})
}

// digestRef is the link to a digest: its key and the SHA-256 of its body.
func digestRef(key string, body []byte) store.DigestRef {
	sum := sha256.Sum256(body)
	return store.DigestRef{Key: key, SHA256: hex.EncodeToString(sum[:])}
}

// PublicKeyPEM is a digest verification key as a PEM "PUBLIC KEY" block (PKIX), as openssl reads it.
func PublicKeyPEM(pub ed25519.PublicKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: publicKeyDER(pub)}))
}

// PublicKeySHA256 is the hex SHA-256 of the key's PKIX form: the name of the key that signed, in
// every digest's metadata.
func PublicKeySHA256(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(publicKeyDER(pub))
	return hex.EncodeToString(sum[:])
}

func publicKeyDER(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // an Ed25519 public key always marshals
	}
	return der
}
