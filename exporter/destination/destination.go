// Package destination is what the exporter writes through: one small interface (put an object,
// describe the destination, explain an error) that each kind of destination implements in its own
// package (s3, adls), a read side for verifying exports, and the HTTP transport every
// implementation must use. The transport bounds each request (connect, response headers, each
// part's progress) and connects only to addresses the operator allows, checked on the address
// actually dialled, so a customer's endpoint can neither hang the service nor reach inside its
// network. destinationtest holds the acceptance test every implementation passes on its real server.
package destination

import (
	"context"
	"errors"
	"io"
)

// Destination is where one export configuration's objects go. Implementations are safe for
// concurrent use and hold no state between calls beyond their clients and credentials.
type Destination interface {
	// Put writes obj at obj.Key, replacing whatever is there: putting the same key and content
	// again leaves the same object, so a retried export overwrites and never duplicates. The
	// content goes with a checksum the service verifies before it keeps the object (S3: CRC32C;
	// Azure: Content-MD5 per request). Large objects are sent in parts (S3) or blocks (Azure),
	// each bounded by the transport's progress timeout. An error leaves no object at the key, or
	// the previous one; a reply from something that is not the destination service is an error.
	Put(ctx context.Context, obj Object) error
	// Describe names the destination and how the service authenticates to it, as Immuta's
	// status texts do: "S3 using AccessKey AKIA…", "ADLS using SasToken".
	Describe() string
	// Explain turns an error of Put into a short cause, "<code>: <message>", for connectionStatus
	// and failureReason. It classifies errors by type (the service's error code, network and
	// policy errors of the transport, deadlines), never by their text, names the likely cause in
	// the customer's terms, and never quotes secrets or what a non-destination server answered.
	Explain(err error) string
}

// Object is one object to put.
type Object struct {
	// Key is the object's full name under the bucket or container: path segments joined by "/".
	Key string
	// Body is read from offset 0 to Size, possibly more than once (retries, checksums).
	Body io.ReaderAt
	Size int64
	// ContentType is the object's media type.
	ContentType string
	// Metadata are user metadata (S3 x-amz-meta-*, Azure x-ms-meta-*): lower-case names of
	// letters, digits and hyphens. Implementations map names their service refuses (Azure's
	// must be C# identifiers) and map them back when read.
	Metadata map[string]string
	// Checksums are Body's, when known as it was written: a destination that needs them (S3
	// signs the SHA-256 over plain HTTP and sends a CRC-32C it verifies) then reads Body once,
	// to send it. Nil: the destination computes what it needs.
	Checksums *Checksums
}

// Checksums of an object's content.
type Checksums struct {
	SHA256 [32]byte
	CRC32C uint32 // Castagnoli
}

// Reader reads an export back: what `auditexport digest verify` needs, with the customer's own
// read access, which the service itself never has.
type Reader interface {
	// List returns the keys of every object whose key starts with prefix, in lexical order.
	List(ctx context.Context, prefix string) ([]string, error)
	// Get opens an object: its content and its user metadata, with the names Object.Metadata
	// used. A missing object is an error that errors.Is(err, ErrNotFound).
	Get(ctx context.Context, key string) (io.ReadCloser, map[string]string, error)
	// Describe names the location read, for messages: "s3://bucket", "https://account.blob…/container".
	Describe() string
}

// ErrNotFound is the error (wrapped) of a Reader.Get of a missing object.
var ErrNotFound = errors.New("object not found")
