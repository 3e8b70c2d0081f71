package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditexport/auditexport/internal/testserver"
)

const allFields = `id interval enabled connectionStatus connectionCheckedAt createdBy createdAt updatedBy updatedAt
	endpointConfiguration { __typename
		... on S3AccessKeyEndpointConfiguration { bucket path region accessKeyId endpoint }
		... on S3AssumedRoleEndpointConfiguration { bucket path region roleArn externalId endpoint } }`

// TestConfigurationsSurviveRestart runs the real binary: configurations created over HTTP are all
// there, unchanged, after a SIGTERM and a restart; a second server on the same data directory
// fails at once; no secret reaches the data file or the logs.
func TestConfigurationsSurviveRestart(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	first := testserver.Start(t, testserver.Options{DataDir: dataDir})
	if first.AdminToken == "" {
		t.Fatal("no admin token was generated")
	}
	for name, want := range map[string]os.FileMode{"": 0o700, "admin-token": 0o600, "master.key": 0o600, "auditexport.db": 0o600} {
		info, err := os.Stat(filepath.Join(dataDir, name))
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s/%s: mode %v (%v), want %v", dataDir, name, info.Mode().Perm(), err, want)
		}
	}

	secrets := []string{"first/Secret/Key/0123456789abcdef", "second+Secret+Key+fedcba9876543210"}
	var ids []string
	for i, secret := range secrets {
		ids = append(ids, first.CreateConfiguration(map[string]any{"interval": []string{"EVERY_HOUR", "EVERY_24_HOURS"}[i],
			"bucket": "audit-bucket", "path": "p" + string(rune('a'+i)), "region": "us-east-1",
			"accessKeyId": "AKIAEXAMPLE" + string(rune('A'+i)), "secretAccessKey": secret}))
	}
	var role struct{ CreateS3AssumedRoleExportConfiguration struct{ ID string } }
	first.MustGraphQL(first.AdminToken, `mutation { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_5_MINUTES bucket: "role-bucket" region: "eu-west-1" roleArn: "arn:aws:iam::123456789012:role/auditexport" endpoint: "http://127.0.0.1:9000" }) { id } }`, nil, &role)
	first.MustGraphQL(first.AdminToken, `mutation($id: ID!) { disableExportConfiguration(id: $id) { id } }`, map[string]any{"id": ids[1]}, nil)
	var tok struct{ CreateAPIToken string }
	first.MustGraphQL(first.AdminToken, `mutation { createApiToken(name: "ci", permissions: [AUDIT]) }`, nil, &tok)
	first.MustGraphQL(tok.CreateAPIToken, `mutation($id: ID!) { updateS3AccessKeyExportConfiguration(data: { id: $id interval: EVERY_6_HOURS }) { id } }`, map[string]any{"id": ids[0]}, nil)
	before := first.GraphQL(first.AdminToken, `{ getAllExportConfigurations { `+allFields+` } }`, nil)
	if n := strings.Count(before.Body, `"id"`); n != 3 {
		t.Fatalf("want 3 configurations before the restart, got %d: %s", n, before.Body)
	}

	t.Run("a second server on the same data directory fails at once", func(t *testing.T) {
		start := time.Now()
		second, err := testserver.Launch(t, testserver.Options{DataDir: dataDir})
		if err == nil {
			t.Fatalf("second server started on %s", second.URL)
		}
		if !strings.Contains(second.Logs(), "another auditexport") {
			t.Errorf("no clear message: %s", second.Logs())
		}
		if elapsed := time.Since(start); elapsed > 10*time.Second {
			t.Errorf("second server took %v to fail", elapsed)
		}
	})

	first.Stop()
	if !strings.Contains(first.Logs(), `"msg":"stopped"`) {
		t.Errorf("no clean-stop log line: %s", first.Logs())
	}

	second := testserver.Start(t, testserver.Options{DataDir: dataDir})
	after := second.GraphQL(first.AdminToken, `{ getAllExportConfigurations { `+allFields+` } }`, nil)
	if after.Status != 200 || !bytes.Equal(after.Data, before.Data) {
		t.Fatalf("configurations changed across the restart:\nbefore %s\nafter  %s", before.Data, after.Data)
	}
	if resp := second.GraphQL(tok.CreateAPIToken, `{ getAllExportConfigurations { id } }`, nil); resp.Status != 200 {
		t.Fatalf("the API token did not survive the restart: %s", resp.Body)
	}
	second.Stop()

	db, err := os.ReadFile(filepath.Join(dataDir, "auditexport.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(db, []byte("AKIAEXAMPLEA")) {
		t.Fatal("the data file lacks the access key id: the secret scan would prove nothing")
	}
	logs := first.Logs() + second.Logs()
	for _, secret := range append(secrets, tok.CreateAPIToken, first.AdminToken) {
		if bytes.Contains(db, []byte(secret)) {
			t.Errorf("the data file contains %.12q… in plaintext", secret)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %.12q…", secret)
		}
	}
}

