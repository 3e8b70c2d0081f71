package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

type applyOutput struct {
	DryRun  bool       `json:"dryRun"`
	Actions []planStep `json:"actions"`
}

func (a applyOutput) summary() string {
	var parts []string
	for _, s := range a.Actions {
		parts = append(parts, s.Action+":"+s.Name+strings.Join(append([]string{""}, s.Changes...), "+"))
	}
	return strings.Join(parts, " ")
}

func TestCLIApply(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	server := testserver.Start(t, testserver.Options{})
	cli := newCLI(t, server)
	env := []string{"ACME_SECRET=" + secret}
	apply := func(content string, args ...string) (applyOutput, cliResult) {
		t.Helper()
		file := writeFile(t, "exports.yaml", content)
		res := cli.run("", env, append([]string{"exportConfig", "apply", "-f", file, "-o", "json"}, args...)...)
		var out applyOutput
		if res.code == 0 {
			if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
				t.Fatalf("apply output: %v\n%s", err, res.stdout)
			}
		}
		return out, res
	}
	v1 := `exportConfigurations:
  - name: acme-prod
    type: s3:accessKey
    interval: EVERY_HOUR
    bucket: ` + bucket + `
    path: audit
    region: us-east-1
    endpoint: ` + srv.Endpoint + `
    accessKeyId: ` + key + `
    secretAccessKeyEnv: ACME_SECRET
  - name: acme-role
    type: s3:assumedRole
    interval: EVERY_24_HOURS
    enabled: false
    bucket: ` + bucket + `
    region: us-east-1
    roleArn: arn:aws:iam::123456789012:role/export
`
	// A configuration made by hand, without a name, which apply must never touch.
	handMade := writeFile(t, "hand.json", `{"interval":"EVERY_HOUR","bucket":"`+bucket+`","region":"us-east-1","roleArn":"arn:aws:iam::123456789012:role/hand"}`)
	cli.ok("exportConfig", "create:s3:assumedRole", handMade)

	dry, res := apply(v1, "--dry-run")
	if res.code != 0 || !dry.DryRun || dry.summary() != "create:acme-prod create:acme-role disable:acme-role" || !strings.Contains(res.stderr, "nothing was changed") {
		t.Fatalf("dry run: %d %s %s", res.code, dry.summary(), res.stderr)
	}
	var list []exportConfig
	cli.json(&list, "exportConfig", "list")
	if len(list) != 1 {
		t.Fatalf("the dry run changed the server: %d configurations", len(list))
	}

	created, res := apply(v1, "--wait", "30s")
	if res.code != 0 || created.summary() != "create:acme-prod create:acme-role disable:acme-role" || created.Actions[0].ID == "" {
		t.Fatalf("create: %d %s %s", res.code, created.summary(), res.stderr)
	}
	var prod exportConfig
	cli.json(&prod, "exportConfig", "get", "acme-prod")
	if prod.ConnectionStatus != "SUCCESS" || prod.Interval != "EVERY_HOUR" {
		t.Fatalf("acme-prod after apply --wait: %+v", prod)
	}

	again, res := apply(v1)
	if res.code != 0 || again.summary() != "unchanged:acme-prod unchanged:acme-role" {
		t.Fatalf("second apply must change nothing: %d %s %s", res.code, again.summary(), res.stderr)
	}

	v2 := strings.Replace(strings.Replace(v1, "interval: EVERY_HOUR", "interval: EVERY_6_HOURS", 1), "    enabled: false\n", "", 1)
	v2 = strings.Replace(v2, "    path: audit\n", "    path: audit/v2\n    serverSideEncryption: AES256\n", 1)
	updated, res := apply(v2)
	if res.code != 0 || updated.summary() != "update:acme-prod+interval+path+serverSideEncryption enable:acme-role" {
		t.Fatalf("update: %d %s %s", res.code, updated.summary(), res.stderr)
	}
	cli.json(&prod, "exportConfig", "get", "acme-prod")
	if prod.Interval != "EVERY_6_HOURS" || str(prod.EndpointConfiguration.Path) != "audit/v2" || prod.ID != created.Actions[0].ID ||
		str(prod.EndpointConfiguration.ServerSideEncryption) != "AES256" {
		t.Fatalf("acme-prod after update: %+v", prod)
	}

	onlyProd := v2[:strings.Index(v2, "  - name: acme-role")]
	kept, res := apply(onlyProd)
	if res.code != 0 || kept.summary() != "unchanged:acme-prod" {
		t.Fatalf("without --prune nothing is deleted: %s", kept.summary())
	}
	pruned, res := apply(onlyProd, "--prune")
	if res.code != 0 || pruned.summary() != "unchanged:acme-prod delete:acme-role" {
		t.Fatalf("prune: %d %s %s", res.code, pruned.summary(), res.stderr)
	}
	cli.json(&list, "exportConfig", "list")
	if len(list) != 2 { // acme-prod and the unnamed hand-made one
		t.Fatalf("after prune: %+v", list)
	}

	switched := strings.Replace(onlyProd, "type: s3:accessKey", "type: s3:assumedRole", 1)
	switched = strings.Replace(strings.Replace(switched, "    accessKeyId: "+key+"\n", "", 1), "    secretAccessKeyEnv: ACME_SECRET\n", "    roleArn: arn:aws:iam::123456789012:role/x\n", 1)
	if _, res := apply(switched); res.code != 1 || !strings.Contains(res.stderr, "delete it first") {
		t.Fatalf("changing a configuration's type: %d %s", res.code, res.stderr)
	}
	if table := cli.run("", env, "exportConfig", "apply", "-f", writeFile(t, "e.yaml", onlyProd)); !strings.Contains(table.stdout, "ACTION") || !strings.Contains(table.stdout, "unchanged") {
		t.Fatalf("apply table: %s", table.stdout)
	}
	// The file is the whole truth: encryption left out of it is cleared on the server.
	plain := strings.Replace(onlyProd, "    serverSideEncryption: AES256\n", "", 1)
	if cleared, res := apply(plain); res.code != 0 || cleared.summary() != "update:acme-prod+serverSideEncryption" {
		t.Fatalf("clearing the encryption: %d %s %s", res.code, cleared.summary(), res.stderr)
	}
	cli.json(&prod, "exportConfig", "get", "acme-prod")
	if prod.EndpointConfiguration.ServerSideEncryption != nil {
		t.Fatalf("encryption after clearing: %q", *prod.EndpointConfiguration.ServerSideEncryption)
	}
}

