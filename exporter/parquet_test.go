package exporter

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/store"
)

// records are n sample events, one every 30 seconds from midnight, as the buffer stores them.
func records(t *testing.T, n int) [][]byte {
	t.Helper()
	return recordsOf(t, eventtest.NDJSON(0, n, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 30*time.Second))
}

// recordsOf are the events of an NDJSON body as the buffer stores them.
func recordsOf(t *testing.T, body []byte) [][]byte {
	t.Helper()
	var d event.Decoder
	batch, err := d.NDJSON(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, batch.Len())
	for i := range recs {
		recs[i] = batch.Record(i)
	}
	return recs
}

// encode runs an encoder with small row groups over recs and returns the files it handed on and
// the error of close.
func encode(t *testing.T, dir string, recs [][]byte, done func(EncodedFile) error) error {
	t.Helper()
	return encodeAll(t, dir, recs, store.ExportPlan{MaxFileEventBytes: 1 << 30, MaxOpenFiles: 2}, 32<<10, done)
}

// encodeAll runs an encoder with plan and row groups of rowGroupBytes over recs (seqs 1..n).
func encodeAll(t *testing.T, dir string, recs [][]byte, plan store.ExportPlan, rowGroupBytes int64, done func(EncodedFile) error) error {
	t.Helper()
	return addAll(newEncoder(plan, rowGroupBytes, dir, "cfg", done), recs)
}

// encodeOneFile encodes recs into one file of row groups of rowGroupBytes and returns it;
// pqarrowDictionaries keeps every dictionary, as pqarrow does.
func encodeOneFile(t *testing.T, recs [][]byte, rowGroupBytes int64, pqarrowDictionaries bool) []byte {
	t.Helper()
	var out []byte
	enc := newEncoder(store.ExportPlan{MaxFileEventBytes: 1 << 30, MaxOpenFiles: 1}, rowGroupBytes, t.TempDir(), "cfg", func(f EncodedFile) error {
		var err error
		out, err = os.ReadFile(f.Path)
		return err
	})
	enc.pqarrowDictionaries = pqarrowDictionaries
	if err := addAll(enc, recs); err != nil {
		t.Fatal(err)
	}
	return out
}

// addAll adds recs to enc, as seqs 1, 2, … and closes it.
func addAll(enc *encoder, recs [][]byte) error {
	for i, rec := range recs {
		if err := enc.add(uint64(i+1), rec); err != nil {
			enc.abort()
			return err
		}
	}
	if err := enc.close(); err != nil {
		enc.abort()
		return err
	}
	return nil
}

func TestEncoderHandsOnEveryFileInOrder(t *testing.T) {
	t.Parallel()
	recs := records(t, 600) // 5 hours, several row groups each
	var files []EncodedFile
	err := encode(t, t.TempDir(), recs, func(f EncodedFile) error {
		data, err := os.ReadFile(f.Path)
		if sum := sha256.Sum256(data); err != nil || int64(len(data)) != f.Bytes || hex.EncodeToString(sum[:]) != f.SHA256() {
			t.Errorf("file %s handed on unfinished, or its size or SHA-256 wrong: %d bytes, %v", f.Path, len(data), err)
		}
		files = append(files, f)
		return nil
	})
	if err != nil || len(files) != 5 {
		t.Fatalf("encoded %d files (%v), want one per hour: 5", len(files), err)
	}
	var next uint64 = 1
	for i, f := range files {
		if f.First != next || f.Rows != 120 || f.Last != f.First+119 || f.Hour.Hour() != i {
			t.Errorf("file %d: %+v; want rows %d..%d of hour %d", i, f, next, next+119, i)
		}
		next = f.Last + 1
	}
}

// When the receiver of finished files fails, the encoder stops, returns its error, and leaves no
// temporary file behind, including the files still open and the one being finished.
func TestEncoderFailureLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	recs := records(t, 600)
	refused := errors.New("upload refused")
	dir := t.TempDir()
	handed := 0
	err := encode(t, dir, recs, func(f EncodedFile) error {
		handed++
		if handed == 2 {
			os.Remove(f.Path) // as the upload side does with a file it refuses
			return refused
		}
		return os.Remove(f.Path)
	})
	if !errors.Is(err, refused) || handed != 2 {
		t.Fatalf("encode: %v after %d files; want the receiver's error after 2", err, handed)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
