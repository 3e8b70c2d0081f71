package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/auditexport/auditexport/store"
)

// VerifyKeyPrefix starts the name of every verification object.
const VerifyKeyPrefix = "auditexport-verify-"

// VerifyKey is where every check of a configuration writes, each overwriting the last:
// <path>/auditexport-verify-<configuration id>. One object per configuration rather than one per
// check (<unix seconds>): checks run on every change, daily, and every few minutes while a
// destination fails, and a customer who grants only PutObject could never remove the pile. The
// object's body says when the last check wrote it.
func VerifyKey(path, configID string) string {
	return joinKey(path, VerifyKeyPrefix+configID)
}

// PutObjectAPI is the one call a destination must allow.
type PutObjectAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// verify writes the verification object of c at time at, within timeout.
func verify(ctx context.Context, client PutObjectAPI, c store.ExportConfiguration, at time.Time, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body := fmt.Sprintf("auditexport connectivity check of export configuration %s at %s\n", c.ID, at.UTC().Format(time.RFC3339))
	// Sent as exports are, so a bucket policy demanding SSE-KMS (or a KMS key the identity may
	// not use) shows in the check, not first in an export.
	_, err := client.PutObject(ctx, putObjectInput(c, VerifyKey(c.Path, c.ID), "text/plain; charset=utf-8", []byte(body)))
	return err
}

// putObjectInput is a PutObject of body to key in c's bucket as the service sends every small
// object: with a CRC32C checksum (Object Lock buckets refuse a PutObject without one) and c's
// server-side encryption.
func putObjectInput(c store.ExportConfiguration, key, contentType string, body []byte) *s3.PutObjectInput {
	sse, kmsKey := encryption(c)
	return &s3.PutObjectInput{
		Bucket: aws.String(c.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String(contentType), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
		ServerSideEncryption: sse, SSEKMSKeyId: kmsKey,
	}
}

// encryption is the server-side encryption every PutObject for c asks of S3.
func encryption(c store.ExportConfiguration) (types.ServerSideEncryption, *string) {
	var kmsKey *string
	if c.SSEKMSKeyID != "" {
		kmsKey = aws.String(c.SSEKMSKeyID)
	}
	return types.ServerSideEncryption(c.ServerSideEncryption), kmsKey
}

// maxStatusLen bounds the status text; AWS messages are short, anything longer is noise.
const maxStatusLen = 1000

// FailureStatus is the connectionStatus of a failed check, in Immuta's form:
//
//	Error testing access to S3 using AccessKey <accessKeyId> - <code>: <message>
//	Error testing access to S3 using AssumedRole <roleArn> - <code>: <message>
//
// Every string in redact (secrets, session tokens) is masked, whatever the error said.
func FailureStatus(c store.ExportConfiguration, err error, timeout time.Duration, redact ...string) string {
	return failureText("Error testing access to S3", c, err, timeout, redact...)
}

// failureText is "<what> using AccessKey|AssumedRole <id> - <code>: <message>", masking redact.
func failureText(what string, c store.ExportConfiguration, err error, timeout time.Duration, redact ...string) string {
	using := "AccessKey " + c.AccessKeyID
	if c.Kind == store.KindS3AssumedRole {
		using = "AssumedRole " + c.RoleARN
	}
	status := what + " using " + using + " - " + cause(c, err, timeout)
	for _, secret := range redact {
		if secret != "" {
			status = strings.ReplaceAll(status, secret, "[redacted]")
		}
	}
	if len(status) > maxStatusLen {
		status = status[:maxStatusLen] + "…"
	}
	return status
}

// cause names what went wrong as "<code>: <message>": the AWS error code and message when the
// service answered, else a code of our own for network and credential failures. SDK wrapping
// ("operation error S3: PutObject, https response error StatusCode: 403, RequestID: …") is
// dropped: it helps no customer and leaks request internals.
func cause(c store.ExportConfiguration, err error, timeout time.Duration) string {
	stsOp := findOperation(err, "STS")
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		msg := apiErr.ErrorMessage()
		if msg == "" {
			msg = "(no message)"
		}
		if stsOp != nil {
			msg = "sts:AssumeRole refused: " + msg
		}
		return apiErr.ErrorCode() + ": " + msg
	}
	host := dialedHost(err, c)
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("RequestTimeout: no answer from %s within %s", host, timeout)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("NetworkError: cannot resolve %s", dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("NetworkError: connection to %s refused", host)
	case errors.As(err, &opErr):
		return fmt.Sprintf("NetworkError: %s to %s failed: %v", opErr.Op, host, opErr.Err)
	case errors.Is(err, context.Canceled):
		return "Canceled: the check was interrupted"
	case strings.Contains(err.Error(), "get identity") || strings.Contains(err.Error(), "retrieve credentials"):
		return "CredentialsError: the service could not obtain AWS credentials to assume the role with"
	}
	return "UnknownError: " + innermost(err).Error()
}

// findOperation returns the first SDK operation error of service in err's chain.
func findOperation(err error, service string) *smithy.OperationError {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if op, ok := e.(*smithy.OperationError); ok && op.ServiceID == service {
			return op
		}
	}
	return nil
}

func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// dialedHost is the host the failed request went to: from the HTTP client's error when there is
// one (it reflects AWS_ENDPOINT_URL_* overrides and STS), else the configured destination.
func dialedHost(err error, c store.ExportConfiguration) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if u, perr := url.Parse(urlErr.URL); perr == nil && u.Host != "" {
			return u.Host
		}
	}
	if u, perr := url.Parse(c.Endpoint); perr == nil && u.Host != "" {
		return u.Host
	}
	return "s3." + c.Region + ".amazonaws.com"
}
