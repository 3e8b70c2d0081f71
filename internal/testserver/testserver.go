// Package testserver builds the auditexport binary and runs it as a child process on a free
// loopback port, so tests exercise the real server over real HTTP.
package testserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/auditexport once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "auditexport-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "auditexport")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/auditexport")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Options configure Start.
type Options struct {
	// DataDir defaults to a new temporary directory.
	DataDir string
	// Env is added to the server's environment (KEY=value).
	Env []string
	// Args are added after `serve --listen 127.0.0.1:0 --data-dir DIR`.
	Args []string
	// Wrap, when set, is a command the server runs under: the binary and its arguments are
	// appended to it, and it must exec them (so the process is the server's).
	Wrap []string
}

// loopbackOnlyEnv keeps a test server off the internet: the SDK's endpoints default to a closed
// loopback port (configurations and tests that need S3 or STS set their own), and the EC2
// metadata service is never asked for credentials. One attempt per call keeps checks of that
// closed port from waiting on retry backoff. The test servers (MinIO, Azurite, fakes) listen on
// 127.0.0.1, a loopback address the service reaches only when allowed: this allows it, and a
// test of the default sets AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS= (none) in its Options.Env.
var loopbackOnlyEnv = []string{
	"AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS=127.0.0.1",
	"AWS_ENDPOINT_URL=http://127.0.0.1:9",
	"AWS_MAX_ATTEMPTS=1",
	"AWS_EC2_METADATA_DISABLED=true",
	"AWS_ACCESS_KEY_ID=test-service-identity",
	"AWS_SECRET_ACCESS_KEY=test-service-secret",
	"AWS_REGION=us-east-1",
}

// Server is a running auditexport process.
type Server struct {
	URL        string
	DataDir    string
	AdminToken string

	t    testing.TB
	cmd  *exec.Cmd
	logs *LogBuffer
	done chan struct{}
	err  error
}

// Start runs the binary and waits until it listens. The process is killed when the test ends
// if it is still running.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Launch(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Launch is Start returning the error of a server that fails to come up, for tests that expect it.
func Launch(t testing.TB, opts Options) (*Server, error) {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", opts.DataDir, "--log-format", "json"}, opts.Args...)
	argv := append(append(slices.Clip(opts.Wrap), Binary(t)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), loopbackOnlyEnv...), opts.Env...) // later entries win
	s := &Server{DataDir: opts.DataDir, t: t, cmd: cmd, logs: &LogBuffer{}, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = s.logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	listening := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		s.scan(stderr, listening)
		close(scanned)
	}()
	go func() {
		// Wait closes the pipe: only once every line has been read (EOF at the process's exit),
		// or the last lines, those explaining a failed start, would be lost.
		<-scanned
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if s.Running() {
			s.Kill()
		}
	})
	select {
	case addr := <-listening:
		s.URL = "http://" + addr
	case <-s.done:
		return s, fmt.Errorf("server exited before listening: %v\n%s", s.err, s.Logs())
	case <-time.After(30 * time.Second):
		s.Kill()
		return s, fmt.Errorf("server did not listen within 30s\n%s", s.Logs())
	}
	if token, ok := envValue(opts.Env, "AUDITEXPORT_ADMIN_TOKEN"); ok {
		s.AdminToken = token
	} else if data, err := os.ReadFile(filepath.Join(opts.DataDir, "admin-token")); err == nil {
		s.AdminToken = strings.TrimSpace(string(data))
	}
	return s, nil
}

func envValue(env []string, name string) (string, bool) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// scan copies the server's log lines and reports the address of its "listening" line.
func (s *Server) scan(r io.Reader, listening chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		s.logs.Write(append(line, '\n'))
		var entry struct{ Msg, Addr string }
		if json.Unmarshal(line, &entry) == nil && entry.Msg == "listening" {
			select {
			case listening <- entry.Addr:
			default:
			}
		}
	}
}

// Logs is everything the server has written so far.
func (s *Server) Logs() string { return s.logs.String() }

// Running reports whether the process has not exited.
func (s *Server) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Wait waits up to timeout for the process to exit and returns its exit error.
func (s *Server) Wait(timeout time.Duration) error {
	select {
	case <-s.done:
		return s.err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %v", timeout)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (s *Server) Stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.Wait(30 * time.Second); err != nil {
		s.t.Fatalf("server did not stop cleanly: %v\n%s", err, s.Logs())
	}
}

// Kill ends the process with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	s.Wait(30 * time.Second)
}

// Response is a decoded GraphQL response.
type Response struct {
	Status int
	Body   string
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// GraphQL posts an operation to /api/audit/graphql with token.
func (s *Server) GraphQL(token, query string, vars map[string]any) Response {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, s.URL+"/api/audit/graphql", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("POST graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := Response{Status: resp.StatusCode, Body: string(raw)}
	if err := json.Unmarshal(raw, &out); err != nil {
		s.t.Fatalf("decode graphql response %q: %v", raw, err)
	}
	return out
}

// MustGraphQL is GraphQL failing the test on any error, decoding data into out.
func (s *Server) MustGraphQL(token, query string, vars map[string]any, out any) {
	s.t.Helper()
	resp := s.GraphQL(token, query, vars)
	if resp.Status != http.StatusOK || len(resp.Errors) > 0 {
		s.t.Fatalf("graphql %q: status %d: %s", query, resp.Status, resp.Body)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Data, out); err != nil {
			s.t.Fatalf("decode data: %v", err)
		}
	}
}

// LogBuffer collects output written from several goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig to the process.
func (s *Server) Signal(sig os.Signal) { s.cmd.Process.Signal(sig) }

// CreateConfiguration creates an export configuration through the API, as the admin, and
// returns its id: with an access key, or through an assumed role when data has a roleArn.
func (s *Server) CreateConfiguration(data map[string]any) string {
	s.t.Helper()
	mutation, input := "createS3AccessKeyExportConfiguration", "S3AccessKeyExportConfigurationInput"
	if _, ok := data["roleArn"]; ok {
		mutation, input = "createS3AssumedRoleExportConfiguration", "S3AssumedRoleExportConfigurationInput"
	}
	var out map[string]struct{ ID string }
	s.MustGraphQL(s.AdminToken, `mutation($d: `+input+`!) { `+mutation+`(data: $d) { id } }`, map[string]any{"d": data}, &out)
	return out[mutation].ID
}

// IntrospectionQuery is the query GraphiQL sends when the playground opens: the API's limits
// must let it through.
const IntrospectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`
