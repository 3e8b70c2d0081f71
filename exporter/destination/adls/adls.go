// Package adls is the Azure Data Lake Storage Gen2 destination, written through the blob API
// (which ADLS Gen2 accounts serve beside the dfs one) with a SAS token: small objects in one Put
// Blob, larger ones as block blobs (Put Block per block, then Put Block List). Every request
// that carries content sends its Content-MD5, which the service checks before it keeps the data,
// and the whole object's MD5 is stored as the blob's Content-MD5 property for readers. The token
// needs create and write (sp=cw) on the file system (container) alone. Errors are explained from
// Azure's error codes and the token's own validity and permissions.
package adls

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/store"
)

// Options configure every ADLS destination of a server. Zero fields take the defaults shown.
type Options struct {
	// HTTPClient sends every request: destination.NewHTTPClient's.
	HTTPClient *http.Client
	// MaxAttempts bounds the attempts at one request. Default 3.
	MaxAttempts int
	// BlockThreshold and BlockSize: objects larger than the threshold are uploaded in blocks of
	// BlockSize. Defaults 16 MiB and 8 MiB (Azure allows blocks up to 4000 MiB, 50,000 a blob).
	BlockThreshold, BlockSize int64
	// Now is the clock that judges a SAS token's validity in explanations. Default time.Now.
	Now func() time.Time
}

func (o *Options) fillDefaults() {
	o.MaxAttempts = cmp.Or(max(o.MaxAttempts, 0), 3)
	o.BlockThreshold = cmp.Or(max(o.BlockThreshold, 0), 16<<20)
	o.BlockSize = cmp.Or(max(o.BlockSize, 0), 8<<20)
	if o.Now == nil {
		o.Now = time.Now
	}
}

// service names the destination service in summaries of replies from something else.
const service = "Azure Blob Storage"

// Destination writes into one configuration's file system.
type Destination struct {
	container *container.Client
	opts      Options
	config    store.ExportConfiguration
	host      string
	sas       sasToken
}

var _ destination.Destination = (*Destination)(nil)

// BlobEndpoint is the blob service base URL of c: its endpoint, or Azure's for its account.
func BlobEndpoint(c store.ExportConfiguration) string {
	if c.Endpoint != "" {
		return strings.TrimSuffix(c.Endpoint, "/")
	}
	return "https://" + c.StorageAccount + ".blob.core.windows.net"
}

// New returns the destination of c, an ADLS configuration, with its SAS token.
func New(opts Options, c store.ExportConfiguration, token string) (*Destination, error) {
	opts.fillDefaults()
	if c.Kind != store.KindADLSSASToken {
		return nil, fmt.Errorf("not an ADLS configuration: %q", c.Kind)
	}
	token = strings.TrimPrefix(token, "?")
	base := BlobEndpoint(c)
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("blob endpoint: %w", err)
	}
	client, err := container.NewClientWithNoCredential(base+"/"+c.FileSystem+"?"+token, &container.ClientOptions{ClientOptions: clientOptions(opts.HTTPClient, opts.MaxAttempts)})
	if err != nil {
		return nil, fmt.Errorf("file system client: %w", err) // the URL is built from validated parts
	}
	return &Destination{container: client, opts: opts, config: c, host: u.Host, sas: parseSASToken(token)}, nil
}

// clientOptions are the Azure SDK's options for the destination's and a reader's clients.
func clientOptions(httpClient *http.Client, maxAttempts int) azcore.ClientOptions {
	o := azcore.ClientOptions{
		Retry:     policy.RetryOptions{MaxRetries: int32(max(maxAttempts, 1) - 1), RetryDelay: 500 * time.Millisecond, MaxRetryDelay: 5 * time.Second},
		Telemetry: policy.TelemetryOptions{Disabled: true},
	}
	if httpClient != nil {
		o.Transport = httpClient
	}
	return o
}

// Describe is how Immuta's status texts name an ADLS destination.
func Describe(store.ExportConfiguration) string { return "ADLS using SasToken" }