// Bad files are refused with every problem named, before anything is sent: the CLI is pointed
// at a closed port, so any request would fail differently (exit 1, "cannot reach").
func TestCLIRefusesBadFiles(t *testing.T) {
	server := &testserver.Server{URL: "http://127.0.0.1:9", AdminToken: "unused-token-value"}
	cli := newCLI(t, server)
	good := `"interval":"EVERY_HOUR","bucket":"audit-bucket","region":"us-east-1"`
	cases := map[string]struct {
		command, content string
		env              []string
		want             []string
	}{
		"malformed JSON":       {"create:s3:accessKey", `{"interval": "EVERY_HOUR",`, nil, []string{"invalid JSON: the file ends in the middle of a value"}},
		"empty file":           {"create:s3:accessKey", ``, nil, []string{"the file is empty"}},
		"two values":           {"create:s3:accessKey", `{} {}`, nil, []string{"more than one JSON value"}},
		"unknown field":        {"create:s3:accessKey", `{` + good + `,"accessKeyId":"AKIA1","secretAccessKey":"s3cr3t-value","colour":"red"}`, nil, []string{`unknown field "colour"`}},
		"wrong type":           {"create:s3:accessKey", `{"interval": 12}`, nil, []string{"interval must be a string, not number"}},
		"missing fields":       {"create:s3:accessKey", `{"bucket":"audit-bucket"}`, nil, []string{"interval is required", "region is required", "accessKeyId is required", "secretAccessKey or secretAccessKeyEnv is required"}},
		"bad values":           {"create:s3:accessKey", `{"interval":"HOURLY","bucket":"Bad_Bucket","region":"moon","path":"/x/../y","accessKeyId":"AKIA1","secretAccessKey":"short"}`, nil, []string{`unknown interval "HOURLY"`, "bucket: may contain only", "region: must be an AWS region", "path: must not begin with '/'", "secretAccessKey: must be 8"}},
		"secret env unset":     {"create:s3:accessKey", `{` + good + `,"accessKeyId":"AKIA1","secretAccessKeyEnv":"NO_SUCH_VARIABLE_SET"}`, nil, []string{"environment variable NO_SUCH_VARIABLE_SET is not set"}},
		"role fields on a key": {"create:s3:accessKey", `{` + good + `,"accessKeyId":"AKIA1","secretAccessKey":"s3cr3t-value","roleArn":"arn:aws:iam::123456789012:role/r"}`, nil, []string{"roleArn is not used by access-key configurations"}},
		"key fields on a role": {"create:s3:assumedRole", `{` + good + `,"roleArn":"arn:aws:iam::123456789012:role/r","secretAccessKey":"s3cr3t-value"}`, nil, []string{"not used by assumed-role configurations"}},
		"bad role ARN":         {"create:s3:assumedRole", `{` + good + `,"roleArn":"arn:aws:iam::1:role/r"}`, nil, []string{"roleArn: must be an IAM role ARN"}},
		"update without id":    {"update:s3:accessKey", `{"interval":"EVERY_HOUR"}`, nil, []string{"id (or name) of the configuration to update is required"}},
		"id on create":         {"create:s3:assumedRole", `{` + good + `,"roleArn":"arn:aws:iam::123456789012:role/r","id":"x"}`, nil, []string{"id is not used here"}},
		"bad encryption":       {"create:s3:assumedRole", `{` + good + `,"roleArn":"arn:aws:iam::123456789012:role/r","serverSideEncryption":"aws:kms"}`, nil, []string{"serverSideEncryption must be AES256 or AWS_KMS"}},
		"KMS key without KMS":  {"create:s3:assumedRole", `{` + good + `,"roleArn":"arn:aws:iam::123456789012:role/r","serverSideEncryption":"AES256","sseKmsKeyId":"alias/x"}`, nil, []string{"sseKmsKeyId: is used only with server-side encryption aws:kms"}},
		"malformed KMS key":    {"update:s3:assumedRole", `{"id":"x","sseKmsKeyId":"not a key"}`, nil, []string{"sseKmsKeyId: must be a KMS key id"}},
		"bad startTime":        {"create:s3:assumedRole", `{` + good + `,"roleArn":"arn:aws:iam::123456789012:role/r","startTime":"yesterday"}`, nil, []string{"startTime must be an RFC 3339 time"}},
		"startTime on update":  {"update:s3:assumedRole", `{"id":"x","startTime":"2026-11-21T00:00:00Z"}`, nil, []string{"startTime is used only when a configuration is created"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cli.t = t
			res := cli.run("", c.env, "exportConfig", c.command, writeFile(t, "f.json", c.content))
			if res.code != 2 || !strings.Contains(res.stderr, "(nothing was sent)") {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q lacks %q", res.stderr, w)
				}
			}
		})
	}
	applyCases := map[string]struct{ content, want string }{
		"not YAML":            {"exportConfigurations: [", "yaml: line 1: did not find expected node content"},
		"unknown field":       {"exportConfigurations:\n  - name: a\n    type: s3:assumedRole\n    colour: red\n", "colour"},
		"no configurations":   {"exportConfigurations: []\n", "lists no configuration"},
		"no name":             {"exportConfigurations:\n  - type: s3:assumedRole\n    interval: EVERY_HOUR\n    bucket: audit-bucket\n    region: us-east-1\n    roleArn: arn:aws:iam::123456789012:role/r\n", "name is required"},
		"duplicate names":     {strings.Repeat("  - name: a\n    type: s3:assumedRole\n    interval: EVERY_HOUR\n    bucket: audit-bucket\n    region: us-east-1\n    roleArn: arn:aws:iam::123456789012:role/r\n", 2), "the name appears twice"},
		"unknown type":        {"exportConfigurations:\n  - name: a\n    type: gcs\n", "type must be s3:accessKey, s3:assumedRole or adls:sasToken"},
		"missing in an entry": {"exportConfigurations:\n  - name: a\n    type: s3:accessKey\n    interval: EVERY_HOUR\n", "exportConfigurations[0] (a): bucket is required"},
	}
	for name, c := range applyCases {
		t.Run("apply "+name, func(t *testing.T) {
			cli.t = t
			content := c.content
			if strings.HasPrefix(content, "  - ") {
				content = "exportConfigurations:\n" + content
			}
			res := cli.run("", nil, "exportConfig", "apply", "-f", writeFile(t, "a.yaml", content))
			if res.code != 2 || !strings.Contains(res.stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", res.code, res.stderr, c.want)
			}
		})
	}
}

