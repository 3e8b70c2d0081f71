package exporter

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/store"
)

// DigestReport is what VerifyDigests found: how much it checked, and every problem.
type DigestReport struct {
	Digests  int      `json:"digests"`
	Objects  int      `json:"objects"`
	Problems []string `json:"problems"`
}

// OK reports whether the export verified without a problem.
func (r DigestReport) OK() bool { return len(r.Problems) == 0 }

// VerifyDigests checks an export under path, read through reader, the way a customer would: each digest's
// signature with publicKey, each configuration's chain of digests (each links to the one before
// it, the first to none), every listed object's size and SHA-256, and that every data object is
// listed in some digest (an object of a job still running has no digest yet). An error means
// the check could not run; what it found wrong is in the report.
func VerifyDigests(ctx context.Context, reader destination.Reader, path string, publicKey ed25519.PublicKey) (DigestReport, error) {
	var report DigestReport
	problem := func(format string, args ...any) {
		report.Problems = append(report.Problems, fmt.Sprintf(format, args...))
	}
	prefix := joinKey(path, "")
	keys, err := reader.List(ctx, prefix)
	if err != nil {
		return report, err
	}
	digestPrefix := joinKey(path, DigestDir+"/")
	var digestKeys []string
	data := map[string]bool{} // data object -> listed in a digest
	for _, key := range keys {
		switch {
		case strings.HasPrefix(key, digestPrefix):
			digestKeys = append(digestKeys, key)
		case strings.HasSuffix(key, "-snappy.parquet"):
			data[key] = false
		}
	}
	// Keys sort by first sequence, so each configuration's digests come in the order written.
	slices.Sort(digestKeys)
	last := map[string]store.DigestRef{} // configuration -> its previous digest
	for _, key := range digestKeys {
		body, meta, err := getObject(ctx, reader, key)
		if err != nil {
			return report, err
		}
		report.Digests++
		signature, err := base64.StdEncoding.DecodeString(meta[MetaSignature])
		if err != nil || !ed25519.Verify(publicKey, body, signature) {
			problem("%s: the signature does not verify with this public key", key)
			continue
		}
		var d Digest
		if err := json.Unmarshal(body, &d); err != nil {
			problem("%s: not a digest: %v", key, err)
			continue
		}
		ref := digestRef(key, body)
		previous, seen := last[d.ConfigurationID]
		switch {
		case seen && (d.PreviousDigest == nil || *d.PreviousDigest != previous):
			problem("%s: does not link to %s, the digest before it: a digest is missing or was replaced", key, previous.Key)
		case !seen && d.PreviousDigest != nil:
			problem("%s: links to %s, which is not in the bucket", key, d.PreviousDigest.Key)
		}
		last[d.ConfigurationID] = ref
		for _, o := range d.Objects {
			report.Objects++
			if _, ok := data[o.Key]; ok {
				data[o.Key] = true
			}
			sum, size, err := hashObject(ctx, reader, o.Key)
			if errors.Is(err, destination.ErrNotFound) {
				problem("%s: listed in %s, missing from the bucket", o.Key, key)
				continue
			}
			if err != nil {
				return report, err
			}
			if sum != o.SHA256 || size != o.Bytes {
				problem("%s: its content differs from what %s recorded (SHA-256 or size)", o.Key, key)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(data)) {
		if !data[key] {
			problem("%s: in no digest (altered or added, or its export job has not finished)", key)
		}
	}
	return report, nil
}

// getObject reads a (small) object whole, with its metadata.
func getObject(ctx context.Context, reader destination.Reader, key string) ([]byte, map[string]string, error) {
	body, meta, err := reader.Get(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", key, err)
	}
	return data, meta, nil
}

// hashObject streams an object through SHA-256 and returns the hex sum and the size.
func hashObject(ctx context.Context, reader destination.Reader, key string) (string, int64, error) {
	body, _, err := reader.Get(ctx, key)
	if err != nil {
		return "", 0, err
	}
	defer body.Close()
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
