package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// The findings of issue 16's "The service reaches where it should not" and "One stuck
// destination", each against the real binary.

// hungAddr is a hung endpoint (hung_test.go), hanging from the start, and its host:port.
func hungAddr(t *testing.T) (*hungEndpoint, string) {
	h := newHungEndpoint(t)
	h.hang()
	return h, strings.TrimPrefix(h.URL, "http://")
}

// accepted is how many connections h took.
func accepted(h *hungEndpoint) int {
	_, n := h.counts()
	return n
}

// createS3 creates an access-key configuration for endpoint and returns its connectionStatus.
func createS3(t *testing.T, s *testserver.Server, endpoint string) (id, status string) {
	t.Helper()
	var out struct {
		C struct{ ID, ConnectionStatus string } `json:"createS3AccessKeyExportConfiguration"`
	}
	s.MustGraphQL(s.AdminToken, `mutation($d: S3AccessKeyExportConfigurationInput!) { createS3AccessKeyExportConfiguration(data: $d) { id connectionStatus } }`,
		map[string]any{"d": map[string]any{"interval": "EVERY_HOUR", "bucket": "audit-bucket", "region": "us-east-1",
			"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "endpoint": endpoint}}, &out)
	return out.C.ID, out.C.ConnectionStatus
}

// By default the service connects to no metadata, link-local, loopback or private address, named
// or literal, for S3 and ADLS alike, and says so; allowing private endpoints never allows
// metadata ones.
func TestEndpointsSafeByDefault(t *testing.T) {
	listener, addr := hungAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	server := testserver.Start(t, testserver.Options{Env: []string{"AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS="}}) // the default: none
	const prefix = "Error testing access to S3 using AccessKey AKIAIOSFODNN7EXAMPLE - EndpointNotAllowed: "
	for endpoint, want := range map[string]string{
		"http://169.254.169.254":   "169.254.169.254 is, or resolves to, a link-local, cloud metadata or reserved address, which this server never connects to",
		"http://[fd00:ec2::254]":   "fd00:ec2::254 is, or resolves to, a link-local",
		"http://" + addr:           "127.0.0.1 is, or resolves to, a loopback or private address, which this server connects to only for endpoints its operator allows (--allow-private-endpoints)",
		"http://localhost:" + port: "localhost is, or resolves to, a loopback or private address",
		"http://10.11.12.13:9000":  "10.11.12.13 is, or resolves to, a loopback or private address",
	} {
		if _, status := createS3(t, server, endpoint); !strings.HasPrefix(status, prefix+want) {
			t.Errorf("%s: connectionStatus %q\nwant prefix %q", endpoint, status, prefix+want)
		}
	}
	var adls struct {
		C struct{ ConnectionStatus string } `json:"createAdlsSasTokenEndpointConfiguration"`
	}
	server.MustGraphQL(server.AdminToken, `mutation { createAdlsSasTokenEndpointConfiguration(data: { interval: "EVERY_HOUR", storageAccount: "acct1",
		fileSystem: "files", sasToken: "sv=2024-01-01&sp=cw&sig=c2lnbmF0dXJl", endpoint: "http://169.254.169.254/acct1" }) { connectionStatus } }`, nil, &adls)
	if want := "Error testing access to ADLS using SasToken - EndpointNotAllowed: 169.254.169.254 is, or resolves to, a link-local"; !strings.HasPrefix(adls.C.ConnectionStatus, want) {
		t.Errorf("ADLS at the metadata address: %q", adls.C.ConnectionStatus)
	}
	if n := accepted(listener); n != 0 {
		t.Fatalf("the service connected %d times to a loopback listener it was not allowed to reach", n)
	}

	anyPrivate := testserver.Start(t, testserver.Options{Env: []string{"AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS=any"}})
	if _, status := createS3(t, anyPrivate, "http://169.254.169.254"); !strings.Contains(status, "EndpointNotAllowed: 169.254.169.254 is, or resolves to, a link-local") {
		t.Errorf("metadata with every private endpoint allowed: %q", status)
	}
	if !strings.Contains(anyPrivate.Logs(), `"allow_private_endpoints":"any"`) {
		t.Error("the server does not log what it allows")
	}
	if bad, err := testserver.Launch(t, testserver.Options{Env: []string{"AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS=http://minio:9000"}}); err == nil || bad.Running() {
		t.Error("a malformed --allow-private-endpoints was accepted")
	}
}

// Something that is not the destination service (an internal web server, a redirect) is
// summarised by status and media type, never quoted, and a redirect is not followed.
func TestRepliesNotFromTheServiceAreSummarised(t *testing.T) {
	target, redirectTarget := hungAddr(t)
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/redirect") {
			http.Redirect(w, r, "http://"+redirectTarget+"/latest/meta-data/", http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("x-ms-error-code", "InternalSecret")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`<Error><Code>InternalSecret</Code><Message>db password is hunter2</Message></Error>`))
	}))
	defer internal.Close()
	host := strings.TrimPrefix(internal.URL, "http://")
	server := testserver.Start(t, testserver.Options{}) // 127.0.0.1 allowed, as an operator's internal S3 would be
	_, status := createS3(t, server, internal.URL)
	want := "Error testing access to S3 using AccessKey AKIAIOSFODNN7EXAMPLE - UnexpectedResponse: " + host +
		" answered HTTP 403 Forbidden (application/xml), which is not a reply of S3: is the endpoint right?"
	if status != want {
		t.Errorf("S3 status %q\nwant      %q", status, want)
	}
	var adls struct {
		C struct{ ConnectionStatus string } `json:"createAdlsSasTokenEndpointConfiguration"`
	}
	server.MustGraphQL(server.AdminToken, `mutation($e: String) { createAdlsSasTokenEndpointConfiguration(data: { interval: "EVERY_HOUR", storageAccount: "acct1",
		fileSystem: "files", sasToken: "sv=2024-01-01&sp=cw&sig=c2lnbmF0dXJl", endpoint: $e }) { connectionStatus } }`, map[string]any{"e": internal.URL + "/redirect"}, &adls)
	if want := "Error testing access to ADLS using SasToken - UnexpectedResponse: " + host + " answered HTTP 307 Temporary Redirect"; !strings.HasPrefix(adls.C.ConnectionStatus, want) {
		t.Errorf("ADLS status %q\nwant prefix %q", adls.C.ConnectionStatus, want)
	}
	var all struct {
		GetAllExportConfigurations []struct{ ConnectionStatus string }
	}
	server.MustGraphQL(server.AdminToken, `{ getAllExportConfigurations { connectionStatus } }`, nil, &all)
	for _, c := range all.GetAllExportConfigurations {
		if strings.Contains(c.ConnectionStatus, "hunter2") || strings.Contains(c.ConnectionStatus, "InternalSecret") {
			t.Fatalf("an internal server's reply was quoted: %q", c.ConnectionStatus)
		}
	}
	if strings.Contains(server.Logs(), "hunter2") {
		t.Error("an internal server's reply was logged")
	}
	if accepted(target) != 0 {
		t.Fatal("the redirect was followed")
	}
}

