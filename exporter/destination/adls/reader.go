package adls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/auditexport/auditexport/exporter/destination"
)

// Reader reads an export back from a file system with a SAS token of the reader's own, which
// must allow read and list (sp=rl).
type Reader struct {
	container *container.Client
	location  string
}

var _ destination.Reader = (*Reader)(nil)

// NewReader reads the file system fileSystem of the blob service at endpoint (a base URL such
// as https://account.blob.core.windows.net) with token. httpClient may be nil.
func NewReader(endpoint, fileSystem, token string, httpClient *http.Client) (*Reader, error) {
	location := strings.TrimSuffix(endpoint, "/") + "/" + fileSystem
	client, err := container.NewClientWithNoCredential(location+"?"+strings.TrimPrefix(token, "?"), &container.ClientOptions{ClientOptions: clientOptions(httpClient, 3)})
	if err != nil {
		return nil, fmt.Errorf("file system %s: %w", location, err)
	}
	return &Reader{container: client, location: location}, nil
}

func (r *Reader) Describe() string { return r.location }

// List returns the blob names under prefix; Azure lists them in lexical order.
func (r *Reader) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	pager := r.container.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s/%s: %w", r.location, prefix, readable(err))
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name != nil {
				keys = append(keys, *item.Name)
			}
		}
	}
	return keys, nil
}

// Get opens a blob and returns its metadata with the names it was put with.
func (r *Reader) Get(ctx context.Context, key string) (io.ReadCloser, map[string]string, error) {
	resp, err := r.container.NewBlobClient(key).DownloadStream(ctx, nil)
	var re *azcore.ResponseError
	switch {
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		return nil, nil, fmt.Errorf("%s/%s: %w", r.location, key, destination.ErrNotFound)
	case err != nil:
		return nil, nil, fmt.Errorf("get %s/%s: %w", r.location, key, readable(err))
	}
	return resp.Body, fromAzureMetadata(resp.Metadata), nil
}

// readable is an Azure error reply as its code and message: azcore's own text spans many lines.
func readable(err error) error {
	d := &Destination{}
	if se, ok := d.typed(err).(*ServiceError); ok {
		return se
	}
	return err
}