func TestCLIWait(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	server := testserver.Start(t, testserver.Options{Env: []string{"AWS_MAX_ATTEMPTS=3"}})
	cli := newCLI(t, server)
	key, secret := srv.NewUser(t, "") // no permission yet
	file := writeFile(t, "c.json", `{"name":"late","interval":"EVERY_HOUR","bucket":"`+bucket+`","region":"us-east-1","endpoint":"`+srv.Endpoint+`","accessKeyId":"`+key+`","secretAccessKey":"`+secret+`"}`)

	start := time.Now()
	res := cli.run("", nil, "exportConfig", "create:s3:accessKey", file, "--wait", "4s", "-o", "json")
	var cfg exportConfig
	if res.code != 1 || json.Unmarshal([]byte(res.stdout), &cfg) != nil || !strings.Contains(cfg.ConnectionStatus, "AccessDenied") ||
		!strings.Contains(res.stderr, "not reachable after 4s") || !strings.Contains(res.stderr, "AccessDenied") {
		t.Fatalf("--wait timing out: %d %s %s", res.code, res.stdout, res.stderr)
	}
	if took := time.Since(start); took < 4*time.Second || took > 20*time.Second {
		t.Fatalf("--wait 4s took %v", took)
	}

	// The customer grants PutObject while the pipeline waits.
	go func() {
		time.Sleep(2 * time.Second)
		srv.AttachPolicy(t, key, s3test.PutOnlyPolicy(bucket))
	}()
	res = cli.run("", nil, "exportConfig", "verify", "late", "--wait", "60s", "-o", "json")
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &cfg) != nil || cfg.ConnectionStatus != "SUCCESS" {
		t.Fatalf("--wait success: %d %s %s", res.code, res.stdout, res.stderr)
	}
}

