package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/auditexport/auditexport/store"
)

func TestVerifyKey(t *testing.T) {
	t.Parallel()
	const id = "01a1ffdb-3f23-7df1-80b5-645a8cda7506"
	if got := VerifyKey("", id); got != "auditexport-verify-"+id {
		t.Errorf("no path: %q", got)
	}
	if got := VerifyKey("a/b", id); got != "a/b/auditexport-verify-"+id {
		t.Errorf("with path: %q", got)
	}
}

func TestFailureStatus(t *testing.T) {
	t.Parallel()
	ak := store.ExportConfiguration{Kind: store.KindS3AccessKey, AccessKeyID: "AKIAEXAMPLE", Region: "eu-west-1"}
	role := store.ExportConfiguration{Kind: store.KindS3AssumedRole, RoleARN: "arn:aws:iam::123456789012:role/r", Region: "eu-west-1", Endpoint: "http://127.0.0.1:9000"}
	s3Denied := &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject",
		Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}}
	stsDenied := &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: fmt.Errorf("get identity: %w",
		&smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole"}})}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := map[string]struct {
		c    store.ExportConfiguration
		err  error
		want string
	}{
		"S3 refuses": {ak, s3Denied, "Error testing access to S3 using AccessKey AKIAEXAMPLE - AccessDenied: Access Denied"},
		"STS refuses": {role, stsDenied,
			"Error testing access to S3 using AssumedRole arn:aws:iam::123456789012:role/r - AccessDenied: sts:AssumeRole refused: not authorized to perform sts:AssumeRole"},
		"timeout on AWS": {ak, context.DeadlineExceeded, "Error testing access to S3 using AccessKey AKIAEXAMPLE - RequestTimeout: no answer from s3.eu-west-1.amazonaws.com within 10s"},
		"refused":        {role, fmt.Errorf("send: %w", refused), "Error testing access to S3 using AssumedRole arn:aws:iam::123456789012:role/r - NetworkError: connection to 127.0.0.1:9000 refused"},
		"refused by an overridden endpoint": {ak, &url.Error{Op: "Put", URL: "http://127.0.0.1:9/bucket/key", Err: refused},
			"Error testing access to S3 using AccessKey AKIAEXAMPLE - NetworkError: connection to 127.0.0.1:9 refused"},
		"DNS":               {ak, &net.DNSError{Name: "s3.nowhere.example", Err: "no such host"}, "Error testing access to S3 using AccessKey AKIAEXAMPLE - NetworkError: cannot resolve s3.nowhere.example"},
		"no own identity":   {role, errors.New("operation error S3: PutObject, get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found"), "CredentialsError: the service could not obtain AWS credentials to assume the role with"},
		"something else":    {ak, fmt.Errorf("wrapped: %w", errors.New("disk full")), "UnknownError: disk full"},
		"no message at all": {ak, &smithy.GenericAPIError{Code: "Forbidden"}, "Forbidden: (no message)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := FailureStatus(tc.c, tc.err, 10*time.Second); !strings.HasSuffix(got, tc.want) || !strings.HasPrefix(got, "Error testing access to S3 using ") {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestFailureStatusRedactsAndBounds(t *testing.T) {
	t.Parallel()
	c := store.ExportConfiguration{Kind: store.KindS3AccessKey, AccessKeyID: "AKIA"}
	err := &smithy.GenericAPIError{Code: "Weird", Message: "echoing wJalrXUtnFEMI/K7MDENG " + strings.Repeat("x", 5000)}
	got := FailureStatus(c, err, time.Second, "wJalrXUtnFEMI/K7MDENG")
	if strings.Contains(got, "wJalrXUtnFEMI") || !strings.Contains(got, "[redacted]") || len(got) > maxStatusLen+10 {
		t.Fatalf("status = %.200q (len %d)", got, len(got))
	}
}

func TestRecheckSchedule(t *testing.T) {
	t.Parallel()
	c := NewChecker(CheckerConfig{RetryMin: time.Minute, RetryMax: 15 * time.Minute, HealthyInterval: 24 * time.Hour}, nil, nil)
	for failures, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 4: 8 * time.Minute, 5: 15 * time.Minute, 50: 15 * time.Minute} {
		if got := c.recheckAfter(store.ExportConfiguration{ConnectionStatus: "Error", CheckFailures: failures}); got != want {
			t.Errorf("after %d failures: %v, want %v", failures, got, want)
		}
	}
	if got := c.recheckAfter(store.ExportConfiguration{ConnectionStatus: store.ConnectionSuccess}); got != 24*time.Hour {
		t.Errorf("healthy: %v", got)
	}
	now := time.Now()
	never := store.ExportConfiguration{ConnectionStatus: store.ConnectionPending}
	recent := store.ExportConfiguration{ConnectionStatus: store.ConnectionSuccess, ConnectionCheckedAt: now.Add(-time.Hour)}
	old := store.ExportConfiguration{ConnectionStatus: "Error", CheckFailures: 1, ConnectionCheckedAt: now.Add(-2 * time.Minute)}
	if !c.due(never, now) || c.due(recent, now) || !c.due(old, now) {
		t.Error("due() disagrees with the schedule")
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
	if got := failureText("Error testing access to S3", c, err, time.Second); got != want {
		t.Fatalf("status %q\nwant   %q", got, want)
	}
	c.Endpoint = "https://s3.example.com"
	if _, err := cl.For(c, func() (string, error) { return "secret-value", nil }); err != nil {
		t.Fatalf("client for an allowed endpoint: %v", err)
	}
}
