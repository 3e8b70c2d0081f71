package exporter

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

type checkerFixture struct {
	store   *store.Store
	checker *Checker
}

func newChecker(t *testing.T, awsCfg aws.Config, cfg CheckerConfig, clientsCfg ClientsConfig) checkerFixture {
	t.Helper()
	st := storetest.New(t)
	clientsCfg.AWS = awsCfg
	clientsCfg.Transport = LoopbackTransport(t)
	c := NewChecker(cfg, st, NewClients(clientsCfg))
	ctx, cancel := context.WithCancel(context.Background())
	done := c.Start(ctx)
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return checkerFixture{st, c}
}

func (f checkerFixture) create(t *testing.T, c store.ExportConfiguration, secret string) store.ExportConfiguration {
	t.Helper()
	c.Interval, c.Enabled = store.EveryHour, true
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	created, err := f.store.CreateConfiguration(t.Context(), c, secret, store.Principal{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

func (f checkerFixture) checkNow(t *testing.T, id string) store.ExportConfiguration {
	t.Helper()
	c, err := f.checker.CheckNow(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPutOnlyUserPasses(t *testing.T) {
	srv := s3test.Require(t)
	f := newChecker(t, s3test.ServiceAWS(t, "unused", "unused-secret", ""), CheckerConfig{}, ClientsConfig{})
	c := f.create(t, store.ExportConfiguration{Kind: store.KindS3AccessKey, Bucket: srv.Bucket, Path: "tenant=acme/audit",
		Endpoint: srv.Endpoint, AccessKeyID: srv.PutOnlyAccessKey}, srv.PutOnlySecret)
	before := time.Now().Add(-time.Second)
	got := f.checkNow(t, c.ID)
	if got.ConnectionStatus != store.ConnectionSuccess || got.ConnectionCheckedAt.Before(before) || got.CheckFailures != 0 {
		t.Fatalf("check = %+v", got)
	}
	if got.UpdatedAt != c.UpdatedAt || got.UpdatedBy != c.UpdatedBy {
		t.Errorf("a check changed updatedAt/updatedBy: %+v", got)
	}
	keys := srv.Keys(t, srv.Bucket, "tenant=acme/audit/"+VerifyKeyPrefix)
	if len(keys) == 0 {
		t.Fatal("no verification object in the bucket")
	}
	body := srv.Get(t, srv.Bucket, keys[len(keys)-1])
	if !strings.Contains(string(body), c.ID) {
		t.Errorf("verification object = %q, want it to name the configuration", body)
	}
	if srv.Head(t, srv.Bucket, keys[len(keys)-1]).ChecksumCRC32C == nil {
		t.Error("the verification object was sent without a CRC32C checksum")
	}
}

func TestFailuresNameTheirCause(t *testing.T) {
	srv := s3test.Require(t)
	f := newChecker(t, s3test.ServiceAWS(t, "unused", "unused-secret", ""), CheckerConfig{}, ClientsConfig{})
	bucket := srv.NewBucket(t)
	readOnlyKey, readOnlySecret := srv.NewUser(t, s3test.ReadOnlyPolicy(bucket))
	putKey, putSecret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	// A server that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()

	cases := map[string]struct {
		bucket, endpoint, key, secret string
		want                          string
	}{
		"wrong secret":       {bucket, srv.Endpoint, putKey, "not-the-right-secret", "SignatureDoesNotMatch: "},
		"unknown access key": {bucket, srv.Endpoint, "NOSUCHACCESSKEY", putSecret, "InvalidAccessKeyId: "},
		"missing bucket":     {"no-such-bucket-here", srv.Endpoint, srv.RootUser, srv.RootPassword, "NoSuchBucket: "},
		"user without put":   {bucket, srv.Endpoint, readOnlyKey, readOnlySecret, "AccessDenied: "},
		// One text for both, so checks cannot scan ports.
		"connection refused":     {bucket, "http://" + closedAddr, putKey, putSecret, "NetworkError: no reply from " + closedAddr + ": it could not be connected to, or did not answer in time"},
		"endpoint never answers": {bucket, "http://" + silent.Addr().String(), putKey, putSecret, "NetworkError: no reply from " + silent.Addr().String() + ": it could not be connected to, or did not answer in time"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := f.create(t, store.ExportConfiguration{Kind: store.KindS3AccessKey, Bucket: tc.bucket, Endpoint: tc.endpoint, AccessKeyID: tc.key}, tc.secret)
			start := time.Now()
			got := f.checkNow(t, c.ID)
			elapsed := time.Since(start)
			prefix := "Error testing access to S3 using AccessKey " + tc.key + " - "
			if !strings.HasPrefix(got.ConnectionStatus, prefix+tc.want) {
				t.Fatalf("status = %q\nwant prefix %q", got.ConnectionStatus, prefix+tc.want)
			}
			if strings.Contains(got.ConnectionStatus, tc.secret) || strings.Contains(got.ConnectionStatus, "RequestID") {
				t.Errorf("status leaks a secret or SDK internals: %q", got.ConnectionStatus)
			}
			if got.CheckFailures != 1 || got.ConnectionCheckedAt.IsZero() {
				t.Errorf("failure not recorded: %+v", got)
			}
			if elapsed > 15*time.Second {
				t.Errorf("check took %v, more than 15s", elapsed)
			}
		})
	}
}

func TestAssumedRoleThroughSTS(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	serviceKey, serviceSecret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	proxy := srv.NewSTSProxy(t, 0)
	f := newChecker(t, s3test.ServiceAWS(t, serviceKey, serviceSecret, proxy.URL), CheckerConfig{}, ClientsConfig{})
	const roleARN = "arn:aws:iam::123456789012:role/customer-audit-export"
	c := f.create(t, store.ExportConfiguration{Kind: store.KindS3AssumedRole, Bucket: bucket, Path: "audit", Endpoint: srv.Endpoint, RoleARN: roleARN}, "")

	got := f.checkNow(t, c.ID)
	if got.ConnectionStatus != store.ConnectionSuccess {
		t.Fatalf("status = %q", got.ConnectionStatus)
	}
	if keys := srv.Keys(t, bucket, "audit/"+VerifyKeyPrefix); len(keys) != 1 {
		t.Fatalf("verification objects: %v", keys)
	}
	calls := proxy.Calls()
	if len(calls) != 1 {
		t.Fatalf("AssumeRole calls = %d, want 1", len(calls))
	}
	if calls[0].RoleArn != roleARN || calls[0].ExternalID != c.ID || calls[0].RoleSessionName != "auditexport-"+c.ID || calls[0].DurationSeconds != "3600" {
		t.Fatalf("AssumeRole sent %+v", calls[0])
	}

	// The credentials are cached: a second check does not assume the role again.
	time.Sleep(1100 * time.Millisecond) // a new verification key (unix seconds)
	if got := f.checkNow(t, c.ID); got.ConnectionStatus != store.ConnectionSuccess {
		t.Fatalf("second check: %q", got.ConnectionStatus)
	}
	if n := len(proxy.Calls()); n != 1 {
		t.Fatalf("AssumeRole calls after two checks = %d, want 1", n)
	}

	t.Run("the service's identity is refused", func(t *testing.T) {
		f := newChecker(t, s3test.ServiceAWS(t, serviceKey, "wrong-service-secret", proxy.URL), CheckerConfig{}, ClientsConfig{})
		c := f.create(t, store.ExportConfiguration{Kind: store.KindS3AssumedRole, Bucket: bucket, Endpoint: srv.Endpoint, RoleARN: roleARN}, "")
		got := f.checkNow(t, c.ID)
		want := "Error testing access to S3 using AssumedRole " + roleARN + " - AccessDenied: sts:AssumeRole refused: The request signature"
		if !strings.HasPrefix(got.ConnectionStatus, want) {
			t.Fatalf("status = %q\nwant prefix %q", got.ConnectionStatus, want)
		}
	})
}

func TestAssumedRoleCredentialsAreRefreshed(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	serviceKey, serviceSecret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	proxy := srv.NewSTSProxy(t, 3*time.Second) // credentials said to expire after 3s
	f := newChecker(t, s3test.ServiceAWS(t, serviceKey, serviceSecret, proxy.URL), CheckerConfig{}, ClientsConfig{RefreshBefore: time.Second})
	c := f.create(t, store.ExportConfiguration{Kind: store.KindS3AssumedRole, Bucket: bucket, Endpoint: srv.Endpoint,
		RoleARN: "arn:aws:iam::123456789012:role/r"}, "")
	if got := f.checkNow(t, c.ID); got.ConnectionStatus != store.ConnectionSuccess {
		t.Fatalf("first check: %q", got.ConnectionStatus)
	}
	if got := f.checkNow(t, c.ID); got.ConnectionStatus != store.ConnectionSuccess || len(proxy.Calls()) != 1 {
		t.Fatalf("check with fresh credentials: %q, %d AssumeRole calls", got.ConnectionStatus, len(proxy.Calls()))
	}
	time.Sleep(3500 * time.Millisecond) // past the expiry
	if got := f.checkNow(t, c.ID); got.ConnectionStatus != store.ConnectionSuccess {
		t.Fatalf("check after expiry: %q", got.ConnectionStatus)
	}
	if n := len(proxy.Calls()); n != 2 {
		t.Fatalf("AssumeRole calls = %d, want 2 (one refresh after expiry)", n)
	}
}

func TestBackgroundRecheckTurnsSuccessWhenFixed(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, "") // no permission yet
	f := newChecker(t, s3test.ServiceAWS(t, "unused", "unused-secret", ""),
		CheckerConfig{RetryMin: 300 * time.Millisecond, RetryMax: time.Second}, ClientsConfig{})
	c := f.create(t, store.ExportConfiguration{Kind: store.KindS3AccessKey, Bucket: bucket, Endpoint: srv.Endpoint, AccessKeyID: key}, secret)

	// The background loop checks the new configuration without being asked.
	failing := waitFor(t, f.store, c.ID, 10*time.Second, func(c store.ExportConfiguration) bool { return c.CheckFailures >= 2 })
	if !strings.Contains(failing.ConnectionStatus, "AccessDenied") {
		t.Fatalf("status = %q", failing.ConnectionStatus)
	}
	srv.AttachPolicy(t, key, s3test.PutOnlyPolicy(bucket)) // the customer fixes the destination
	fixed := waitFor(t, f.store, c.ID, 15*time.Second, func(c store.ExportConfiguration) bool { return c.ConnectionStatus == store.ConnectionSuccess })
	if fixed.CheckFailures != 0 {
		t.Fatalf("fixed = %+v", fixed)
	}
}

func waitFor(t *testing.T, st *store.Store, id string, timeout time.Duration, cond func(store.ExportConfiguration) bool) store.ExportConfiguration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := st.Configuration(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %+v", timeout, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The check writes with the configuration's server-side encryption, so a KMS key the service may
// not use shows in connectionStatus before any export.
func TestCheckUsesServerSideEncryption(t *testing.T) {
	srv := s3test.Require(t)
	f := newChecker(t, s3test.ServiceAWS(t, "unused", "unused-secret", ""), CheckerConfig{}, ClientsConfig{})
	for _, c := range []struct {
		name, sse, kmsKey, status string
	}{
		{"sse-s3", store.SSEAES256, "", store.ConnectionSuccess},
		{"sse-kms", store.SSEKMS, srv.KMSKey, store.ConnectionSuccess},
		{"unknown kms key", store.SSEKMS, "no-such-key", "Error testing access to S3 using AccessKey " + srv.PutOnlyAccessKey + " - kms:KeyNotFound: "},
	} {
		path := "sse/" + strings.ReplaceAll(c.name, " ", "-")
		cfg := f.create(t, store.ExportConfiguration{Kind: store.KindS3AccessKey, Bucket: srv.Bucket, Path: path, Endpoint: srv.Endpoint,
			AccessKeyID: srv.PutOnlyAccessKey, ServerSideEncryption: c.sse, SSEKMSKeyID: c.kmsKey}, srv.PutOnlySecret)
		got := f.checkNow(t, cfg.ID)
		if !strings.HasPrefix(got.ConnectionStatus, c.status) {
			t.Errorf("%s: status %q, want %q", c.name, got.ConnectionStatus, c.status)
			continue
		}
		if c.status != store.ConnectionSuccess {
			continue
		}
		keys := srv.Keys(t, srv.Bucket, path+"/")
		if len(keys) != 1 {
			t.Fatalf("%s: verification objects %v", c.name, keys)
		}
		head := srv.Head(t, srv.Bucket, keys[0])
		if string(head.ServerSideEncryption) != c.sse || !strings.Contains(aws.ToString(head.SSEKMSKeyId), c.kmsKey) {
			t.Errorf("%s: verification object stored with %q %q", c.name, head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId))
		}
	}
}