func TestCLIConfigFileProfiles(t *testing.T) {
	server := testserver.Start(t, testserver.Options{})
	cli := newCLI(t, server)
	home := strings.TrimPrefix(cli.env[0], "HOME=")
	dir := filepath.Join(home, ".config", "auditexport")
	os.MkdirAll(dir, 0o700)
	tokenFile := writeFile(t, "token", server.AdminToken+"\n")
	config := `current-profile: local
profiles:
  local:
    url: ` + server.URL + `
    token-file: ` + tokenFile + `
  broken:
    url: http://127.0.0.1:9
    token: some-token-value
`
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := []string{"AUDITEXPORT_URL=", "AUDITEXPORT_TOKEN="}
	if res := cli.run("", noEnv, "exportConfig", "list", "-o", "json"); res.code != 0 || strings.TrimSpace(res.stdout) != "[]" {
		t.Fatalf("current profile: %d %s %s", res.code, res.stdout, res.stderr)
	}
	if res := cli.run("", noEnv, "exportConfig", "list", "--profile", "broken"); res.code != 1 || !strings.Contains(res.stderr, "cannot reach http://127.0.0.1:9") {
		t.Fatalf("--profile broken: %d %s", res.code, res.stderr)
	}
	// Flags beat the environment, which beats the profile.
	if res := cli.run("", []string{"AUDITEXPORT_PROFILE=broken", "AUDITEXPORT_URL=" + server.URL, "AUDITEXPORT_TOKEN="}, "exportConfig", "list"); res.code != 1 || !strings.Contains(res.stderr, "token is not valid") {
		t.Fatalf("env URL with the profile's token: %d %s", res.code, res.stderr)
	}
	if res := cli.run("", []string{"AUDITEXPORT_PROFILE=broken"}, "exportConfig", "list", "--url", server.URL, "--token", server.AdminToken); res.code != 0 {
		t.Fatalf("flags over a broken profile: %d %s", res.code, res.stderr)
	}
	if res := cli.run("", noEnv, "exportConfig", "list", "--profile", "missing"); res.code != 2 || !strings.Contains(res.stderr, `no profile "missing"`) {
		t.Fatalf("unknown profile: %d %s", res.code, res.stderr)
	}
	if res := cli.run("", noEnv, "exportConfig", "list", "--config", writeFile(t, "bad.yaml", "profiles: [")); res.code != 2 || !strings.Contains(res.stderr, "config file") {
		t.Fatalf("broken config file: %d %s", res.code, res.stderr)
	}
}
