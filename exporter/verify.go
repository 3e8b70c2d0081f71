package exporter

import (
	"bytes"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/auditexport/auditexport/store"
)

// ObjectReader is what verifying digests needs from S3: the customer's own read access, which
// the service itself never has.
type ObjectReader interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// DigestReport is what VerifyDigests found: how much it checked, and every problem.
type DigestReport struct {
	Digests  int      `json:"digests"`
	Objects  int      `json:"objects"`
	Problems []string `json:"problems"`
}

// OK reports whether the export verified without a problem.
func (r DigestReport) OK() bool { return len(r.Problems) == 0 }

// VerifyDigests checks an export under bucket/path the way a customer would: each digest's
// signature with publicKey, each configuration's chain of digests (each links to the one before
// it, the first to none), every listed object's size and SHA-256, and that every data object is
// listed in some digest (an object of a job still running has no digest yet). An error means
// the check could not run; what it found wrong is in the report.
func VerifyDigests(ctx context.Context, client ObjectReader, bucket, path string, publicKey ed25519.PublicKey) (DigestReport, error) {
	var report DigestReport
	problem := func(format string, args ...any) {
		report.Problems = append(report.Problems, fmt.Sprintf(format, args...))
	}
	prefix := joinKey(path, "")
	keys, err := listKeys(ctx, client, bucket, prefix)
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
		body, meta, err := getObject(ctx, client, bucket, key)
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
			content, _, err := getObject(ctx, client, bucket, o.Key)
			var missing *types.NoSuchKey
			if errors.As(err, &missing) {
				problem("%s: listed in %s, missing from the bucket", o.Key, key)
				continue
			}
			if err != nil {
				return report, err
			}
			if sum := sha256.Sum256(content); hex.EncodeToString(sum[:]) != o.SHA256 || int64(len(content)) != o.Bytes {
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

func listKeys(ctx context.Context, client ObjectReader, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

func getObject(ctx context.Context, client ObjectReader, bucket, key string) ([]byte, map[string]string, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, out.Body); err != nil {
		return nil, nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	return buf.Bytes(), out.Metadata, nil
}
