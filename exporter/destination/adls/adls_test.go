package adls_test

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/exporter/destination/adls"
	"github.com/auditexport/auditexport/exporter/destination/destinationtest"
	"github.com/auditexport/auditexport/internal/azuritetest"
	"github.com/auditexport/auditexport/store"
)

var createWrite = sas.ContainerPermissions{Create: true, Write: true}

// loopback is the transport of tests, whose servers listen on 127.0.0.1.
func loopback(t *testing.T) *http.Client {
	t.Helper()
	p, err := destination.ParseAddressPolicy("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return destination.NewHTTPClient(destination.TransportConfig{Addresses: p})
}

func newDest(t *testing.T, opts adls.Options, endpoint, fileSystem, token string) *adls.Destination {
	t.Helper()
	if opts.HTTPClient == nil {
		opts.HTTPClient = loopback(t)
	}
	d, err := adls.New(opts, store.ExportConfiguration{ID: "c1", Kind: store.KindADLSSASToken, StorageAccount: "devstoreaccount1",
		FileSystem: fileSystem, Endpoint: endpoint}, token)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// recorder passes requests on and remembers the Content-MD5 of every block and blob sent.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent map[string][]string // comp (block, blocklist, "" for Put Blob) -> Content-MD5 values
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut {
		r.mu.Lock()
		comp := req.URL.Query().Get("comp")
		var sum string
		for name, values := range req.Header { // the SDK sets "Content-MD5", not canonicalised
			if strings.EqualFold(name, "Content-MD5") && len(values) > 0 {
				sum = values[0]
			}
		}
		r.sent[comp] = append(r.sent[comp], sum)
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// The destination acceptance test on Azurite, with the customer's SAS token for one container
// (sp=cw); the reader has read and list (sp=rl), the unwritable destination read only.
func TestAcceptanceOnAzurite(t *testing.T) {
	az := azuritetest.Require(t)
	container, token := az.NewContainerWithSAS(t, createWrite, time.Now().Add(time.Hour))
	readToken := az.ContainerSAS(t, container, sas.ContainerPermissions{Read: true, List: true}, time.Time{}, time.Now().Add(time.Hour))
	guarded := loopback(t)
	rec := &recorder{next: guarded.Transport, sent: map[string][]string{}}
	opts := adls.Options{HTTPClient: &http.Client{Transport: rec, CheckRedirect: guarded.CheckRedirect}, BlockThreshold: 4 << 20, BlockSize: 1 << 20}
	reader, err := adls.NewReader(az.Endpoint, container, readToken, loopback(t))
	if err != nil {
		t.Fatal(err)
	}
	destinationtest.Run(t, destinationtest.Subject{
		Dest: newDest(t, opts, az.Endpoint, container, "?"+token), Prefix: "acceptance", Reader: reader,
		Unwritable: newDest(t, opts, az.Endpoint, container, readToken), LargeSize: 11<<20 + 123,
	})
	// Every request with content carried its MD5 (Azurite, like Azure, refuses a mismatch), and
	// every blob keeps the MD5 of its whole content.
	if len(rec.sent["block"]) < 12 || len(rec.sent[""]) == 0 || len(rec.sent["blocklist"]) < 2 {
		t.Fatalf("requests sent: %d blocks, %d blobs, %d block lists", len(rec.sent["block"]), len(rec.sent[""]), len(rec.sent["blocklist"]))
	}
	for comp, sums := range rec.sent {
		for _, sum := range sums {
			if comp != "blocklist" && sum == "" {
				t.Errorf("a %q request went without Content-MD5", comp)
			}
		}
	}
	for _, name := range az.ListBlobs(t, container, "acceptance/") {
		props, err := az.Client(t).ServiceClient().NewContainerClient(container).NewBlobClient(name).GetProperties(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(az.ReadBlob(t, container, name))
		if !bytes.Equal(props.ContentMD5, sum[:]) {
			t.Errorf("%s: stored Content-MD5 %x, content's %x", name, props.ContentMD5, sum)
		}
	}
}

// Each failure a customer meets names its cause, in Immuta's "<code>: <message>" form.
func TestFailuresNameTheirCause(t *testing.T) {
	az := azuritetest.Require(t)
	container := az.NewContainer(t)
	now := time.Now()
	otherAccount := strings.TrimSuffix(az.Endpoint, az.Account) + "otheraccount"
	for name, c := range map[string]struct {
		endpoint, fileSystem, token, want string
	}{
		"expired token": {az.Endpoint, container, az.ContainerSAS(t, container, createWrite, now.Add(-2*time.Hour), now.Add(-time.Hour)),
			"AuthorizationFailure: the SAS token expired at " + now.Add(-time.Hour).UTC().Format(time.RFC3339) + ". "},
		"token not yet valid": {az.Endpoint, container, az.ContainerSAS(t, container, createWrite, now.Add(time.Hour), now.Add(2*time.Hour)),
			"AuthorizationFailure: the SAS token is not valid before " + now.Add(time.Hour).UTC().Format(time.RFC3339) + ". "},
		"read-only token": {az.Endpoint, container, az.ContainerSAS(t, container, sas.ContainerPermissions{Read: true, List: true}, time.Time{}, now.Add(time.Hour)),
			"AuthorizationPermissionMismatch: the SAS token does not allow create and write (it grants sp=rl; grant sp=cw on the file system). "},
		"unknown container": {az.Endpoint, "no-such-container", az.ContainerSAS(t, "no-such-container", createWrite, time.Time{}, now.Add(time.Hour)),
			`ContainerNotFound: the file system (container) "no-such-container" does not exist in storage account "devstoreaccount1". `},
		"unknown account": {otherAccount, container, az.ContainerSAS(t, container, createWrite, time.Time{}, now.Add(time.Hour)),
			"ResourceNotFound: no storage account at " + otherAccount + ". "},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newDest(t, adls.Options{}, c.endpoint, c.fileSystem, c.token)
			err := d.Put(t.Context(), destination.Object{Key: "verify", Body: strings.NewReader("x"), Size: 1})
			if err == nil {
				t.Fatal("the write was accepted")
			}
			got := d.Explain(err)
			if !strings.HasPrefix(got, c.want) || strings.Contains(got, "\n") {
				t.Fatalf("explained as %q\nwant prefix   %q", got, c.want)
			}
			if sig := strings.SplitN(strings.SplitN(c.token, "sig=", 2)[1], "&", 2)[0]; strings.Contains(got, sig) {
				t.Fatalf("the explanation quotes the token's signature: %q", got)
			}
		})
	}
}

// A server that is not Azure Storage is summarised by its status and media type, never quoted,
// whether it refuses or pretends to accept.
func TestRepliesNotFromAzureAreSummarised(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("x-ms-error-code", "InternalSecret")
		if r.URL.Query().Get("comp") == "" && strings.HasSuffix(r.URL.Path, "/accepts") {
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "<Error><Code>InternalSecret</Code><Message>db password is hunter2</Message></Error>")
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	d := newDest(t, adls.Options{}, srv.URL+"/account", "files", "sv=2024-01-01&sp=cw&sig=abc")
	for key, want := range map[string]string{
		"refuses": "UnexpectedResponse: " + host + " answered HTTP 403 Forbidden (text/plain), which is not a reply of Azure Blob Storage: is the endpoint right?",
		"accepts": "UnexpectedResponse: " + host + " answered HTTP 201 Created (text/plain), which is not a reply of Azure Blob Storage: is the endpoint right?",
	} {
		err := d.Put(t.Context(), destination.Object{Key: key, Body: strings.NewReader("x"), Size: 1})
		if got := explain(d, err); got != want {
			t.Errorf("%s: explained as %q\nwant %q", key, got, want)
		}
	}
}

func explain(d destination.Destination, err error) string {
	if err == nil {
		return "(no error)"
	}
	return d.Explain(err)
}

// Without an endpoint the account's own host is used; a name that does not resolve is an
// unknown account. The address policy applies as to any destination.
func TestExplainWithoutAzurite(t *testing.T) {
	t.Parallel()
	d := newDest(t, adls.Options{}, "", "files", "sv=2024-01-01&sp=cw&sig=abc")
	err := &net.DNSError{Name: "nosuchaccount.blob.core.windows.net", Err: "no such host", IsNotFound: true}
	if got, want := d.Explain(err), `NetworkError: cannot resolve nosuchaccount.blob.core.windows.net: is there a storage account named "devstoreaccount1"?`; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := adls.BlobEndpoint(store.ExportConfiguration{StorageAccount: "acme"}); got != "https://acme.blob.core.windows.net" {
		t.Errorf("blob endpoint %q", got)
	}
	d = newDest(t, adls.Options{HTTPClient: destination.NewHTTPClient(destination.TransportConfig{})}, "http://169.254.169.254/acct", "files", "sv=1&sig=2")
	err2 := d.Put(t.Context(), destination.Object{Key: "k", Body: strings.NewReader("x"), Size: 1})
	if got := explain(d, err2); !strings.HasPrefix(got, "EndpointNotAllowed: 169.254.169.254 is, or resolves to, a link-local") {
		t.Errorf("metadata endpoint: %q", got)
	}
}

func TestMetadataNamesRoundTrip(t *testing.T) {
	az := azuritetest.Require(t)
	container, token := az.NewContainerWithSAS(t, createWrite, time.Now().Add(time.Hour))
	d := newDest(t, adls.Options{}, az.Endpoint, container, token)
	body := make([]byte, 100)
	rand.Read(body)
	if err := d.Put(t.Context(), destination.Object{Key: "digest.json", Body: bytes.NewReader(body), Size: 100,
		Metadata: map[string]string{"public-key-sha256": "ab"}}); err != nil {
		t.Fatal(d.Explain(err))
	}
	props, err := az.Client(t).ServiceClient().NewContainerClient(container).NewBlobClient("digest.json").GetProperties(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Azure's metadata names are C# identifiers: the hyphen becomes an underscore.
	var found bool
	for k, v := range props.Metadata {
		found = found || strings.EqualFold(k, "public_key_sha256") && v != nil && *v == "ab"
	}
	if !found {
		t.Fatalf("metadata as stored: %v", props.Metadata)
	}
	sum := md5.Sum(body)
	if base64.StdEncoding.EncodeToString(props.ContentMD5) != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatal("Content-MD5 not stored")
	}
}
