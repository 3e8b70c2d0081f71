package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// A customer verifies an export with the CLI and their own read credentials: it passes as
// written, and an altered object, an added one and a removed digest are each reported.
func TestDigestVerify(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	server := testserver.Start(t, testserver.Options{Env: []string{"AUDITEXPORT_EXPORT_MAX_FILE_BYTES=102400"}})
	cli := newCLI(t, server)
	id := server.CreateConfiguration(map[string]any{"interval": "EVERY_24_HOURS", "bucket": bucket, "path": "audit", "region": "us-east-1",
		"endpoint": srv.Endpoint, "accessKeyId": key, "secretAccessKey": secret})
	for round := range 2 {
		if res := cli.run(string(eventtest.NDJSON(round*1000, 300, time.Date(2026, 11, 21, 9+round, 0, 0, 0, time.UTC), 10*time.Second)), nil, "events", "send", "-"); res.code != 0 {
			t.Fatalf("events send: %d %s", res.code, res.stderr)
		}
		var job exportJob
		cli.json(&job, "exportConfig", "run", id)
		if job.Status != "SUCCEEDED" || job.ObjectCount < 2 {
			t.Fatalf("run: %+v", job)
		}
	}
	pem := writeFile(t, "digest-public-key.pem", cli.ok("digest", "public-key"))
	// The customer's reader: the MinIO root user stands in for an identity with List and Get.
	reader := []string{"AWS_ACCESS_KEY_ID=" + srv.RootUser, "AWS_SECRET_ACCESS_KEY=" + srv.RootPassword, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	verify := func() cliResult {
		return cli.run("", reader, "digest", "verify", "--bucket", bucket, "--path", "audit", "--endpoint", srv.Endpoint, "--public-key", pem)
	}
	if res := verify(); res.code != 0 || !strings.Contains(res.stdout, "2 digests and") || !strings.Contains(res.stdout, ", 0 problems") {
		t.Fatalf("verify of an untouched export: %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	keys := srv.Keys(t, bucket, "audit/year=")
	digests := srv.Keys(t, bucket, "audit/_auditexport_digests/")
	put := func(key, body string) {
		t.Helper()
		if _, err := srv.Admin().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	var altered string // an object of the second job, whose digest stays
	for _, k := range keys {
		if strings.Contains(k, "/hour=10/") {
			altered = k
			break
		}
	}
	put(altered, "PAR1 not what was exported")
	put("audit/year=2026/month=11/day=21/hour=09/00000000000000000001-00000000000000000002-"+id+"-snappy.parquet", "added")
	if _, err := srv.Admin().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(digests[0])}); err != nil {
		t.Fatal(err)
	}
	res := verify()
	for _, want := range []string{altered + ": its content differs", "-snappy.parquet: in no digest", "links to " + digests[0] + ", which is not in the bucket"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("verify output lacks %q", want)
		}
	}
	if res.code != 1 || !strings.Contains(res.stderr, "did not verify") {
		t.Fatalf("verify of a tampered export: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := cli.run("", reader, "digest", "verify", "--bucket", bucket); res.code != 2 || !strings.Contains(res.stderr, "--public-key") {
		t.Fatalf("verify without a key: %d %s", res.code, res.stderr)
	}
}

// Without a region or credentials, digest verify says what is missing and which flag or
// variable supplies it, in its own words: no SDK endpoint-rule error, no IMDS warning. The
// metadata service is tried for real, on a closed loopback port.
func TestDigestVerifySaysWhatIsMissing(t *testing.T) {
	cli := newCLI(t, &testserver.Server{URL: "http://127.0.0.1:9", AdminToken: "unused-token-value"})
	pem := writeFile(t, "key.pem", "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n")
	bare := []string{"AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_PROFILE=", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_WEB_IDENTITY_TOKEN_FILE=",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_EC2_METADATA_DISABLED=",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9"}
	for name, c := range map[string]struct {
		env  []string
		want []string
	}{
		"no region":      {bare, []string{"no AWS region", "--region", "AWS_REGION"}},
		"no credentials": {append(bare, "AWS_REGION=us-east-1"), []string{"no AWS credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"}},
	} {
		t.Run(name, func(t *testing.T) {
			res := cli.run("", c.env, "digest", "verify", "--bucket", "audit-bucket", "--public-key", pem)
			if res.code != 2 || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want 2 and one line", res.code, res.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q lacks %q", res.stderr, w)
				}
			}
			for _, sdk := range []string{"IMDS", "endpoint rule", "operation error", "SDK"} {
				if strings.Contains(res.stdout+res.stderr, sdk) {
					t.Errorf("the SDK's words (%q) in %q", sdk, res.stdout+res.stderr)
				}
			}
		})
	}
}
