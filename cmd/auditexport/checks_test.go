package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

type checkedConfig struct {
	ID                  string
	ConnectionStatus    string
	ConnectionCheckedAt *string
}

// TestConnectivityChecksThroughTheServer drives the real binary against the real MinIO: checks
// on create, update, enable and verify, an assumed role through STS with the configuration id as
// ExternalId, and a failing destination that turns SUCCESS in the background once fixed.
func TestConnectivityChecksThroughTheServer(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	serviceKey, serviceSecret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	proxy := srv.NewSTSProxy(t, 0)
	server := testserver.Start(t, testserver.Options{
		Env: []string{
			"AWS_ACCESS_KEY_ID=" + serviceKey, "AWS_SECRET_ACCESS_KEY=" + serviceSecret, "AWS_REGION=us-east-1",
			"AWS_ENDPOINT_URL_STS=" + proxy.URL, "AWS_MAX_ATTEMPTS=3",
		},
		Args: []string{"--check-retry-min", "300ms", "--check-retry-max", "1s"},
	})
	admin := server.AdminToken
	createAK := func(key, secret string) checkedConfig {
		var out struct{ CreateS3AccessKeyExportConfiguration checkedConfig }
		server.MustGraphQL(admin, `mutation($d: S3AccessKeyExportConfigurationInput!) { createS3AccessKeyExportConfiguration(data: $d) { id connectionStatus connectionCheckedAt } }`,
			map[string]any{"d": map[string]any{"interval": "EVERY_HOUR", "bucket": bucket, "path": "audit", "region": "us-east-1",
				"accessKeyId": key, "secretAccessKey": secret, "endpoint": srv.Endpoint}}, &out)
		return out.CreateS3AccessKeyExportConfiguration
	}
	get := func(id string) checkedConfig {
		var out struct{ GetExportConfiguration checkedConfig }
		server.MustGraphQL(admin, `query($id: ID!) { getExportConfiguration(id: $id) { id connectionStatus connectionCheckedAt } }`, map[string]any{"id": id}, &out)
		return out.GetExportConfiguration
	}

	putKey, putSecret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	good := createAK(putKey, putSecret)
	if good.ConnectionStatus != "SUCCESS" || good.ConnectionCheckedAt == nil {
		t.Fatalf("create with a PutObject-only user: %+v", good)
	}

	wrongSecret := "definitely-not-the-secret"
	bad := createAK(putKey, wrongSecret)
	if !strings.HasPrefix(bad.ConnectionStatus, "Error testing access to S3 using AccessKey "+putKey+" - SignatureDoesNotMatch: ") {
		t.Fatalf("create with a wrong secret: %+v", bad)
	}
	if get(bad.ID).ID != bad.ID {
		t.Fatal("a configuration whose check failed was not stored")
	}

	t.Run("update with the right secret checks again", func(t *testing.T) {
		var out struct{ UpdateS3AccessKeyExportConfiguration checkedConfig }
		server.MustGraphQL(admin, `mutation($id: ID!, $s: String!) { updateS3AccessKeyExportConfiguration(data: { id: $id secretAccessKey: $s }) { id connectionStatus } }`,
			map[string]any{"id": bad.ID, "s": putSecret}, &out)
		if out.UpdateS3AccessKeyExportConfiguration.ConnectionStatus != "SUCCESS" {
			t.Fatalf("after update: %+v", out)
		}
	})

	t.Run("assumed role through STS", func(t *testing.T) {
		const roleARN = "arn:aws:iam::123456789012:role/customer-export"
		var out struct{ CreateS3AssumedRoleExportConfiguration checkedConfig }
		server.MustGraphQL(admin, `mutation($d: S3AssumedRoleExportConfigurationInput!) { createS3AssumedRoleExportConfiguration(data: $d) { id connectionStatus } }`,
			map[string]any{"d": map[string]any{"interval": "EVERY_HOUR", "bucket": bucket, "region": "us-east-1", "roleArn": roleARN, "endpoint": srv.Endpoint}}, &out)
		role := out.CreateS3AssumedRoleExportConfiguration
		if role.ConnectionStatus != "SUCCESS" {
			t.Fatalf("assumed role: %+v", role)
		}
		calls := proxy.Calls()
		if len(calls) != 1 || calls[0].ExternalID != role.ID || calls[0].RoleArn != roleARN {
			t.Fatalf("AssumeRole calls: %+v (configuration %s)", calls, role.ID)
		}
	})

	t.Run("background re-check turns SUCCESS without an API call", func(t *testing.T) {
		key, secret := srv.NewUser(t, "")
		c := createAK(key, secret)
		if !strings.Contains(c.ConnectionStatus, "AccessDenied") {
			t.Fatalf("user without PutObject: %+v", c)
		}
		srv.AttachPolicy(t, key, s3test.PutOnlyPolicy(bucket))
		deadline := time.Now().Add(20 * time.Second)
		for get(c.ID).ConnectionStatus != "SUCCESS" {
			if time.Now().After(deadline) {
				t.Fatalf("still %q after the policy was attached", get(c.ID).ConnectionStatus)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("verify and enable check at once", func(t *testing.T) {
		before := get(good.ID)
		time.Sleep(1100 * time.Millisecond)
		var v struct{ VerifyExportConfiguration checkedConfig }
		server.MustGraphQL(admin, `mutation($id: ID!) { verifyExportConfiguration(id: $id) { id connectionStatus connectionCheckedAt } }`, map[string]any{"id": good.ID}, &v)
		if v.VerifyExportConfiguration.ConnectionStatus != "SUCCESS" || *v.VerifyExportConfiguration.ConnectionCheckedAt == *before.ConnectionCheckedAt {
			t.Fatalf("verify: %+v (before %+v)", v, before)
		}
		server.MustGraphQL(admin, `mutation($id: ID!) { disableExportConfiguration(id: $id) { id } }`, map[string]any{"id": good.ID}, nil)
		var e struct{ EnableExportConfiguration checkedConfig }
		time.Sleep(1100 * time.Millisecond)
		server.MustGraphQL(admin, `mutation($id: ID!) { enableExportConfiguration(id: $id) { id connectionStatus connectionCheckedAt } }`, map[string]any{"id": good.ID}, &e)
		if *e.EnableExportConfiguration.ConnectionCheckedAt == *v.VerifyExportConfiguration.ConnectionCheckedAt {
			t.Fatalf("enable did not check: %+v", e)
		}
	})

	server.Stop()
	logs := server.Logs()
	for _, secret := range []string{putSecret, wrongSecret, serviceSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain a secret")
		}
	}
	// good was checked on create, verify and enable, and more in the background: one object,
	// overwritten, named by each configuration's id.
	keys := srv.Keys(t, bucket, "audit/auditexport-verify-")
	if !slices.Contains(keys, "audit/auditexport-verify-"+good.ID) {
		t.Errorf("no verification object of %s among %v", good.ID, keys)
	}
	for _, k := range keys {
		if _, err := uuid.Parse(strings.TrimPrefix(k, "audit/auditexport-verify-")); err != nil {
			t.Errorf("verification object %s is not named by a configuration id", k)
		}
	}
}
