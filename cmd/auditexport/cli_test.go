package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

type cliResult struct {
	code           int
	stdout, stderr string
}

// cliRunner runs the real binary as a client of server.
type cliRunner struct {
	t      *testing.T
	server *testserver.Server
	env    []string
}

func newCLI(t *testing.T, server *testserver.Server) *cliRunner {
	home := t.TempDir() // no stray ~/.config/auditexport of the machine
	return &cliRunner{t: t, server: server, env: []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"AUDITEXPORT_URL=" + server.URL, "AUDITEXPORT_TOKEN=" + server.AdminToken}}
}

func (r *cliRunner) run(stdin string, extraEnv []string, args ...string) cliResult {
	r.t.Helper()
	cmd := exec.Command(testserver.Binary(r.t), args...)
	cmd.Env = append(append(os.Environ(), r.env...), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		r.t.Fatal(err)
	}
	return cliResult{code, stdout.String(), stderr.String()}
}

// ok runs a command that must succeed and returns its standard output.
func (r *cliRunner) ok(args ...string) string {
	r.t.Helper()
	res := r.run("", nil, args...)
	if res.code != 0 {
		r.t.Fatalf("auditexport %s: exit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

func (r *cliRunner) json(v any, args ...string) {
	r.t.Helper()
	out := r.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("auditexport %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCLIEveryCommand(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	serviceKey, serviceSecret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	proxy := srv.NewSTSProxy(t, 0)
	server := testserver.Start(t, testserver.Options{Env: []string{
		"AWS_ACCESS_KEY_ID=" + serviceKey, "AWS_SECRET_ACCESS_KEY=" + serviceSecret, "AWS_ENDPOINT_URL_STS=" + proxy.URL, "AWS_MAX_ATTEMPTS=3",
	}})
	cli := newCLI(t, server)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))

	// create:s3:accessKey from Immuta's exportConfig.json, plus our endpoint, name and SSE-KMS.
	file := writeFile(t, "exportConfig.json", `{
		"interval": "EVERY_12_HOURS", "bucket": "`+bucket+`", "path": "audit", "region": "us-east-1",
		"accessKeyId": "`+key+`", "secretAccessKey": "`+secret+`", "endpoint": "`+srv.Endpoint+`", "name": "acme-prod",
		"serverSideEncryption": "AWS_KMS", "sseKmsKeyId": "`+srv.KMSKey+`"
	}`)
	var ak exportConfig
	cli.json(&ak, "exportConfig", "create:s3:accessKey", file, "--wait", "30s")
	if ak.ConnectionStatus != "SUCCESS" || str(ak.Name) != "acme-prod" || ak.Interval != "EVERY_12_HOURS" ||
		str(ak.EndpointConfiguration.ServerSideEncryption) != "AWS_KMS" || str(ak.EndpointConfiguration.SseKmsKeyID) != srv.KMSKey {
		t.Fatalf("created %+v", ak)
	}
	// create:s3:assumedRole from standard input, starting with what was buffered in the last hour
	// (acme-prod's creation event, then its own).
	roleJSON := `{"interval":"EVERY_24_HOURS","bucket":"` + bucket + `","region":"us-east-1","roleArn":"arn:aws:iam::123456789012:role/export","endpoint":"` + srv.Endpoint + `","name":"acme-role",` +
		`"startTime":"` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `"}`
	res := cli.run(roleJSON, nil, "exportConfig", "create:s3:assumedRole", "-", "-o", "json")
	var role exportConfig
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &role) != nil || role.ConnectionStatus != "SUCCESS" || role.EndpointConfiguration.ExternalID != role.ID ||
		role.PendingEvents < 2 {
		t.Fatalf("create:s3:assumedRole: %d %s %s", res.code, res.stdout, res.stderr)
	}
	if calls := proxy.Calls(); len(calls) == 0 || calls[0].ExternalID != role.ID {
		t.Fatalf("AssumeRole calls %+v", calls)
	}

	var all []exportConfig
	cli.json(&all, "exportConfig", "list")
	if len(all) != 2 {
		t.Fatalf("list: %+v", all)
	}
	if table := cli.ok("exportConfig", "list"); !strings.Contains(table, "acme-prod") || !strings.Contains(table, "acme-role") || !strings.HasPrefix(table, "ID ") {
		t.Fatalf("list table:\n%s", table)
	}
	var byName, byID exportConfig
	cli.json(&byName, "exportConfig", "get", "acme-prod")
	cli.json(&byID, "exportConfig", "get", ak.ID)
	if byName.ID != ak.ID || byID.ID != ak.ID {
		t.Fatalf("get by name %s, by id %s, want %s", byName.ID, byID.ID, ak.ID)
	}

	var updated exportConfig
	cli.json(&updated, "exportConfig", "update:s3:accessKey", writeFile(t, "u.json", `{"name":"acme-prod","interval":"EVERY_HOUR"}`))
	if updated.ID != ak.ID || updated.Interval != "EVERY_HOUR" || str(updated.EndpointConfiguration.Path) != "audit" {
		t.Fatalf("update:s3:accessKey: %+v", updated)
	}
	cli.json(&updated, "exportConfig", "update:s3:assumedRole", writeFile(t, "r.json", `{"id":"`+role.ID+`","path":"role-audit"}`))
	if str(updated.EndpointConfiguration.Path) != "role-audit" || updated.EndpointConfiguration.RoleArn != "arn:aws:iam::123456789012:role/export" {
		t.Fatalf("update:s3:assumedRole: %+v", updated)
	}

	var toggled exportConfig
	cli.json(&toggled, "exportConfig", "disable", "acme-role")
	if toggled.Enabled {
		t.Fatal("disable left it enabled")
	}
	cli.json(&toggled, "exportConfig", "enable", "acme-role")
	if !toggled.Enabled || toggled.ConnectionStatus != "SUCCESS" {
		t.Fatalf("enable: %+v", toggled)
	}
	var verified exportConfig
	cli.json(&verified, "exportConfig", "verify", ak.ID)
	if verified.ConnectionStatus != "SUCCESS" {
		t.Fatalf("verify: %+v", verified)
	}

	events := writeFile(t, "events.ndjson", string(eventtest.NDJSON(0, 200, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), time.Minute)))
	if out := cli.ok("events", "send", events); !strings.Contains(out, "accepted 200, duplicates 0") {
		t.Fatalf("events send: %s", out)
	}
	var job exportJob
	cli.json(&job, "exportConfig", "run", "acme-prod")
	if job.Status != "SUCCEEDED" || job.EventCount < 200 || job.ObjectCount == 0 {
		t.Fatalf("run: %+v", job)
	}
	var jobs []exportJob
	cli.json(&jobs, "exportConfig", "jobs", "acme-prod", "--limit", "5")
	if len(jobs) != 1 || jobs[0].ID != job.ID {
		t.Fatalf("jobs: %+v", jobs)
	}
	var tasks []exportTask
	cli.json(&tasks, "exportConfig", "tasks", job.ID)
	// The sample events' first hour has its object; the configurations' own audit events are in
	// the hour of today's run, wherever that falls.
	inFirstHour := 0
	for _, task := range tasks {
		if strings.HasPrefix(task.Key, "audit/year=2026/month=11/day=21/hour=09/") {
			inFirstHour++
		}
		if len(str(task.SHA256)) != 64 {
			t.Errorf("task %s has no SHA-256", task.Key)
		}
	}
	if len(tasks) != job.ObjectCount || inFirstHour != 1 {
		t.Fatalf("tasks: %+v", tasks)
	}
	if table := cli.ok("exportConfig", "jobs", ak.ID); !strings.Contains(table, job.ID) || !strings.Contains(table, "SUCCEEDED") {
		t.Fatalf("jobs table:\n%s", table)
	}

	var tok struct{ Name, Token string }
	cli.json(&tok, "token", "create", "--name", "ci", "--permission", "AUDIT,INGEST")
	if !strings.HasPrefix(tok.Token, "aex_") {
		t.Fatalf("token create: %+v", tok)
	}
	if res := cli.run("", []string{"AUDITEXPORT_TOKEN=" + tok.Token}, "exportConfig", "list"); res.code != 0 {
		t.Fatalf("the new token: %d %s", res.code, res.stderr)
	}
	if res := cli.run("", []string{"AUDITEXPORT_TOKEN=" + tok.Token}, "token", "create", "--name", "x", "--permission", "ADMIN"); res.code != 1 || !strings.Contains(res.stderr, "lacks the ADMIN permission") {
		t.Fatalf("token create without ADMIN: %d %s", res.code, res.stderr)
	}
	var tokens []apiToken
	cli.json(&tokens, "token", "list")
	if len(tokens) != 2 || tokens[0].Name != "admin" || tokens[1].Name != "ci" || strings.Join(tokens[1].Permissions, ",") != "AUDIT,INGEST" {
		t.Fatalf("token list: %+v", tokens)
	}
	if table := cli.ok("token", "list"); !strings.HasPrefix(table, "NAME ") || !strings.Contains(table, "AUDIT,INGEST") || strings.Contains(table, tok.Token) {
		t.Fatalf("token list table:\n%s", table)
	}
	if out := cli.ok("token", "revoke", "ci"); !strings.Contains(out, "ci ") {
		t.Fatalf("token revoke: %s", out)
	}
	if res := cli.run("", []string{"AUDITEXPORT_TOKEN=" + tok.Token}, "exportConfig", "list"); res.code != 1 || !strings.Contains(res.stderr, "the API token is not valid") {
		t.Fatalf("a revoked token: %d %s", res.code, res.stderr)
	}
	if res := cli.run("", nil, "token", "revoke", "ci"); res.code != 1 || !strings.Contains(res.stderr, "not found") {
		t.Fatalf("revoking it again: %d %s", res.code, res.stderr)
	}

	var deleted exportConfig
	cli.json(&deleted, "exportConfig", "delete", "acme-role")
	if deleted.ID != role.ID {
		t.Fatalf("delete: %+v", deleted)
	}
	if res := cli.run("", nil, "exportConfig", "get", role.ID); res.code != 1 || !strings.Contains(res.stderr, "not found") {
		t.Fatalf("get after delete: %d %s", res.code, res.stderr)
	}

	t.Run("exit codes", func(t *testing.T) {
		cli.t = t
		for _, c := range []struct {
			args []string
			env  []string
			code int
			msg  string
		}{
			{[]string{"exportConfig", "get"}, nil, 2, "accepts 1 arg"},
			{[]string{"exportConfig", "frobnicate"}, nil, 2, "unknown command"},
			{[]string{"exportConfig", "list", "--output", "yaml"}, nil, 2, "--output must be table or json"},
			{[]string{"exportConfig", "list"}, []string{"AUDITEXPORT_TOKEN="}, 2, "no API token"},
			{[]string{"exportConfig", "list"}, []string{"AUDITEXPORT_TOKEN=wrong-token-value"}, 1, "the API token is not valid"},
			{[]string{"exportConfig", "get", "no-such-name"}, nil, 1, `no export configuration has the id or name "no-such-name"`},
			{[]string{"exportConfig", "list"}, []string{"AUDITEXPORT_URL=http://127.0.0.1:9"}, 1, "cannot reach"},
			{[]string{"token", "create", "--name", "x"}, nil, 2, "--name and --permission are required"},
		} {
			res := cli.run("", c.env, c.args...)
			if res.code != c.code || !strings.Contains(res.stderr, c.msg) {
				t.Errorf("auditexport %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), res.code, res.stderr, c.code, c.msg)
			}
		}
	})
	if logs := server.Logs(); strings.Contains(logs, secret) || strings.Contains(logs, tok.Token) {
		t.Error("a secret reached the server's logs")
	}
}

// A FAILED job shows the range it plans to export beside what it exported (nothing yet), in JSON
// and in the table, so it does not read as an empty export.
func TestCLIFailedJobShowsItsPlannedRange(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	server := testserver.Start(t, testserver.Options{Env: []string{"AUDITEXPORT_EXPORT_RETRY_MIN=1h"}})
	cli := newCLI(t, server)
	key, secret := srv.NewUser(t, "") // no permission: every upload is refused
	file := writeFile(t, "c.json", `{"name":"denied","interval":"EVERY_24_HOURS","bucket":"`+bucket+`","region":"us-east-1","endpoint":"`+srv.Endpoint+`","accessKeyId":"`+key+`","secretAccessKey":"`+secret+`"}`)
	cli.ok("exportConfig", "create:s3:accessKey", file)
	cli.ok("events", "send", writeFile(t, "e.ndjson", string(eventtest.NDJSON(0, 12, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), time.Minute))))
	var job exportJob
	cli.json(&job, "exportConfig", "run", "denied")
	// 13: the twelve events and the configuration's own creation event.
	if job.Status != "FAILED" || job.PlannedEventCount != 13 || job.LastSequence-job.FirstSequence+1 != 13 || job.EventCount != 0 {
		t.Fatalf("failed job: %+v", job)
	}
	table := cli.ok("exportConfig", "jobs", "denied")
	if want := fmt.Sprintf("%d-%d", job.FirstSequence, job.LastSequence); !strings.Contains(table, "RANGE") || !strings.Contains(table, "PLANNED") ||
		!strings.Contains(table, want) || !strings.Contains(table, "FAILED") {
		t.Fatalf("jobs table lacks the planned range %s:\n%s", want, table)
	}
}
