package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/pflag"

	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// readmeBlocks returns the ```sh blocks of the README section titled heading ("## …").
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README has no section %q", heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for _, part := range strings.Split(section, "```sh\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		blocks = append(blocks, block)
	}
	return blocks
}

// runShell runs script with bash (-eu -o pipefail) in dir, the binary under test first on the
// PATH, and returns what it printed; it fails the test unless the script exits 0. Whatever the
// script starts in the background is killed with it.
func runShell(t *testing.T, dir, script string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A server the script started in the background (in its own session, as MinIO is) may hold
	// the output open after the script ended: stop waiting for it then.
	cmd.WaitDelay = 10 * time.Second
	// HOME stays: Go finds the cached MinIO through it. No CLI profile of the machine is read.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(testserver.Binary(t))+":"+os.Getenv("PATH"), "TMPDIR="+t.TempDir(),
		"XDG_CONFIG_HOME="+t.TempDir(), "AUDITEXPORT_URL=", "AUDITEXPORT_TOKEN=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what it left running in the background
	if err != nil {
		t.Fatalf("the README's commands failed: %v\n%s", err, out)
	}
	return string(out)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestREADMETryItLocally runs the README's "Try it locally" commands as written, on a free port
// instead of 8080, with the binary under test on the PATH instead of bin/: MinIO, one
// configuration, events, an export, and the files read back and verified.
func TestREADMETryItLocally(t *testing.T) {
	s3test.Require(t) // MinIO is built (the commands start their own)
	blocks := readmeBlocks(t, "Try it locally")
	if len(blocks) != 3 || blocks[0] != "make build && export PATH=$PWD/bin:$PATH\n" {
		t.Fatalf("the section's blocks changed: %q", blocks)
	}
	if makefile, _ := os.ReadFile(filepath.Join(repoRoot, "Makefile")); !strings.Contains(string(makefile), "-o bin/auditexport ./cmd/auditexport") {
		t.Fatal("make build no longer writes bin/auditexport")
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	script := strings.ReplaceAll(blocks[1]+blocks[2], "127.0.0.1:8080", freeAddr(t))
	out := runShell(t, root, script)
	for _, want := range []string{"SUCCESS", "accepted 50, duplicates 0", "SUCCEEDED", "-snappy.parquet", "_auditexport_digests/", ", 0 problems"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "/export/year="); n == 0 {
		t.Errorf("no Parquet file was copied back:\n%s", out)
	}
}

// TestREADMEAPIExamples runs the README's curl and GraphQL examples (Using the API, Sending audit
// events, Exports) in order against the real server: every operation answers without a GraphQL
// error, and the ids captured with jq -r are ids, one per kind.
func TestREADMEAPIExamples(t *testing.T) {
	dir := t.TempDir()
	server := testserver.Start(t, testserver.Options{DataDir: filepath.Join(dir, "data")})
	var script string
	for _, section := range []string{"Using the API", "Sending audit events", "Exports"} {
		blocks := readmeBlocks(t, section)
		if section == "Exports" {
			blocks = blocks[:1] // the others are a file layout and SQL
		}
		script += strings.Join(blocks, "\n")
	}
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", server.URL)
	out := runShell(t, dir, script+"\necho \"ids: $AK_ID $ROLE_ID $JOB_ID $CI_TOKEN\"\n")
	if strings.Contains(out, `"errors"`) {
		t.Errorf("an example failed:\n%s", out)
	}
	_, ids, _ := strings.Cut(out, "ids: ")
	fields := strings.Fields(ids)
	if len(fields) != 4 || !strings.HasPrefix(fields[3], "aex_") {
		t.Fatalf("captured ids %q\n%s", ids, out)
	}
	for _, id := range fields[:3] {
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("captured %q, not an id", id)
		}
	}
	if fields[0] == fields[1] {
		t.Error("the access-key and assumed-role examples share an id")
	}
	for _, want := range []string{`{"accepted":1,"duplicates":0}`, `"plannedEventCount":`, `"updateS3AccessKeyExportConfiguration":{"id":"` + fields[0],
		`"updateS3AssumedRoleExportConfiguration":{"id":"` + fields[1], `"deleteExportConfiguration":{"id":"` + fields[1]} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %s:\n%s", want, out)
		}
	}
}

// exportConfig --help names every field a FILE may hold.
func TestExportConfigHelpNamesEveryField(t *testing.T) {
	cli := newCLI(t, &testserver.Server{URL: "http://127.0.0.1:9", AdminToken: "unused-token-value"})
	help := cli.ok("exportConfig", "--help")
	fields := reflect.TypeFor[exportConfigFile]()
	for i := range fields.NumField() {
		name, _, _ := strings.Cut(fields.Field(i).Tag.Get("json"), ",")
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(help) {
			t.Errorf("exportConfig --help does not name %s:\n%s", name, help)
		}
	}
}

// make help lists every target the Makefile documents with "## ".
func TestMakeHelpListsEveryTarget(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("make", "-s", "-C", repoRoot, "help").Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	targets := regexp.MustCompile(`(?m)^([^\s:#.]+):.*## `).FindAllStringSubmatch(string(makefile), -1)
	if len(targets) < 10 {
		t.Fatalf("found only %d documented targets", len(targets))
	}
	for _, target := range targets {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(target[1]) + `\s`).Match(out) {
			t.Errorf("make help does not list %s:\n%s", target[1], out)
		}
	}
}

// The README's table of serve flags names every flag, its environment variable and its default
// as the command has them (the components' defaults, through server.DefaultConfig).
func TestREADMEConfigurationTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `--([a-z-]+)` \\| `([A-Z_]+)` \\| ([^|]+) \\|").FindAllStringSubmatch(string(data), -1)
	if len(rows) < 20 {
		t.Fatalf("found %d rows of serve flags in the README", len(rows))
	}
	flags := newServeCommand().Flags()
	documented := map[string]bool{}
	for _, row := range rows {
		name, env, def := row[1], row[2], strings.Trim(strings.TrimSpace(row[3]), "`")
		documented[name] = true
		f := flags.Lookup(name)
		if f == nil {
			t.Errorf("README documents --%s, which serve does not have", name)
			continue
		}
		if env != envNameOf(name) {
			t.Errorf("--%s: README names %s, serve reads %s", name, env, envNameOf(name))
		}
		want := f.DefValue
		if f.Value.Type() == "duration" {
			d, err := time.ParseDuration(def)
			if err != nil || d.String() != want {
				t.Errorf("--%s: README default %q, serve's %s", name, def, want)
			}
			continue
		}
		if want == "" && strings.HasPrefix(def, "(") { // an empty default, said in words: (any), (none…)
			continue
		}
		if def != want {
			t.Errorf("--%s: README default %q, serve's %q", name, def, want)
		}
	}
	flags.VisitAll(func(f *pflag.Flag) {
		if !documented[f.Name] {
			t.Errorf("the README's table lacks --%s", f.Name)
		}
	})
}
