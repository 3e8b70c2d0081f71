package s3

import (
	"context"
	"errors"
	"net"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/auditexport/auditexport/exporter/destination"
)

// typed replaces an S3 reply that did not come from S3 (no x-amz-request-id or x-amz-id-2, which
// every reply of S3 and of the S3-compatible servers carries) by its summary, so nothing of what
// an internal server said reaches a customer. Replies of STS, the service's own endpoint, stay.
func (d *Destination) typed(err error) error {
	if findOperation(err, "STS") != nil {
		return err
	}
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) {
		return err // no reply
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() != 0 && !fromS3(respErr.Response) {
		return destination.NewUnexpectedReply("S3", d.host(), respErr.Response.Response)
	}
	var undecodable *smithy.DeserializationError
	if errors.As(err, &undecodable) {
		return destination.NewUnexpectedReply("S3", d.host(), nil)
	}
	return err
}

func fromS3(resp *smithyhttp.Response) bool {
	return resp != nil && resp.Response != nil && (resp.Header.Get("X-Amz-Request-Id") != "" || resp.Header.Get("X-Amz-Id-2") != "")
}

// Explain names what went wrong as "<code>: <message>": S3's (or STS's) error code and message
// when it answered, else a code of the transport's for network, policy and timeout failures.
// SDK wrapping ("operation error S3: PutObject, https response error StatusCode: 403,
// RequestID: …") is dropped: it helps no customer and leaks request internals.
func (d *Destination) Explain(err error) string {
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
	if stsOp != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		var netErr net.Error
		if errors.As(err, &netErr) {
			return "NetworkError: the service could not reach AWS STS to assume the role"
		}
		return "CredentialsError: the service could not obtain AWS credentials to assume the role with"
	}
	if cause, ok := destination.ExplainTransport(err, d.host()); ok {
		return cause
	}
	return "UnknownError: " + destination.Innermost(err).Error()
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