// A refused port and one that accepts and never answers read alike: checks cannot scan ports.
func TestRefusedAndSilentPortsLookAlike(t *testing.T) {
	_, silent := hungAddr(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	server := testserver.Start(t, testserver.Options{Args: []string{"--check-timeout", "2s"}})
	_, silentStatus := createS3(t, server, "http://"+silent)
	_, refusedStatus := createS3(t, server, "http://"+refused)
	if strings.ReplaceAll(silentStatus, silent, "ADDR") != strings.ReplaceAll(refusedStatus, refused, "ADDR") ||
		!strings.Contains(refusedStatus, "NetworkError: no reply from "+refused) {
		t.Fatalf("silent:  %q\nrefused: %q", silentStatus, refusedStatus)
	}
}

// Two configurations whose endpoint accepts connections and never answers fail their exports
// within the response timeout, instead of holding the workers; a healthy configuration exports.
func TestStuckDestinationCostsOnlyItsOwnConfiguration(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	hung, stuck := hungAddr(t)
	server := testserver.Start(t, testserver.Options{Args: []string{"--export-workers", "2", "--check-timeout", "1s",
		"--destination-response-timeout", "1s", "--export-retry-min", "1h"}})
	healthy := server.CreateConfiguration(map[string]any{"interval": "EVERY_24_HOURS", "bucket": bucket, "path": "audit", "region": "us-east-1",
		"accessKeyId": key, "secretAccessKey": secret, "endpoint": srv.Endpoint})
	stuckA, _ := createS3(t, server, "http://"+stuck)
	stuckB, _ := createS3(t, server, "http://"+stuck)
	ingestNDJSON(t, server, eventtest.NDJSON(0, 200, time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), time.Second))

	runNow := func(id string) exportJob {
		var out struct{ RunExportNow exportJob }
		server.MustGraphQL(server.AdminToken, `mutation($id: ID!) { runExportNow(id: $id) { id status attempts failureReason } }`, map[string]any{"id": id}, &out)
		return out.RunExportNow
	}
	var wg sync.WaitGroup
	jobs := make([]exportJob, 2)
	for i, id := range []string{stuckA, stuckB} {
		wg.Go(func() { jobs[i] = runNow(id) })
	}
	wg.Wait()
	for _, job := range jobs {
		if job.Status != "FAILED" || !strings.Contains(str(job.FailureReason), "NetworkError: no reply from "+stuck) {
			t.Fatalf("export to the stuck endpoint: %+v (%s)", job, str(job.FailureReason))
		}
	}
	if job := runNow(healthy); job.Status != "SUCCEEDED" {
		t.Fatalf("the healthy configuration's export: %+v", job)
	}
	if accepted(hung) == 0 {
		t.Fatal("the stuck endpoint was never reached: the test proves nothing")
	}
}
