// Package exporter delivers to customers' destinations (S3 and ADLS, each behind the
// destination.Destination interface, chosen by the configuration's kind): it builds one
// destination per configuration (its own endpoint and credentials, every request through the
// guarded transport), checks that each destination accepts a write and keeps connectionStatus
// honest in the background, and runs the scheduled exports: buffered events encoded as
// hour-partitioned Parquet, uploaded, and recorded in a signed digest that customers can verify.
package exporter

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/exporter/destination/adls"
	s3dest "github.com/auditexport/auditexport/exporter/destination/s3"
	"github.com/auditexport/auditexport/store"
)

// ClientsConfig configures NewClients. Zero fields take the defaults shown.
type ClientsConfig struct {
	// AWS is the service's own configuration from the SDK's default chain. Its credentials are the
	// identity that assumes customers' roles; its endpoint settings (AWS_ENDPOINT_URL_STS,
	// AWS_ENDPOINT_URL_S3) apply to every client.
	AWS aws.Config
	// AssumeRoleDuration is the lifetime requested for assumed-role sessions. Default 1h.
	AssumeRoleDuration time.Duration
	// RefreshBefore renews assumed-role credentials this long before they expire, so no upload
	// starts with credentials about to lapse. Default 5m.
	RefreshBefore time.Duration
	// MaxAttempts bounds the SDKs' attempts at one call. Default: AWS.RetryMaxAttempts (the SDK's
	// AWS_MAX_ATTEMPTS), else 3.
	MaxAttempts int
	// MultipartThreshold and PartSize: objects larger than the threshold are uploaded in parts
	// (S3) or blocks (ADLS) of PartSize. Defaults 16 MiB and 8 MiB.
	MultipartThreshold, PartSize int64
	// Endpoints restricts the configurations' endpoint names; checked again here for
	// configurations stored before the policy was tightened. The zero value allows any.
	Endpoints store.EndpointPolicy
	// Transport bounds every request to a destination and says which addresses it may reach
	// (the zero value: no loopback or private address).
	Transport destination.TransportConfig
}

// DefaultClientsConfig returns the values ClientsConfig's zero fields take (but MaxAttempts,
// which follows the AWS configuration given).
func DefaultClientsConfig() ClientsConfig {
	var c ClientsConfig
	c.fillDefaults()
	c.MaxAttempts = 0
	c.Transport = destination.DefaultTransportConfig() // NewHTTPClient fills the zero ones itself
	return c
}

// fillDefaults replaces zero (and negative) fields by their defaults.
func (c *ClientsConfig) fillDefaults() {
	c.MaxAttempts = cmp.Or(max(c.MaxAttempts, 0), max(c.AWS.RetryMaxAttempts, 0), 3)
	c.MultipartThreshold = cmp.Or(max(c.MultipartThreshold, 0), 16<<20)
	c.PartSize = cmp.Or(max(c.PartSize, 0), 8<<20)
}

// Clients hands out one destination per configuration revision. Destinations are reused across
// checks and uploads, so an assumed role is assumed once per credential lifetime, not once per
// call. All share one guarded HTTP client.
type Clients struct {
	cfg  ClientsConfig
	http *http.Client
	mu   sync.Mutex
	byID map[string]cachedDestination // by configuration id
}

type cachedDestination struct {
	revision int64
	dest     destination.Destination
}

// NewClients returns an empty destination cache.
func NewClients(cfg ClientsConfig) *Clients {
	cfg.fillDefaults()
	return &Clients{cfg: cfg, http: destination.NewHTTPClient(cfg.Transport), byID: map[string]cachedDestination{}}
}

// For returns the destination of c, building it on first use and again after the destination
// or its secret changed (a new revision). secret is read only when a destination is built.
func (cl *Clients) For(c store.ExportConfiguration, secret func() (string, error)) (destination.Destination, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if err := cl.cfg.Endpoints.Check(c.Endpoint); err != nil {
		return nil, &destination.EndpointError{Err: err}
	}
	if cached, ok := cl.byID[c.ID]; ok && cached.revision == c.Revision {
		return cached.dest, nil
	}
	var s string
	if c.Kind.HasSecret() {
		var err error
		if s, err = secret(); err != nil {
			return nil, fmt.Errorf("read secret: %w", err)
		}
	}
	var dest destination.Destination
	var err error
	switch c.Kind {
	case store.KindS3AccessKey, store.KindS3AssumedRole:
		dest, err = s3dest.New(s3dest.Options{
			AWS: cl.cfg.AWS, HTTPClient: cl.http, MaxAttempts: cl.cfg.MaxAttempts,
			MultipartThreshold: cl.cfg.MultipartThreshold, PartSize: cl.cfg.PartSize,
			AssumeRoleDuration: cl.cfg.AssumeRoleDuration, RefreshBefore: cl.cfg.RefreshBefore,
		}, c, s)
	case store.KindADLSSASToken:
		dest, err = adls.New(adls.Options{
			HTTPClient: cl.http, MaxAttempts: cl.cfg.MaxAttempts,
			BlockThreshold: cl.cfg.MultipartThreshold, BlockSize: cl.cfg.PartSize,
		}, c, s)
	default:
		err = fmt.Errorf("unknown destination kind %q", c.Kind)
	}
	if err != nil {
		return nil, err
	}
	cl.byID[c.ID] = cachedDestination{revision: c.Revision, dest: dest}
	return dest, nil
}

// forConfig is For with the secret read from st, returning also the secret when it was read (the
// destination was built now), so a failure text can mask it.
func (cl *Clients) forConfig(ctx context.Context, c store.ExportConfiguration, st store.Configurations) (dest destination.Destination, secret string, err error) {
	dest, err = cl.For(c, func() (string, error) {
		s, readErr := st.Secret(ctx, c.ID)
		secret = s
		return s, readErr
	})
	return dest, secret, err
}

// Forget drops the destination of a deleted configuration.
func (cl *Clients) Forget(id string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	delete(cl.byID, id)
}

// Describe is how status texts name c's destination, whether or not one could be built.
func Describe(c store.ExportConfiguration) string {
	if c.Kind == store.KindADLSSASToken {
		return adls.Describe(c)
	}
	return s3dest.Describe(c)
}
