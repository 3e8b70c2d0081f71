package adls

import (
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/auditexport/auditexport/exporter/destination"
)

// ServiceError is an error reply of Azure Storage: its code, and its message and detail, first
// lines only (further lines hold request ids and times).
type ServiceError struct {
	Status  int
	Code    string
	Message string
	Detail  string // AuthenticationErrorDetail, for authentication failures
	Err     error
}

func (e *ServiceError) Error() string { return e.Code + ": " + e.Message }
func (e *ServiceError) Unwrap() error { return e.Err }

// typed turns an error reply into a ServiceError, read once here (its body can be read only
// once), or into a summary when it did not come from Azure, so nothing of what another server
// said reaches a customer.
func (d *Destination) typed(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	if !fromAzure(re.RawResponse) {
		return destination.NewUnexpectedReply(service, d.host, re.RawResponse)
	}
	se := &ServiceError{Status: re.StatusCode, Code: re.ErrorCode, Err: err}
	if body := re.RawResponse.Body; body != nil {
		data, _ := io.ReadAll(io.LimitReader(body, 64<<10))
		var reply struct{ Code, Message, AuthenticationErrorDetail string }
		if xml.Unmarshal(data, &reply) == nil {
			se.Code = cmp.Or(se.Code, reply.Code)
			se.Message = destination.FirstLine(reply.Message)
			se.Detail = destination.FirstLine(reply.AuthenticationErrorDetail)
		}
	}
	se.Code = cmp.Or(se.Code, strings.ReplaceAll(http.StatusText(se.Status), " ", ""), fmt.Sprintf("HTTP%d", se.Status))
	return se
}

// Explain names what went wrong as "<code>: <message>": Azure's error code, then the likely
// cause in the customer's terms when the token or the configuration tells it (an expired or not
// yet valid token, a token without create or write permission, an unknown file system or
// account), then Azure's own message.
func (d *Destination) Explain(err error) string {
	var se *ServiceError
	if errors.As(err, &se) {
		msg := cmp.Or(se.Message, "(no message)")
		if se.Detail != "" {
			msg += " " + se.Detail
		}
		if cause := d.cause(se); cause != "" {
			msg = cause + ". " + msg
		}
		return se.Code + ": " + msg
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && d.config.Endpoint == "" {
		return fmt.Sprintf("NetworkError: cannot resolve %s: is there a storage account named %q?", dnsErr.Name, d.config.StorageAccount)
	}
	if cause, ok := destination.ExplainTransport(err, d.host); ok {
		return cause
	}
	return "UnknownError: " + destination.Innermost(err).Error()
}

// cause is what the configuration and its token say about an error reply, or "".
func (d *Destination) cause(se *ServiceError) string {
	now := d.opts.Now()
	t := d.sas
	switch se.Code {
	case "ContainerNotFound":
		return fmt.Sprintf("the file system (container) %q does not exist in storage account %q", d.config.FileSystem, d.config.StorageAccount)
	case "ResourceNotFound": // the account: a missing container or blob has codes of its own
		return "no storage account at " + BlobEndpoint(d.config)
	case "AccountIsDisabled":
		return fmt.Sprintf("storage account %q is disabled", d.config.StorageAccount)
	case "AuthorizationProtocolMismatch":
		return "the SAS token allows HTTPS only (spr=https), and the endpoint is http"
	case "AuthorizationSourceIPMismatch":
		return "the SAS token allows other IP addresses (sip) than this server's"
	case "AuthorizationServiceMismatch":
		return "the account SAS token does not allow the blob service (ss must include b)"
	case "AuthorizationResourceTypeMismatch":
		return "the account SAS token does not allow objects (srt must include o)"
	case "AuthenticationFailed", "AuthorizationFailure", "AuthorizationPermissionMismatch", "InvalidQueryParameterValue":
	default:
		return ""
	}
	switch {
	case !t.expiry.IsZero() && now.After(t.expiry):
		return "the SAS token expired at " + t.expiry.UTC().Format(time.RFC3339)
	case !t.start.IsZero() && now.Before(t.start):
		return "the SAS token is not valid before " + t.start.UTC().Format(time.RFC3339)
	case !t.allowsCreateAndWrite():
		return fmt.Sprintf("the SAS token does not allow create and write (it grants sp=%s; grant sp=cw on the file system)", t.permissions)
	case se.Code == "AuthenticationFailed", se.Code == "AuthorizationFailure":
		return fmt.Sprintf("the SAS token was refused: was it made for storage account %q and file system %q, copied whole, and do the account's network rules admit this server?", d.config.StorageAccount, d.config.FileSystem)
	}
	return ""
}

// sasToken is what a SAS token says of itself (never its signature).
type sasToken struct {
	start, expiry time.Time
	permissions   string
}

// parseSASToken reads the validity and permissions of a token; fields it cannot read stay zero.
func parseSASToken(token string) sasToken {
	q, _ := url.ParseQuery(token)
	return sasToken{start: sasTime(q.Get("st")), expiry: sasTime(q.Get("se")), permissions: q.Get("sp")}
}

// sasTime parses the ISO 8601 forms Azure accepts in st and se.
func sasTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// allowsCreateAndWrite reports whether sp grants c and w (or says nothing: a stored access
// policy may grant them).
func (t sasToken) allowsCreateAndWrite() bool {
	return t.permissions == "" || strings.Contains(t.permissions, "c") && strings.Contains(t.permissions, "w")
}
