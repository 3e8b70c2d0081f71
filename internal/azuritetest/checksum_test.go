package azuritetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
)

// TestContentMD5Checked: Azurite checks a Content-MD5 sent with a blob or a block, refusing a body
// that does not match (400 InvalidOperation, where Azure says Md5Mismatch), so tests of checksummed
// uploads can fail there.
func TestContentMD5Checked(t *testing.T) {
	t.Parallel()
	s := Require(t)
	container := s.NewContainer(t)
	blobClient := s.Client(t).ServiceClient().NewContainerClient(container).NewBlockBlobClient("checked")
	body := []byte("audit events")
	right := md5.Sum(body)
	wrong := md5.Sum([]byte("other bytes"))
	mismatch := []bloberror.Code{bloberror.InvalidOperation, bloberror.MD5Mismatch} // Azurite's, Azure's
	ctx := context.Background()

	for _, op := range []struct {
		name string
		put  func(sum blob.TransferValidationTypeMD5) error
	}{
		{"upload a blob", func(sum blob.TransferValidationTypeMD5) error {
			_, err := blobClient.Upload(ctx, streaming.NopCloser(bytes.NewReader(body)),
				&blockblob.UploadOptions{TransactionalValidation: sum})
			return err
		}},
		{"stage a block", func(sum blob.TransferValidationTypeMD5) error {
			_, err := blobClient.StageBlock(ctx, "YmxvY2sx", streaming.NopCloser(bytes.NewReader(body)),
				&blockblob.StageBlockOptions{TransactionalValidation: sum})
			return err
		}},
	} {
		if err := op.put(wrong[:]); !bloberror.HasCode(err, mismatch...) {
			t.Fatalf("%s with a wrong MD5: %v, want one of %s", op.name, err, mismatch)
		}
		if err := op.put(right[:]); err != nil {
			t.Fatalf("%s with the right MD5: %v", op.name, err)
		}
	}
	if got := s.ReadBlob(t, container, "checked"); !bytes.Equal(got, body) {
		t.Fatalf("read back %q, want %q", got, body)
	}
}
