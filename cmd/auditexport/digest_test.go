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
