package destination

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"
)

// EndpointError is an endpoint the server's policy on names (--allowed-endpoints) refuses.
type EndpointError struct{ Err error }

func (e *EndpointError) Error() string { return e.Err.Error() }
func (e *EndpointError) Unwrap() error { return e.Err }

// NoAnswerError is a request that got no reply: the connection was refused, reset or timed out,
// or the reply's headers did not come within the response timeout. These are one error, with one
// text, so the service cannot be used to tell closed ports from open or filtered ones.
type NoAnswerError struct {
	Host string
	Err  error // for the log; never shown to customers
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("no reply from %s: it could not be connected to, or did not answer in time", cmp.Or(e.Host, "the destination"))
}

func (e *NoAnswerError) Unwrap() error { return e.Err }

// Temporary tells the AWS SDK the request may be retried.
func (e *NoAnswerError) Temporary() bool { return true }

// ProgressError is a request whose body stopped moving for the progress timeout: the
// destination stopped reading a part or block, or stopped sending its reply.
type ProgressError struct {
	Host  string
	After time.Duration
}

func (e *ProgressError) Error() string {
	return fmt.Sprintf("the transfer with %s made no progress for %s", e.Host, e.After)
}

// Timeout tells the SDKs the request may be retried.
func (e *ProgressError) Timeout() bool   { return true }
func (e *ProgressError) Temporary() bool { return true }

// TimeoutError is a call cut short by the caller's own deadline (a check's or an upload's time).
type TimeoutError struct {
	After time.Duration
	Err   error
}

func (e *TimeoutError) Error() string { return fmt.Sprintf("did not finish within %s", e.After) }
func (e *TimeoutError) Unwrap() error { return e.Err }

// WithinTime runs call with ctx bounded by timeout. When the deadline cuts it short, the error
// is a TimeoutError if the destination had replied to something, else a NoAnswerError: a
// destination that accepts connections and stays silent reads as one that refuses them.
func WithinTime(ctx context.Context, timeout time.Duration, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var replied atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotFirstResponseByte: func() { replied.Store(true) }})
	err := call(ctx)
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	if !replied.Load() {
		var noAnswer *NoAnswerError
		if errors.As(err, &noAnswer) {
			return err
		}
		return &NoAnswerError{Err: err}
	}
	return &TimeoutError{After: timeout, Err: err}
}

// UnexpectedReplyError is a reply that did not come from the destination service (it lacks the
// headers every reply of the service carries): an internal web server, a proxy's error page, a
// redirect. Only its status and media type are kept; its body is never quoted.
type UnexpectedReplyError struct {
	Host        string
	Service     string // "S3", "Azure Blob Storage"
	Status      int
	ContentType string
}

// NewUnexpectedReply summarises resp, a reply that is not service's.
func NewUnexpectedReply(service, host string, resp *http.Response) *UnexpectedReplyError {
	e := &UnexpectedReplyError{Host: host, Service: service}
	if resp != nil {
		e.Status = resp.StatusCode
		if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && len(mt) <= 100 {
			e.ContentType = mt
		}
	}
	return e
}

func (e *UnexpectedReplyError) Error() string {
	status := fmt.Sprintf("HTTP %d", e.Status)
	if text := http.StatusText(e.Status); text != "" {
		status += " " + text
	}
	return fmt.Sprintf("%s answered %s (%s), which is not a reply of %s: is the endpoint right?", e.Host, status, cmp.Or(e.ContentType, "no content type"), e.Service)
}

// RetryableError and NonRetriable tell the SDKs not to retry: it would answer the same.
func (e *UnexpectedReplyError) RetryableError() bool { return false }
func (e *UnexpectedReplyError) NonRetriable()        {}

// ExplainTransport is the cause of err, "<code>: <message>", when it is one any destination can
// meet: an address the policy refuses, no reply, a stalled transfer, a reply from something else,
// a name that does not resolve, an untrusted certificate, the caller's deadline or cancellation.
// host names the destination when the error does not. ok is false for anything else: the
// service's own errors, which each implementation explains.
func ExplainTransport(err error, host string) (cause string, ok bool) {
	var (
		named    *EndpointError
		refused  *AddressError
		reply    *UnexpectedReplyError
		stalled  *ProgressError
		noAnswer *NoAnswerError
		timeout  *TimeoutError
		dnsErr   *net.DNSError
		certErr  *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &named):
		return "EndpointNotAllowed: " + named.Error(), true
	case errors.As(err, &refused):
		return "EndpointNotAllowed: " + refused.Error(), true
	case errors.As(err, &reply):
		return "UnexpectedResponse: " + reply.Error(), true
	case errors.As(err, &stalled):
		return "RequestTimeout: " + stalled.Error(), true
	case errors.As(err, &noAnswer):
		if noAnswer.Host == "" {
			noAnswer = &NoAnswerError{Host: host}
		}
		return "NetworkError: " + noAnswer.Error(), true
	case errors.As(err, &dnsErr):
		return "NetworkError: cannot resolve " + dnsErr.Name, true
	case errors.As(err, &certErr):
		return fmt.Sprintf("TLSError: the certificate of %s is not trusted: %s", host, FirstLine(certErr.Err.Error())), true
	case errors.As(err, &timeout):
		return fmt.Sprintf("RequestTimeout: the request to %s %s", host, timeout.Error()), true
	case errors.Is(err, context.Canceled):
		return "Canceled: interrupted before it finished", true
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("RequestTimeout: no reply from %s in time", host), true
	}
	return "", false
}

// FirstLine is s up to its first line break: services' messages (Azure's) append request ids
// and times on further lines.
func FirstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return strings.TrimSpace(s)
}

// Innermost is the error at the end of err's chain: what the SDKs' wrapping started from.
func Innermost(err error) error {
	for next := errors.Unwrap(err); next != nil; next = errors.Unwrap(err) {
		err = next
	}
	return err
}