func TestEnvironmentCredentials(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	dataDir := t.TempDir()
	env := []string{"AUDITEXPORT_ADMIN_TOKEN=operator-chosen-admin-token", "AUDITEXPORT_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key)}
	s := testserver.Start(t, testserver.Options{DataDir: dataDir, Env: env})
	s.MustGraphQL("operator-chosen-admin-token", `{ getAllExportConfigurations { id } }`, nil, nil)
	for _, name := range []string{"admin-token", "master.key"} {
		if _, err := os.Stat(filepath.Join(dataDir, name)); !os.IsNotExist(err) {
			t.Errorf("%s was written although the environment provided it", name)
		}
	}
	s.Stop()

	other := make([]byte, 32)
	rand.Read(other)
	bad := map[string][]string{
		"another master key":       {"AUDITEXPORT_MASTER_KEY=" + base64.StdEncoding.EncodeToString(other)},
		"a master key too short":   {"AUDITEXPORT_MASTER_KEY=" + base64.StdEncoding.EncodeToString(other[:16])},
		"an admin token too short": {"AUDITEXPORT_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key), "AUDITEXPORT_ADMIN_TOKEN=short"},
	}
	wants := map[string]string{
		"another master key":       "master key does not match",
		"a master key too short":   "base64 encoding of 32 bytes",
		"an admin token too short": "at least 16 characters",
	}
	for name, env := range bad {
		t.Run(name, func(t *testing.T) {
			s, err := testserver.Launch(t, testserver.Options{DataDir: dataDir, Env: env})
			if err == nil {
				t.Fatal("server started")
			}
			if !strings.Contains(s.Logs(), wants[name]) {
				t.Fatalf("want %q in %s", wants[name], s.Logs())
			}
		})
	}
}

func TestSIGINTStopsCleanly(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	s.Signal(syscall.SIGINT)
	if err := s.Wait(30 * time.Second); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, s.Logs())
	}
	var sawStop bool
	for _, line := range strings.Split(strings.TrimSpace(s.Logs()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		sawStop = sawStop || entry["msg"] == "stopped"
	}
	if !sawStop {
		t.Fatal("no stopped line")
	}
}

// With --allowed-endpoints (here from its environment variable) the server refuses endpoints
// outside the list, and refuses to start on a malformed list.
func TestAllowedEndpoints(t *testing.T) {
	// Port 9 on loopback: the create's connectivity check fails at once, without leaving the host.
	s := testserver.Start(t, testserver.Options{Env: []string{"AUDITEXPORT_ALLOWED_ENDPOINTS=127.0.0.1:9"}})
	create := `mutation($e: String!) { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" endpoint: $e }) { id } }`
	resp := s.GraphQL(s.AdminToken, create, map[string]any{"e": "http://169.254.169.254"})
	if len(resp.Errors) != 1 || !strings.Contains(resp.Body, "BAD_USER_INPUT") || !strings.Contains(resp.Body, "169.254.169.254 is not among this server's allowed endpoints") {
		t.Fatalf("endpoint outside the list: %s", resp.Body)
	}
	if resp := s.GraphQL(s.AdminToken, create, map[string]any{"e": "http://127.0.0.1:9"}); len(resp.Errors) != 0 {
		t.Fatalf("endpoint in the list: %s", resp.Body)
	}
	s.Stop()

	bad, err := testserver.Launch(t, testserver.Options{Env: []string{"AUDITEXPORT_ALLOWED_ENDPOINTS=http://minio:9000"}})
	if err == nil || !strings.Contains(bad.Logs(), `AUDITEXPORT_ALLOWED_ENDPOINTS="http://minio:9000" is not valid`) {
		t.Fatalf("a malformed list: %v\n%s", err, bad.Logs())
	}
	bad, err = testserver.Launch(t, testserver.Options{Args: []string{"--allowed-endpoints", "http://minio:9000"}})
	if err == nil || !strings.Contains(bad.Logs(), `"http://minio:9000" for "--allowed-endpoints"`) {
		t.Fatalf("a malformed list: %v\n%s", err, bad.Logs())
	}
}

// A malformed --trust-principal (here from its environment variable) stops the server at start,
// rather than every trust policy it shows naming it.
func TestTrustPrincipalIsChecked(t *testing.T) {
	bad, err := testserver.Launch(t, testserver.Options{Env: []string{"AUDITEXPORT_TRUST_PRINCIPAL=arn:aws:s3:::not-a-principal"}})
	if err == nil || !strings.Contains(bad.Logs(), `AUDITEXPORT_TRUST_PRINCIPAL="arn:aws:s3:::not-a-principal" is not valid`) {
		t.Fatalf("a malformed principal: %v\n%s", err, bad.Logs())
	}
}
