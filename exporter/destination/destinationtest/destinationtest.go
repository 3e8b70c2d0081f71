// Package destinationtest is the acceptance test every destination implementation passes on its
// real server (MinIO for S3, Azurite for ADLS), as Thanos' objstore AcceptanceTest is for buckets:
// what the exporter relies on, said once.
package destinationtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/exporter/destination"
)

// Subject is one implementation under test.
type Subject struct {
	// Dest writes with the permissions a customer grants (S3: s3:PutObject; Azure: sp=cw) under
	// Prefix, which no other test writes to.
	Dest   destination.Destination
	Prefix string
	// Reader reads the same place with read and list access.
	Reader destination.Reader
	// Unwritable is a destination of the same server that refuses writes (a read-only identity,
	// or one whose token grants no write).
	Unwritable destination.Destination
	// LargeSize is an object size the implementation uploads in parts or blocks.
	LargeSize int64
}

// Run checks s.
func Run(t *testing.T, s Subject) {
	ctx := t.Context()
	key := func(name string) string { return s.Prefix + "/" + name }

	t.Run("put and read back, with metadata", func(t *testing.T) {
		body := []byte("hello, auditexport\n")
		meta := map[string]string{"signature": "c2lnbmF0dXJl", "signature-algorithm": "Ed25519", "public-key-sha256": strings.Repeat("ab", 32)}
		k := key("year=2026/month=11/day=21/hour=03/small.json")
		put(ctx, t, s.Dest, k, body, meta)
		got, gotMeta := get(ctx, t, s.Reader, k)
		if !bytes.Equal(got, body) {
			t.Fatalf("read back %q, want %q", got, body)
		}
		for name, v := range meta {
			if gotMeta[name] != v {
				t.Errorf("metadata %s = %q, want %q (all: %v)", name, gotMeta[name], v, gotMeta)
			}
		}
	})

	t.Run("a put replaces the object: retries overwrite, never duplicate", func(t *testing.T) {
		k := key("replaced")
		put(ctx, t, s.Dest, k, []byte("first attempt, longer than the second"), nil)
		put(ctx, t, s.Dest, k, []byte("second"), nil)
		if got, _ := get(ctx, t, s.Reader, k); string(got) != "second" {
			t.Fatalf("read back %q after the second put", got)
		}
		if keys := list(ctx, t, s.Reader, k); !slices.Equal(keys, []string{k}) {
			t.Fatalf("keys after two puts: %v", keys)
		}
	})

	t.Run("an empty object", func(t *testing.T) {
		k := key("empty")
		put(ctx, t, s.Dest, k, nil, nil)
		if got, _ := get(ctx, t, s.Reader, k); len(got) != 0 {
			t.Fatalf("read back %d bytes", len(got))
		}
	})

	t.Run("a large object goes in parts and comes back whole", func(t *testing.T) {
		body := make([]byte, s.LargeSize)
		rand.Read(body)
		k := key("large.parquet")
		put(ctx, t, s.Dest, k, body, nil)
		if got, _ := get(ctx, t, s.Reader, k); !bytes.Equal(got, body) {
			t.Fatalf("read back %d bytes that differ from the %d put", len(got), len(body))
		}
		// The same again, as a retried export does: the parts of the first upload do not linger.
		put(ctx, t, s.Dest, k, body, nil)
		if got, _ := get(ctx, t, s.Reader, k); !bytes.Equal(got, body) {
			t.Fatal("a second upload of the same key changed its content")
		}
	})

	t.Run("list returns the keys under a prefix in order", func(t *testing.T) {
		names := []string{"list/b", "list/a/2", "list/a/1", "list-not/x"}
		for _, n := range names {
			put(ctx, t, s.Dest, key(n), []byte(n), nil)
		}
		want := []string{key("list/a/1"), key("list/a/2"), key("list/b")}
		if got := list(ctx, t, s.Reader, key("list/")); !slices.Equal(got, want) {
			t.Fatalf("list = %v, want %v", got, want)
		}
	})

	t.Run("a missing object is ErrNotFound", func(t *testing.T) {
		_, _, err := s.Reader.Get(ctx, key("never-written"))
		if !errors.Is(err, destination.ErrNotFound) {
			t.Fatalf("get of a missing object: %v", err)
		}
	})

	t.Run("a refused write is an error explained by the service's code", func(t *testing.T) {
		err := s.Unwritable.Put(ctx, object(key("refused"), []byte("x"), nil))
		if err == nil {
			t.Fatal("the unwritable destination accepted a write")
		}
		cause := s.Unwritable.Explain(err)
		code, msg, ok := strings.Cut(cause, ": ")
		if !ok || code == "" || strings.ContainsAny(code, " \n") || msg == "" || strings.Contains(cause, "\n") {
			t.Fatalf("explanation %q is not one line of <code>: <message>", cause)
		}
		if _, _, err := s.Reader.Get(ctx, key("refused")); !errors.Is(err, destination.ErrNotFound) {
			t.Fatalf("the refused write left an object: %v", err)
		}
	})

	t.Run("a canceled put returns promptly, explained as canceled", func(t *testing.T) {
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		err := s.Dest.Put(canceled, object(key("canceled"), []byte("x"), nil))
		if err == nil || !strings.HasPrefix(s.Dest.Explain(err), "Canceled: ") {
			t.Fatalf("put with a canceled context: %v (%v)", err, explain(s.Dest, err))
		}
	})

	t.Run("a put cut short by its deadline is explained as a timeout or no reply", func(t *testing.T) {
		err := destination.WithinTime(ctx, time.Nanosecond, func(ctx context.Context) error {
			<-ctx.Done()
			return s.Dest.Put(ctx, object(key("late"), []byte("x"), nil))
		})
		if cause := explain(s.Dest, err); !strings.HasPrefix(cause, "NetworkError: no reply from ") {
			t.Fatalf("put past its deadline explained as %q", cause)
		}
	})

	t.Run("describe names the kind and the authentication", func(t *testing.T) {
		if d := s.Dest.Describe(); !strings.Contains(d, " using ") {
			t.Fatalf("Describe() = %q", d)
		}
	})
}

func explain(d destination.Destination, err error) string {
	if err == nil {
		return "(no error)"
	}
	return d.Explain(err)
}

func object(key string, body []byte, meta map[string]string) destination.Object {
	return destination.Object{Key: key, Body: bytes.NewReader(body), Size: int64(len(body)), ContentType: "application/octet-stream", Metadata: meta}
}

func put(ctx context.Context, t *testing.T, d destination.Destination, key string, body []byte, meta map[string]string) {
	t.Helper()
	if err := d.Put(ctx, object(key, body, meta)); err != nil {
		t.Fatalf("put %s: %v (%s)", key, err, d.Explain(err))
	}
}

func get(ctx context.Context, t *testing.T, r destination.Reader, key string) ([]byte, map[string]string) {
	t.Helper()
	body, meta, err := r.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data, meta
}

func list(ctx context.Context, t *testing.T, r destination.Reader, prefix string) []string {
	t.Helper()
	keys, err := r.List(ctx, prefix)
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	return keys
}
