package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/auditexport/auditexport/exporter/destination"
)

// Reader reads an export back from a bucket with the reader's own credentials (s3:ListBucket
// and s3:GetObject).
type Reader struct {
	client *awss3.Client
	bucket string
}

var _ destination.Reader = (*Reader)(nil)

// NewReader reads bucket through client.
func NewReader(client *awss3.Client, bucket string) *Reader {
	return &Reader{client: client, bucket: bucket}
}

func (r *Reader) Describe() string { return "s3://" + r.bucket }

// List returns the keys under prefix; S3 lists them in lexical order.
func (r *Reader) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := awss3.NewListObjectsV2Paginator(r.client, &awss3.ListObjectsV2Input{Bucket: aws.String(r.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", r.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// Get opens an object and returns its metadata as written.
func (r *Reader) Get(ctx context.Context, key string) (io.ReadCloser, map[string]string, error) {
	out, err := r.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)})
	var missing *types.NoSuchKey
	var respErr *smithyhttp.ResponseError
	switch {
	case errors.As(err, &missing), errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusNotFound:
		return nil, nil, fmt.Errorf("s3://%s/%s: %w", r.bucket, key, destination.ErrNotFound)
	case err != nil:
		return nil, nil, fmt.Errorf("get s3://%s/%s: %w", r.bucket, key, err)
	}
	return out.Body, out.Metadata, nil
}
