package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/auditexport/auditexport/store"
)

func TestVerifyKey(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	if got := VerifyKey("", at); got != "auditexport-verify-1700000000" {
		t.Errorf("no path: %q", got)
	}
	if got := VerifyKey("a/b", at); got != "a/b/auditexport-verify-1700000000" {
		t.Errorf("with path: %q", got)
	}
}

func TestFailureStatusRedactsAndBounds(t *testing.T) {
	t.Parallel()
	c := store.ExportConfiguration{ID: "c1", Kind: store.KindS3AccessKey, AccessKeyID: "AKIA", Region: "us-east-1"}
	dest, err := NewClients(ClientsConfig{}).For(c, func() (string, error) { return "wJalrXUtnFEMI/K7MDENG", nil })
	if err != nil {
		t.Fatal(err)
	}
	err = &smithy.GenericAPIError{Code: "Weird", Message: "echoing wJalrXUtnFEMI/K7MDENG " + strings.Repeat("x", 5000)}
	got := FailureStatus(c, dest, err, "wJalrXUtnFEMI/K7MDENG")
	if !strings.HasPrefix(got, "Error testing access to S3 using AccessKey AKIA - Weird: echoing [redacted] xxx") || len(got) > maxStatusLen+10 {
		t.Fatalf("status = %.200q (len %d)", got, len(got))
	}
}

func TestRecheckSchedule(t *testing.T) {
	t.Parallel()
	c := NewChecker(CheckerConfig{RetryMin: time.Minute, RetryMax: 15 * time.Minute, HealthyInterval: 24 * time.Hour}, nil, nil)
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for failures, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 4: 8 * time.Minute, 5: 15 * time.Minute, 50: 15 * time.Minute} {
		if got := c.nextCheck("Error", failures, at).Sub(at); got != want {
			t.Errorf("after %d failures: %v, want %v", failures, got, want)
		}
	}
	if got := c.nextCheck(store.ConnectionSuccess, 0, at).Sub(at); got != 24*time.Hour {
		t.Errorf("healthy: %v", got)
	}
}

// A configuration stored before the endpoint policy was tightened gets no client: its status says
// why, in Immuta's form.
func TestClientsRefuseEndpointsOutsideThePolicy(t *testing.T) {
	t.Parallel()
	policy, err := store.ParseEndpointPolicy("s3.example.com")
	if err != nil {
		t.Fatal(err)
	}
	cl := NewClients(ClientsConfig{Endpoints: policy})
	c := store.ExportConfiguration{ID: "c1", Kind: store.KindS3AccessKey, AccessKeyID: "AKIA1", Region: "us-east-1", Endpoint: "http://10.1.2.3:9000"}
	secretRead := false
	_, err = cl.For(c, func() (string, error) { secretRead = true; return "secret-value", nil })
	if err == nil || secretRead {
		t.Fatalf("client for an endpoint outside the policy: %v (secret read: %v)", err, secretRead)
	}
	want := "Error testing access to S3 using AccessKey AKIA1 - EndpointNotAllowed: 10.1.2.3:9000 is not among this server's allowed endpoints"
	if got := FailureStatus(c, nil, err); got != want {
		t.Fatalf("status %q\nwant   %q", got, want)
	}
	c.Endpoint = "https://s3.example.com"
	if _, err := cl.For(c, func() (string, error) { return "secret-value", nil }); err != nil {
		t.Fatalf("client for an allowed endpoint: %v", err)
	}
}
