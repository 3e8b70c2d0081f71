package azuritetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// TestSASUploadAndReadBack: a blob written with a container SAS that may create and write is there
// to read back, whole.
func TestSASUploadAndReadBack(t *testing.T) {
	t.Parallel()
	s := Require(t)
	container, token := s.NewContainerWithSAS(t, sas.ContainerPermissions{Create: true, Write: true}, time.Now().Add(time.Hour))
	body := bytes.Repeat([]byte("audit event\n"), 1000)
	if _, err := s.SASClient(t, token).UploadBuffer(context.Background(), container, "year=2026/events.parquet", body, nil); err != nil {
		t.Fatalf("upload with the SAS: %v", err)
	}
	if names := s.ListBlobs(t, container, "year="); len(names) != 1 || names[0] != "year=2026/events.parquet" {
		t.Fatalf("blobs %q, want [year=2026/events.parquet]", names)
	}
	if got := s.ReadBlob(t, container, "year=2026/events.parquet"); !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes, want the %d written", len(got), len(body))
	}
}

// TestSASRefusals: Azurite enforces a SAS's permissions and validity. Where Azure answers a token
// outside its validity with AuthenticationFailed and a message naming the time, Azurite answers
// AuthorizationFailure with a generic message: code that names an expired or not-yet-valid token must
// tell it from the token's own st and se, not from the reply.
func TestSASRefusals(t *testing.T) {
	t.Parallel()
	s := Require(t)
	container := s.NewContainer(t)
	now := time.Now()
	for _, tc := range []struct {
		name          string
		permissions   sas.ContainerPermissions
		start, expiry time.Time
		code          bloberror.Code
	}{
		{"read-only", sas.ContainerPermissions{Read: true, List: true}, time.Time{}, now.Add(time.Hour), bloberror.AuthorizationPermissionMismatch},
		{"expired", sas.ContainerPermissions{Create: true, Write: true}, now.Add(-2 * time.Hour), now.Add(-time.Hour), bloberror.AuthorizationFailure},
		{"not yet valid", sas.ContainerPermissions{Create: true, Write: true}, now.Add(time.Hour), now.Add(2 * time.Hour), bloberror.AuthorizationFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := s.ContainerSAS(t, container, tc.permissions, tc.start, tc.expiry)
			_, err := s.SASClient(t, token).UploadBuffer(context.Background(), container, "refused", []byte("x"), nil)
			if !bloberror.HasCode(err, tc.code) {
				t.Fatalf("upload with a %s SAS: %v, want %s", tc.name, err, tc.code)
			}
		})
	}
	if names := s.ListBlobs(t, container, ""); len(names) != 0 {
		t.Fatalf("refused uploads left blobs %q", names)
	}
}
