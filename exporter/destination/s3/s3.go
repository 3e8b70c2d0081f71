// Package s3 is the Amazon S3 (and S3-compatible) destination: PutObject with a CRC32C checksum
// S3 verifies (Object Lock buckets refuse a PutObject without one), multipart above a threshold
// (each part checksummed), server-side encryption as the configuration asks, credentials from an
// access key or an assumed role (cached, refreshed before expiry), and errors explained from
// S3's and STS's error codes. It needs only s3:PutObject on the customer's bucket.
package s3

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/store"
)

// Options configure every S3 destination of a server. Zero fields take the defaults shown.
type Options struct {
	// AWS is the service's own configuration: its credentials assume customers' roles, its
	// endpoint settings (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_STS) apply to every client.
	AWS aws.Config
	// HTTPClient sends every request to S3: destination.NewHTTPClient's. STS calls, which go to
	// the service's own AWS endpoint, use AWS's.
	HTTPClient *http.Client
	// MaxAttempts bounds the SDK's attempts at one call. Default 3.
	MaxAttempts int
	// MultipartThreshold and PartSize: objects larger than the threshold are uploaded in parts.
	// Defaults 16 MiB and 8 MiB (S3's minimum part is 5 MiB).
	MultipartThreshold, PartSize int64
	// AssumeRoleDuration is the lifetime asked of assumed-role sessions. Default 1h.
	AssumeRoleDuration time.Duration
	// RefreshBefore renews assumed-role credentials this long before they expire. Default 5m.
	RefreshBefore time.Duration
}

func (o *Options) fillDefaults() {
	o.MaxAttempts = cmp.Or(max(o.MaxAttempts, 0), 3)
	o.MultipartThreshold = cmp.Or(max(o.MultipartThreshold, 0), 16<<20)
	o.PartSize = cmp.Or(max(o.PartSize, 0), 8<<20)
	o.AssumeRoleDuration = cmp.Or(max(o.AssumeRoleDuration, 0), time.Hour)
	o.RefreshBefore = cmp.Or(max(o.RefreshBefore, 0), 5*time.Minute)
}

// sessionNamePrefix starts the role session name customers see in CloudTrail.
const sessionNamePrefix = "auditexport-"

// Destination writes into one configuration's bucket.
type Destination struct {
	client *awss3.Client
	tm     *transfermanager.Client
	opts   Options
	config store.ExportConfiguration
}

var _ destination.Destination = (*Destination)(nil)

// New returns the destination of c, an S3 configuration; secret is its secret access key
// (unused for assumed roles).
func New(opts Options, c store.ExportConfiguration, secret string) (*Destination, error) {
	opts.fillDefaults()
	var creds aws.CredentialsProvider
	switch c.Kind {
	case store.KindS3AccessKey:
		creds = credentials.NewStaticCredentialsProvider(c.AccessKeyID, secret, "")
	case store.KindS3AssumedRole:
		creds = assumeRole(opts, c)
	default:
		return nil, fmt.Errorf("not an S3 configuration: %q", c.Kind)
	}
	client := awss3.NewFromConfig(opts.AWS, func(o *awss3.Options) {
		o.Region = c.Region
		o.Credentials = creds
		o.RetryMaxAttempts = opts.MaxAttempts
		if opts.HTTPClient != nil {
			o.HTTPClient = opts.HTTPClient
		}
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		// S3-compatible servers, and AWS_ENDPOINT_URL_S3 overrides, rarely serve virtual hosts.
		o.UsePathStyle = o.BaseEndpoint != nil
	})
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.MultipartUploadThreshold = opts.MultipartThreshold
		o.PartSizeBytes = opts.PartSize
		o.ChecksumAlgorithm = tmtypes.ChecksumAlgorithmCrc32c
		o.Concurrency = 2
	})
	return &Destination{client: client, tm: tm, opts: opts, config: c}, nil
}

