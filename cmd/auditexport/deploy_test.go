package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
	"github.com/auditexport/auditexport/server"
)

const repoRoot = "../.."

// checkCLICommand fails unless args name a real subcommand whose flags parse.
func checkCLICommand(t *testing.T, args []string) {
	t.Helper()
	started := false
	root := newRootCommand(&cli{}, &started)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root || cmd.HasSubCommands() {
		t.Fatalf("%q is not an auditexport command: %v", args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if cmd.Args != nil {
		if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
	}
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(repoRoot, "docker-compose.yml")},
		composecli.WithWorkingDirectory(repoRoot), composecli.WithEnv([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return project
}

func TestDockerCompose(t *testing.T) {
	p := loadCompose(t)
	service := func(name string) types.ServiceConfig {
		t.Helper()
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		return s
	}
	dependsOn := func(s types.ServiceConfig, on, condition string) {
		t.Helper()
		if d, ok := s.DependsOn[on]; !ok || d.Condition != condition {
			t.Errorf("%s: depends_on %s = %+v, want condition %s", s.Name, on, d, condition)
		}
	}
	published := func(s types.ServiceConfig, target uint32) {
		t.Helper()
		for _, port := range s.Ports {
			if port.Target == target && port.Published != "" && port.HostIP == "127.0.0.1" {
				return
			}
		}
		t.Errorf("%s: port %d is not published on 127.0.0.1: %+v", s.Name, target, s.Ports)
	}
	mounts := func(s types.ServiceConfig, source, target string) {
		t.Helper()
		for _, v := range s.Volumes {
			if v.Target == target && strings.HasSuffix(v.Source, source) {
				return
			}
		}
		t.Errorf("%s: no volume %s at %s: %+v", s.Name, source, target, s.Volumes)
	}

	minio := service("minio")
	if minio.Image != "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z" {
		t.Errorf("minio image %q is not the pinned release", minio.Image)
	}
	if minio.HealthCheck == nil || !slices.Equal(minio.HealthCheck.Test, []string{"CMD", "mc", "ready", "local"}) {
		t.Errorf("minio healthcheck %+v", minio.HealthCheck)
	}
	published(minio, 9000)
	published(minio, 9001)
	mounts(minio, "minio-data", "/data")

	init := service("minio-init")
	if !regexp.MustCompile(`^quay\.io/minio/mc:RELEASE\.\d{4}-`).MatchString(init.Image) {
		t.Errorf("minio-init image %q is not a pinned mc release", init.Image)
	}
	dependsOn(init, "minio", types.ServiceConditionHealthy)
	script := strings.Join(init.Command, "\n")
	for _, step := range []string{`mc mb --ignore-existing "demo/$DEMO_BUCKET"`, `"Action":["s3:PutObject"]`, "mc admin user add", "mc admin policy attach"} {
		if !strings.Contains(script, step) {
			t.Errorf("minio-init does not %q:\n%s", step, script)
		}
	}
	if strings.Contains(script, "s3:GetObject") || strings.Contains(script, `"s3:*"`) {
		t.Error("the demo user may do more than PutObject")
	}
	bucket, accessKey := *init.Environment["DEMO_BUCKET"], *init.Environment["DEMO_ACCESS_KEY"]

	ax := service("auditexport")
	if ax.Build == nil || ax.Build.Dockerfile != "Dockerfile" {
		t.Errorf("auditexport is not built from the Dockerfile: %+v", ax.Build)
	}
	dependsOn(ax, "minio-init", types.ServiceConditionCompletedSuccessfully)
	published(ax, 8080)
	mounts(ax, "auditexport-data", "/data")
	if ax.HealthCheck == nil || len(ax.HealthCheck.Test) < 3 || ax.HealthCheck.Test[1] != "/usr/local/bin/auditexport" {
		t.Fatalf("auditexport healthcheck %+v", ax.HealthCheck)
	}
	checkCLICommand(t, ax.HealthCheck.Test[2:])
	if allowed := ax.Environment["AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS"]; allowed == nil || *allowed != "minio:9000" {
		t.Errorf("auditexport does not allow exactly the demo's MinIO on private addresses: %v", allowed)
	}
	adminToken := *ax.Environment["AUDITEXPORT_ADMIN_TOKEN"]
	if len(adminToken) < server.MinAdminTokenLength {
		t.Errorf("the demo admin token is shorter than the server accepts")
	}

	configure := service("demo-configure")
	dependsOn(configure, "auditexport", types.ServiceConditionHealthy)
	checkCLICommand(t, configure.Command)
	if *configure.Environment["AUDITEXPORT_TOKEN"] != adminToken || *configure.Environment["AUDITEXPORT_URL"] != "http://auditexport:8080" {
		t.Errorf("demo-configure does not reach the server: %v", configure.Environment)
	}
	events := service("demo-events")
	dependsOn(events, "demo-configure", types.ServiceConditionCompletedSuccessfully)
	checkCLICommand(t, events.Command)
	export := service("demo-export")
	dependsOn(export, "demo-events", types.ServiceConditionCompletedSuccessfully)
	checkCLICommand(t, export.Command)

	// The demo's files pass the CLI's own checks and point at the bucket and user minio-init made.
	t.Setenv("DEMO_SECRET_KEY", *init.Environment["DEMO_SECRET_KEY"])
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy/demo/exports.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseApplyFile("exports.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if *want[0].Bucket != bucket || *want[0].AccessKeyID != accessKey || *want[0].Endpoint != "http://minio:9000" || *want[0].Name != export.Command[2] {
		t.Errorf("exports.yaml does not match the compose file: %+v", want[0])
	}
	body, err := os.ReadFile(filepath.Join(repoRoot, "deploy/demo/events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var d event.Decoder
	if b, err := d.NDJSON(body, time.Now()); err != nil || b.Len() < 10 {
		t.Errorf("demo events: %v", err)
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	froms := regexp.MustCompile(`(?m)^FROM `).FindAllStringIndex(text, -1)
	if len(froms) != 2 || !strings.Contains(text, " AS build") || !strings.Contains(text, "COPY --from=build") {
		t.Error("the Dockerfile is not a two-stage build")
	}
	if !strings.Contains(text, "CGO_ENABLED=0 go build") || !strings.Contains(text, "./cmd/auditexport") {
		t.Error("the binary is not built static")
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(text)
	if user == nil || strings.HasPrefix(user[1], "0") || strings.HasPrefix(user[1], "root") {
		t.Errorf("the image runs as %v, want a non-root user", user)
	}
	if !strings.Contains(text, `VOLUME ["/data"]`) || !strings.Contains(text, "--chown=65532:65532 /out/data /data") || !strings.Contains(text, "AUDITEXPORT_DATA_DIR=/data") {
		t.Error("the data volume is missing or not owned by the runtime user")
	}
	hc := regexp.MustCompile(`(?s)HEALTHCHECK .*?CMD \["/usr/local/bin/auditexport", (.*?)\]`).FindStringSubmatch(text)
	if hc == nil {
		t.Fatal("no HEALTHCHECK running the binary")
	}
	var args []string
	for _, a := range strings.Split(hc[1], ",") {
		args = append(args, strings.Trim(strings.TrimSpace(a), `"`))
	}
	checkCLICommand(t, args)
}

// TestComposeDemoFlow replays the compose demo without Docker: the bucket and PutObject-only user
// minio-init makes, the server with the compose file's admin token, then each one-shot demo
// service's own command and environment, with only the host names swapped for the test's. The
// sample events must land in the bucket as Parquet.
func TestComposeDemoFlow(t *testing.T) {
	srv := s3test.Require(t)
	p := loadCompose(t)
	initEnv := p.Services["minio-init"].Environment
	bucket, accessKey, secretKey := *initEnv["DEMO_BUCKET"], *initEnv["DEMO_ACCESS_KEY"], *initEnv["DEMO_SECRET_KEY"]
	srv.EmptyBucket(t, bucket)
	srv.CreateUser(t, accessKey, secretKey, s3test.PutOnlyPolicy(bucket))
	axEnv := p.Services["auditexport"].Environment
	adminToken := *axEnv["AUDITEXPORT_ADMIN_TOKEN"]
	minioHost := strings.TrimPrefix(srv.Endpoint, "http://")
	server := testserver.Start(t, testserver.Options{Env: []string{"AUDITEXPORT_ADMIN_TOKEN=" + adminToken, "AWS_MAX_ATTEMPTS=3",
		"AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS=" + strings.ReplaceAll(*axEnv["AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS"], "minio:9000", minioHost)}})

	// The demo's files, with the compose network's host names replaced by the test's.
	demoDir := t.TempDir()
	exports, err := os.ReadFile(filepath.Join(repoRoot, "deploy/demo/exports.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(demoDir, "exports.yaml"), []byte(strings.ReplaceAll(string(exports), "http://minio:9000", srv.Endpoint)), 0o600)
	events, _ := os.ReadFile(filepath.Join(repoRoot, "deploy/demo/events.ndjson"))
	os.WriteFile(filepath.Join(demoDir, "events.ndjson"), events, 0o600)

	runner := newCLI(t, server)
	for _, name := range []string{"demo-configure", "demo-events", "demo-export"} {
		s := p.Services[name]
		var env []string
		for k, v := range s.Environment {
			value := *v
			if k == "AUDITEXPORT_URL" {
				value = server.URL
			}
			env = append(env, k+"="+value)
		}
		args := slices.Clone(s.Command)
		for i, a := range args {
			args[i] = strings.Replace(a, "/demo/", demoDir+"/", 1)
		}
		if res := runner.run("", env, args...); res.code != 0 {
			t.Fatalf("%s (%s): exit %d\n%s%s", name, strings.Join(s.Command, " "), res.code, res.stdout, res.stderr)
		}
	}
	var cfg exportConfig
	runner.json(&cfg, "exportConfig", "get", "demo")
	seen := map[string]bool{}
	for _, r := range exporttest.Exported(t, srv, bucket, "auditexport", cfg.ID) {
		seen[r.ID] = true
	}
	for i := range 50 {
		if !seen[eventtest.ID(i).String()] {
			t.Fatalf("demo event %d did not land in the bucket (%d rows there)", i, len(seen))
		}
	}
}
