package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/exporter/destination/destinationtest"
	s3dest "github.com/auditexport/auditexport/exporter/destination/s3"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/store"
)

func loopbackClient(t *testing.T) s3dest.Options {
	t.Helper()
	p, err := destination.ParseAddressPolicy("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return s3dest.Options{
		HTTPClient:         destination.NewHTTPClient(destination.TransportConfig{Addresses: p}),
		MultipartThreshold: 6 << 20, PartSize: 5 << 20,
	}
}

// The destination acceptance test on MinIO, with the customer's PutObject-only identity.
func TestAcceptanceOnMinIO(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	putKey, putSecret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	readKey, readSecret := srv.NewUser(t, s3test.ReadOnlyPolicy(bucket))
	opts := loopbackClient(t)
	newDest := func(key, secret string) destination.Destination {
		d, err := s3dest.New(opts, store.ExportConfiguration{ID: "c1", Kind: store.KindS3AccessKey, Bucket: bucket, Region: "us-east-1",
			Endpoint: srv.Endpoint, AccessKeyID: key}, secret)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	destinationtest.Run(t, destinationtest.Subject{
		Dest: newDest(putKey, putSecret), Prefix: "acceptance", Reader: s3dest.NewReader(srv.Admin(), bucket),
		Unwritable: newDest(readKey, readSecret), LargeSize: 11 << 20,
	})
	// Every object went with a checksum S3 verified and kept.
	for _, key := range srv.Keys(t, bucket, "acceptance/") {
		if h := srv.Head(t, bucket, key); h.ChecksumCRC32C == nil {
			t.Errorf("%s was stored without a CRC32C checksum", key)
		}
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	ak := store.ExportConfiguration{Kind: store.KindS3AccessKey, AccessKeyID: "AKIAEXAMPLE", Region: "eu-west-1"}
	role := store.ExportConfiguration{Kind: store.KindS3AssumedRole, RoleARN: "arn:aws:iam::123456789012:role/r", Region: "eu-west-1", Endpoint: "http://127.0.0.1:9000"}
	s3Denied := &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject",
		Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}}
	stsDenied := &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: fmt.Errorf("get identity: %w",
		&smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole"}})}
	noIdentity := &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: fmt.Errorf("get identity: %w",
		&smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: errors.New("failed to refresh cached credentials, no EC2 IMDS role found")})}
	stsUnreachable := &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: fmt.Errorf("get identity: %w",
		&smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}})}
	cases := map[string]struct {
		c    store.ExportConfiguration
		err  error
		want string
	}{
		"S3 refuses":                           {ak, s3Denied, "AccessDenied: Access Denied"},
		"STS refuses":                          {role, stsDenied, "AccessDenied: sts:AssumeRole refused: not authorized to perform sts:AssumeRole"},
		"no identity of its own":               {role, noIdentity, "CredentialsError: the service could not obtain AWS credentials to assume the role with"},
		"STS unreachable":                      {role, stsUnreachable, "NetworkError: the service could not reach AWS STS to assume the role"},
		"timeout on AWS":                       {ak, &destination.TimeoutError{After: 10 * time.Second, Err: context.DeadlineExceeded}, "RequestTimeout: the request to s3.eu-west-1.amazonaws.com did not finish within 10s"},
		"no reply":                             {role, &destination.NoAnswerError{Host: "127.0.0.1:9000"}, "NetworkError: no reply from 127.0.0.1:9000: it could not be connected to, or did not answer in time"},
		"no reply before the check's deadline": {role, &destination.NoAnswerError{Err: context.DeadlineExceeded}, "NetworkError: no reply from 127.0.0.1:9000: it could not be connected to, or did not answer in time"},
		"DNS":                                  {ak, &net.DNSError{Name: "s3.nowhere.example", Err: "no such host"}, "NetworkError: cannot resolve s3.nowhere.example"},
		"something else":                       {ak, fmt.Errorf("wrapped: %w", errors.New("disk full")), "UnknownError: disk full"},
		"no message at all":                    {ak, &smithy.GenericAPIError{Code: "Forbidden"}, "Forbidden: (no message)"},
		"not S3 that answered": {ak, &destination.UnexpectedReplyError{Host: "10.0.0.1", Service: "S3", Status: 403, ContentType: "text/plain"},
			"UnexpectedResponse: 10.0.0.1 answered HTTP 403 Forbidden (text/plain), which is not a reply of S3: is the endpoint right?"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := s3dest.New(s3dest.Options{}, tc.c, "secret")
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Explain(tc.err); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	if got := s3dest.Describe(store.ExportConfiguration{Kind: store.KindS3AccessKey, AccessKeyID: "AKIA1"}); got != "S3 using AccessKey AKIA1" {
		t.Errorf("access key: %q", got)
	}
	if got := s3dest.Describe(store.ExportConfiguration{Kind: store.KindS3AssumedRole, RoleARN: "arn:aws:iam::1:role/r"}); !strings.HasSuffix(got, "AssumedRole arn:aws:iam::1:role/r") {
		t.Errorf("assumed role: %q", got)
	}
}

// TestKnownChecksumsAreSentAndVerified: an object put with the checksums its writer computed
// goes up signed with that SHA-256 and carrying that CRC-32C, which MinIO verifies: right ones
// store it, and a wrong one of either is refused (so they are what is sent, not recomputed).
func TestKnownChecksumsAreSentAndVerified(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	dest, err := s3dest.New(loopbackClient(t), store.ExportConfiguration{ID: "c1", Kind: store.KindS3AccessKey, Bucket: bucket, Region: "us-east-1",
		Endpoint: srv.Endpoint, AccessKeyID: key}, secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat("audit event\n", 10_000))
	right := destination.Checksums{SHA256: sha256.Sum256(body), CRC32C: crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))}
	put := func(name string, c destination.Checksums) error {
		return dest.Put(context.Background(), destination.Object{Key: name, Body: bytes.NewReader(body), Size: int64(len(body)),
			ContentType: "text/plain", Checksums: &c})
	}
	if err := put("right", right); err != nil {
		t.Fatalf("put with its checksums: %v", err)
	}
	if got := srv.Get(t, bucket, "right"); !bytes.Equal(got, body) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(body))
	}
	wrongCRC, wrongSHA := right, right
	wrongCRC.CRC32C++
	wrongSHA.SHA256[0]++
	for name, c := range map[string]destination.Checksums{"wrong-crc32c": wrongCRC, "wrong-sha256": wrongSHA} {
		if err := put(name, c); err == nil {
			t.Errorf("%s: the put succeeded", name)
		}
	}
	if keys := srv.Keys(t, bucket, "wrong"); len(keys) > 0 {
		t.Errorf("stored despite a wrong checksum: %v", keys)
	}
}