// assumeRole returns cached credentials for c's role, assumed with the configuration id as
// ExternalId, as the customer's trust policy requires.
func assumeRole(opts Options, c store.ExportConfiguration) aws.CredentialsProvider {
	stsClient := sts.NewFromConfig(opts.AWS, func(o *sts.Options) {
		o.Region = c.Region
		o.RetryMaxAttempts = opts.MaxAttempts
	})
	provider := stscreds.NewAssumeRoleProvider(stsClient, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.ExternalID = aws.String(c.ID)
		o.RoleSessionName = sessionNamePrefix + c.ID
		o.Duration = opts.AssumeRoleDuration
	})
	return aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = opts.RefreshBefore
		o.ExpiryWindowJitterFrac = 0.2
	})
}

// Describe is how Immuta's status texts name an S3 destination: "S3 using AccessKey <id>" or
// "S3 using AssumedRole <roleArn>".
func Describe(c store.ExportConfiguration) string {
	if c.Kind == store.KindS3AssumedRole {
		return "S3 using AssumedRole " + c.RoleARN
	}
	return "S3 using AccessKey " + c.AccessKeyID
}

func (d *Destination) Describe() string { return Describe(d.config) }

// host is where requests go, for messages.
func (d *Destination) host() string {
	if u, err := url.Parse(d.config.Endpoint); err == nil && u.Host != "" {
		return u.Host
	}
	return "s3." + d.config.Region + ".amazonaws.com"
}

// Put uploads obj: a PutObject up to MultipartThreshold, else a multipart upload; both need
// only s3:PutObject.
func (d *Destination) Put(ctx context.Context, obj destination.Object) error {
	sse, kmsKey := d.encryption()
	body := io.NewSectionReader(obj.Body, 0, obj.Size)
	var etag *string
	var result middleware.Metadata
	if obj.Size <= d.opts.MultipartThreshold {
		in := &awss3.PutObjectInput{
			Bucket: aws.String(d.config.Bucket), Key: aws.String(obj.Key), Body: body, ContentLength: aws.Int64(obj.Size),
			ContentType: aws.String(obj.ContentType), Metadata: obj.Metadata, ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
			ServerSideEncryption: sse, SSEKMSKeyId: kmsKey,
		}
		var known []func(*awss3.Options)
		if c := obj.Checksums; c != nil {
			in.ChecksumCRC32C = aws.String(base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, c.CRC32C)))
			known = append(known, withPayloadSHA256(hex.EncodeToString(c.SHA256[:])))
		}
		out, err := d.client.PutObject(ctx, in, known...)
		if err != nil {
			return d.typed(err)
		}
		etag, result = out.ETag, out.ResultMetadata
	} else {
		out, err := d.tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
			Bucket: aws.String(d.config.Bucket), Key: aws.String(obj.Key), Body: body, ContentLength: aws.Int64(obj.Size),
			ContentType: aws.String(obj.ContentType), Metadata: obj.Metadata,
			ServerSideEncryption: tmtypes.ServerSideEncryption(sse), SSEKMSKeyID: kmsKey,
		})
		if err != nil {
			return d.typed(err)
		}
		etag, result = out.ETag, out.ResultMetadata
	}
	if etag == nil { // every S3 answers a PUT with an ETag: this came from something else
		raw, _ := awsmiddleware.GetRawResponse(result).(*smithyhttp.Response)
		var resp *http.Response
		if raw != nil {
			resp = raw.Response
		}
		return destination.NewUnexpectedReply("S3", d.host(), resp)
	}
	return nil
}

// withPayloadSHA256 has a request signed with the payload's known SHA-256 (its hex), which the
// SDK otherwise computes by reading the body once more before sending it.
func withPayloadSHA256(hexSum string) func(*awss3.Options) {
	return awss3.WithAPIOptions(func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("auditexportPayloadSHA256",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return next.HandleInitialize(v4.SetPayloadHash(ctx, hexSum), in)
			}), middleware.After)
	})
}

// encryption is the server-side encryption every PutObject asks of S3.
func (d *Destination) encryption() (types.ServerSideEncryption, *string) {
	var kmsKey *string
	if d.config.SSEKMSKeyID != "" {
		kmsKey = aws.String(d.config.SSEKMSKeyID)
	}
	return types.ServerSideEncryption(d.config.ServerSideEncryption), kmsKey
}
