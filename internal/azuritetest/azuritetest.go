// Package azuritetest gives tests the real Azure Storage emulator (Azurite's blob service on
// loopback) that scripts/azurite.sh started (see scripts/with-test-servers.sh): containers, SAS
// tokens with chosen permissions and validity, reading blobs back.
//
// Azurite is not Azure in every reply. It serves the blob API only, not ADLS's dfs one. A SAS outside
// its validity gets AuthorizationFailure (Azure: AuthenticationFailed), a Content-MD5 that does not
// match the body 400 InvalidOperation (Azure: Md5Mismatch). It runs in strict mode, so a header it
// does not implement fails the request instead of being ignored: x-ms-content-crc64 gets 500
// FeatureNotSupported (the SDK retries 500s for about 20 s first), so checksummed uploads use
// Content-MD5 here.
//
// Without the server the tests skip locally, but under CI=true they fail: CI must test for real.
package azuritetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/auditexport/auditexport/internal/testneed"
)

// Server is the Azurite blob service.
type Server struct {
	// Endpoint is the account's blob service URL, path-style as Azurite serves accounts:
	// http://127.0.0.1:PORT/devstoreaccount1. A container's URL is Endpoint + "/" + name.
	Endpoint string
	// Account and Key are the well-known development account's name and shared key.
	Account, Key string
}

// Require returns the server from the AUDITEXPORT_TEST_AZURITE_* variables (see scripts/azurite.sh).
func Require(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		Endpoint: os.Getenv("AUDITEXPORT_TEST_AZURITE_BLOB_ENDPOINT"),
		Account:  os.Getenv("AUDITEXPORT_TEST_AZURITE_ACCOUNT"),
		Key:      os.Getenv("AUDITEXPORT_TEST_AZURITE_KEY"),
	}
	if s.Endpoint == "" || s.Account == "" || s.Key == "" {
		testneed.Missing(t, "no test Azurite: run `make test`, or `scripts/with-test-servers.sh go test ./...`")
	}
	return s
}

func (s *Server) credential(t testing.TB) *azblob.SharedKeyCredential {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential(s.Account, s.Key)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// Client returns a client with the account's key: it may do anything.
func (s *Server) Client(t testing.TB) *azblob.Client {
	t.Helper()
	client, err := azblob.NewClientWithSharedKeyCredential(s.Endpoint, s.credential(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// SASClient returns a client that authenticates with token alone, as a customer's SAS is used.
func (s *Server) SASClient(t testing.TB, token string) *azblob.Client {
	t.Helper()
	client, err := azblob.NewClientWithNoCredential(s.Endpoint+"?"+strings.TrimPrefix(token, "?"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// NewContainer creates an empty container for one test and returns its name.
func (s *Server) NewContainer(t testing.TB) string {
	t.Helper()
	suffix := make([]byte, 6)
	rand.Read(suffix)
	name := "t-" + hex.EncodeToString(suffix)
	if _, err := s.Client(t).CreateContainer(context.Background(), name, nil); err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	return name
}

// ContainerSAS returns a service SAS token (the query string, without "?") for container alone,
// with permissions, valid from start (none when zero) until expiry. An expiry in the past makes an
// expired token, a start in the future a token not yet valid.
func (s *Server) ContainerSAS(t testing.TB, container string, permissions sas.ContainerPermissions, start, expiry time.Time) string {
	t.Helper()
	values := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP, // Azurite serves HTTP
		StartTime:     start.UTC(),
		ExpiryTime:    expiry.UTC(),
		Permissions:   permissions.String(),
		ContainerName: container,
	}
	params, err := values.SignWithSharedKey(s.credential(t))
	if err != nil {
		t.Fatal(err)
	}
	return params.Encode()
}

// NewContainerWithSAS creates a container for one test and a SAS token for it with permissions,
// valid from now until expiry.
func (s *Server) NewContainerWithSAS(t testing.TB, permissions sas.ContainerPermissions, expiry time.Time) (container, token string) {
	t.Helper()
	container = s.NewContainer(t)
	return container, s.ContainerSAS(t, container, permissions, time.Time{}, expiry)
}

// ListBlobs returns the names of the blobs in container under prefix, in order.
func (s *Server) ListBlobs(t testing.TB, container, prefix string) []string {
	t.Helper()
	var names []string
	pager := s.Client(t).NewListBlobsFlatPager(container, &azblob.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list blobs in %s: %v", container, err)
		}
		for _, item := range page.Segment.BlobItems {
			names = append(names, *item.Name)
		}
	}
	return names
}

// ReadBlob returns the content of the blob name in container.
func (s *Server) ReadBlob(t testing.TB, container, name string) []byte {
	t.Helper()
	resp, err := s.Client(t).DownloadStream(context.Background(), container, name, nil)
	if err != nil {
		t.Fatalf("read blob %s/%s: %v", container, name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read blob %s/%s: %v", container, name, err)
	}
	return body
}
