package exporter

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/store"
)

// VerifyKeyPrefix starts the name of every verification object.
const VerifyKeyPrefix = "auditexport-verify-"

// VerifyKey is where a check at time at writes: <path>/auditexport-verify-<unix seconds>.
func VerifyKey(path string, at time.Time) string {
	return joinKey(path, fmt.Sprintf("%s%d", VerifyKeyPrefix, at.Unix()))
}

// verify writes the verification object of c at time at, within timeout: a write like every
// export's, so what stops exports (a policy demanding SSE-KMS, a token without write
// permission) shows in the check, not first in an export.
func verify(ctx context.Context, dest destination.Destination, c store.ExportConfiguration, at time.Time, timeout time.Duration) error {
	body := fmt.Sprintf("auditexport connectivity check of export configuration %s at %s\n", c.ID, at.UTC().Format(time.RFC3339))
	return destination.WithinTime(ctx, timeout, func(ctx context.Context) error {
		return dest.Put(ctx, smallObject(VerifyKey(c.Path, at), "text/plain; charset=utf-8", []byte(body), nil))
	})
}

// smallObject is an object held in memory.
func smallObject(key, contentType string, body []byte, metadata map[string]string) destination.Object {
	return destination.Object{Key: key, Body: bytes.NewReader(body), Size: int64(len(body)), ContentType: contentType, Metadata: metadata}
}

// maxStatusLen bounds the status text; services' messages are short, anything longer is noise.
const maxStatusLen = 1000

// FailureStatus is the connectionStatus of a failed check, in Immuta's form:
//
//	Error testing access to S3 using AccessKey <accessKeyId> - <code>: <message>
//	Error testing access to S3 using AssumedRole <roleArn> - <code>: <message>
//	Error testing access to ADLS using SasToken - <code>: <message>
//
// dest is the destination checked, nil when none could be built. Every string in redact
// (secrets, tokens) is masked, whatever the error said.
func FailureStatus(c store.ExportConfiguration, dest destination.Destination, err error, redact ...string) string {
	return failureText("Error testing access to", c, dest, err, redact...)
}

// failureText is "<what> <destination> - <code>: <message>", masking redact.
func failureText(what string, c store.ExportConfiguration, dest destination.Destination, err error, redact ...string) string {
	var cause string
	if dest != nil {
		cause = dest.Explain(err)
	} else if cause = explainUnbuilt(err); cause == "" {
		cause = "InternalError: the service could not prepare the destination (its log says why)"
	}
	status := what + " " + Describe(c) + " - " + cause
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

// explainUnbuilt explains why no destination could be built for a configuration (its endpoint
// is not allowed), or returns "".
func explainUnbuilt(err error) string {
	cause, _ := destination.ExplainTransport(err, "")
	return cause
}

// logUnexplained logs an error a status text does not name: no destination could be built for a
// reason of the service's own (its secret could not be read).
func logUnexplained(log *slog.Logger, id string, dest destination.Destination, err error) {
	if dest == nil && explainUnbuilt(err) == "" {
		log.Error("prepare destination", "config_id", id, "error", err)
	}
}