func (d *Destination) Describe() string { return Describe(d.config) }

// Put uploads obj: one Put Blob up to BlockThreshold, else blocks then Put Block List. Every
// request carries the Content-MD5 of its content, which the service checks.
func (d *Destination) Put(ctx context.Context, obj destination.Object) error {
	bb := d.container.NewBlockBlobClient(obj.Key)
	var raw *http.Response
	ctx = policy.WithCaptureResponse(ctx, &raw)
	headers := &blob.HTTPHeaders{BlobContentType: &obj.ContentType}
	metadata := toAzureMetadata(obj.Metadata)
	var etag any
	if obj.Size <= d.opts.BlockThreshold {
		body := io.NewSectionReader(obj.Body, 0, obj.Size)
		sum, err := md5Of(body, nil)
		if err != nil {
			return err
		}
		headers.BlobContentMD5 = sum
		resp, err := bb.Upload(ctx, streaming.NopCloser(body), &blockblob.UploadOptions{
			HTTPHeaders: headers, Metadata: metadata, TransactionalValidation: blob.TransferValidationTypeMD5(sum),
		})
		if err != nil {
			return d.typed(err)
		}
		etag = resp.ETag
	} else {
		ids, whole, err := d.stageBlocks(ctx, bb, obj)
		if err != nil {
			return d.typed(err)
		}
		headers.BlobContentMD5 = whole
		resp, err := bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{HTTPHeaders: headers, Metadata: metadata})
		if err != nil {
			return d.typed(err)
		}
		etag = resp.ETag
	}
	if etag == nil || !fromAzure(raw) { // every Azure reply has an ETag and a request id
		return destination.NewUnexpectedReply(service, d.host, raw)
	}
	return nil
}

// stageBlocks uploads obj's blocks one after the other and returns their ids, in order, and
// the MD5 of the whole object. Block ids depend only on the index, so a retried upload of the
// same key replaces the uncommitted blocks of an earlier attempt.
func (d *Destination) stageBlocks(ctx context.Context, bb *blockblob.Client, obj destination.Object) ([]string, []byte, error) {
	whole := md5.New()
	var ids []string
	for offset, index := int64(0), 0; offset < obj.Size; offset, index = offset+d.opts.BlockSize, index+1 {
		block := io.NewSectionReader(obj.Body, offset, min(d.opts.BlockSize, obj.Size-offset))
		sum, err := md5Of(block, whole)
		if err != nil {
			return nil, nil, err
		}
		id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "auditexport-block-%08d", index))
		if _, err := bb.StageBlock(ctx, id, streaming.NopCloser(block), &blockblob.StageBlockOptions{
			TransactionalValidation: blob.TransferValidationTypeMD5(sum),
		}); err != nil {
			return nil, nil, err
		}
		ids = append(ids, id)
	}
	return ids, whole.Sum(nil), nil
}

// md5Of reads r to its end, also into also when not nil, and returns its MD5 with r rewound.
func md5Of(r io.ReadSeeker, also hash.Hash) ([]byte, error) {
	h := md5.New()
	w := io.Writer(h)
	if also != nil {
		w = io.MultiWriter(h, also)
	}
	if _, err := io.Copy(w, r); err != nil {
		return nil, fmt.Errorf("read the object to upload: %w", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// toAzureMetadata maps metadata names to Azure's rules (C# identifiers: no hyphens);
// fromAzureMetadata maps them back.
func toAzureMetadata(m map[string]string) map[string]*string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[strings.ReplaceAll(k, "-", "_")] = &v
	}
	return out
}

func fromAzureMetadata(m map[string]*string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v != nil {
			out[strings.ReplaceAll(strings.ToLower(k), "_", "-")] = *v
		}
	}
	return out
}

// fromAzure reports whether a reply came from Azure Storage (or Azurite): each carries its
// request id.
func fromAzure(resp *http.Response) bool {
	return resp != nil && resp.Header.Get("X-Ms-Request-Id") != ""
}
