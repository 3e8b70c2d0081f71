// Package exporter delivers to customers' S3 destinations: it builds one client per configuration
// (its own region, endpoint and credentials; for assumed roles, cached STS credentials), checks
// that each destination accepts a PutObject and keeps connectionStatus honest in the background,
// and runs the scheduled exports: buffered events encoded as hour-partitioned Parquet, uploaded,
// and recorded in a signed digest that customers can verify.
package exporter

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/auditexport/auditexport/store"
)

// ClientsConfig configures NewClients.
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
	// MaxAttempts bounds the SDK's attempts at one call. Default: AWS.RetryMaxAttempts (the SDK's
	// AWS_MAX_ATTEMPTS), else 3.
	MaxAttempts int
	// Endpoints restricts the configurations' endpoints; checked again here for configurations
	// stored before the policy was tightened. The zero value allows any.
	Endpoints store.EndpointPolicy
}

// SessionName is what customers see as the role session in CloudTrail.
const sessionNamePrefix = "auditexport-"

// Clients hands out one S3 client per configuration revision. Clients are reused across checks
// and uploads, so an assumed role is assumed once per credential lifetime, not once per call.
type Clients struct {
	cfg ClientsConfig
	mu  sync.Mutex
	s3  map[string]cachedClient // by configuration id
}

type cachedClient struct {
	revision int64
	client   *s3.Client
}

// NewClients returns an empty client cache.
func NewClients(cfg ClientsConfig) *Clients {
	cfg.AssumeRoleDuration = cmp.Or(max(cfg.AssumeRoleDuration, 0), time.Hour)
	cfg.RefreshBefore = cmp.Or(max(cfg.RefreshBefore, 0), 5*time.Minute)
	cfg.MaxAttempts = cmp.Or(max(cfg.MaxAttempts, 0), max(cfg.AWS.RetryMaxAttempts, 0), 3)
	return &Clients{cfg: cfg, s3: map[string]cachedClient{}}
}

// For returns the S3 client of c, building it on first use and again after the destination or
// its secret changed (a new revision). secret is read only when a client is built.
func (cl *Clients) For(c store.ExportConfiguration, secret func() (string, error)) (*s3.Client, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if err := cl.cfg.Endpoints.Check(c.Endpoint); err != nil {
		return nil, &smithy.GenericAPIError{Code: "EndpointNotAllowed", Message: err.Error()}
	}
	if cached, ok := cl.s3[c.ID]; ok && cached.revision == c.Revision {
		return cached.client, nil
	}
	var creds aws.CredentialsProvider
	switch c.Kind {
	case store.KindS3AccessKey:
		s, err := secret()
		if err != nil {
			return nil, fmt.Errorf("read secret: %w", err)
		}
		creds = credentials.NewStaticCredentialsProvider(c.AccessKeyID, s, "")
	case store.KindS3AssumedRole:
		creds = cl.assumeRole(c)
	default:
		return nil, fmt.Errorf("unknown destination kind %q", c.Kind)
	}
	client := s3.NewFromConfig(cl.cfg.AWS, func(o *s3.Options) {
		o.Region = c.Region
		o.Credentials = creds
		o.RetryMaxAttempts = cl.cfg.MaxAttempts
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		// S3-compatible servers, and AWS_ENDPOINT_URL_S3 overrides, rarely serve virtual hosts.
		o.UsePathStyle = o.BaseEndpoint != nil
	})
	cl.s3[c.ID] = cachedClient{revision: c.Revision, client: client}
	return client, nil
}

// forConfig is For with the secret read from st, returning also the secret when it was read (the
// client was built now), so a failure text can mask it.
func (cl *Clients) forConfig(ctx context.Context, c store.ExportConfiguration, st store.Configurations) (client *s3.Client, secret string, err error) {
	client, err = cl.For(c, func() (string, error) {
		s, readErr := st.Secret(ctx, c.ID)
		secret = s
		return s, readErr
	})
	return client, secret, err
}

// assumeRole returns cached credentials for the configuration's role, assumed with the
// configuration id as ExternalId, as the customer's trust policy requires.
func (cl *Clients) assumeRole(c store.ExportConfiguration) aws.CredentialsProvider {
	stsClient := sts.NewFromConfig(cl.cfg.AWS, func(o *sts.Options) {
		o.Region = c.Region
		o.RetryMaxAttempts = cl.cfg.MaxAttempts
	})
	provider := stscreds.NewAssumeRoleProvider(stsClient, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.ExternalID = aws.String(c.ID)
		o.RoleSessionName = sessionNamePrefix + c.ID
		o.Duration = cl.cfg.AssumeRoleDuration
	})
	return aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = cl.cfg.RefreshBefore
		o.ExpiryWindowJitterFrac = 0.2
	})
}

// Forget drops the client of a deleted configuration.
func (cl *Clients) Forget(id string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	delete(cl.s3, id)
}
