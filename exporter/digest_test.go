package exporter_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/store"
)

// Every job writes a signed digest listing its objects with their SHA-256, linked to the
// configuration's previous digest: a customer can verify that nothing was altered, removed or
// left out, with the public key alone (here also with openssl, as the README shows).
func TestDigestsAreSignedAndChained(t *testing.T) {
	f := newExportFixture(t, exporter.ExporterConfig{MaxFileEventBytes: 100 << 10})
	start := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	var jobs []store.ExportJob
	for i := range 2 {
		f.ingest(t, eventtest.NDJSON(i*1000, 400, start.Add(time.Duration(i)*time.Hour), 5*time.Second))
		job, err := f.exporter.RunNow(context.Background(), f.config.ID)
		if err != nil || job.Status != store.JobSucceeded || job.ObjectCount < 2 {
			t.Fatalf("export %d: %+v %v", i, job, err)
		}
		jobs = append(jobs, job)
	}
	prefix := "audit/tenant=acme/" + exporter.DigestDir + "/"
	keys := f.srv.Keys(t, f.bucket, prefix)
	if len(keys) != 2 {
		t.Fatalf("digests %v, want one per job", keys)
	}

	signingKey, err := f.store.DigestSigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	public := signingKey.Public().(ed25519.PublicKey)
	pemFile := filepath.Join(t.TempDir(), "digest-public-key.pem")
	os.WriteFile(pemFile, []byte(exporter.PublicKeyPEM(public)), 0o600)
	var previous *store.DigestRef
	for i, key := range keys { // keys sort by sequence: the jobs' order
		body := f.srv.Get(t, f.bucket, key)
		head := f.srv.Head(t, f.bucket, key)
		signature, err := base64.StdEncoding.DecodeString(head.Metadata[exporter.MetaSignature])
		if err != nil || !ed25519.Verify(public, body, signature) || head.Metadata[exporter.MetaSignatureAlgorithm] != "Ed25519" {
			t.Fatalf("%s: signature does not verify (metadata %v)", key, head.Metadata)
		}
		if ed25519.Verify(public, append(bytes.Clone(body[:len(body)-2]), '}', '\n', ' '), signature) {
			t.Fatal("a changed body still verifies")
		}
		verifyWithOpenSSL(t, pemFile, body, signature)

		var d exporter.Digest
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatal(err)
		}
		job := jobs[i]
		if d.JobID != job.ID || d.ConfigurationID != f.config.ID || d.FirstSequence != job.From+1 || d.LastSequence != job.To ||
			d.Events != job.EventCount || int64(len(d.Objects)) != job.ObjectCount {
			t.Errorf("%s does not describe job %+v: %+v", key, job, d)
		}
		tasks, _ := f.store.Tasks(t.Context(), job.ID)
		for j, o := range d.Objects {
			data := f.srv.Get(t, f.bucket, o.Key)
			sum := sha256.Sum256(data)
			if o.SHA256 != hex.EncodeToString(sum[:]) || o.Bytes != int64(len(data)) || o.Key != tasks[j].Key || o.SHA256 != tasks[j].SHA256 {
				t.Errorf("%s: object %+v does not match what is in the bucket (%d bytes) or task %+v", key, o, len(data), tasks[j])
			}
		}
		if (previous == nil) != (d.PreviousDigest == nil) || previous != nil && *previous != *d.PreviousDigest {
			t.Errorf("%s links to %+v, want %+v", key, d.PreviousDigest, previous)
		}
		sum := sha256.Sum256(body)
		previous = &store.DigestRef{Key: key, SHA256: hex.EncodeToString(sum[:])}
	}
	if c, _ := f.store.Configuration(t.Context(), f.config.ID); c.LastDigest != *previous {
		t.Errorf("configuration's last digest %+v, want %+v", c.LastDigest, *previous)
	}
}

// verifyWithOpenSSL checks the signature as the README tells customers to.
func verifyWithOpenSSL(t *testing.T, pemFile string, body, signature []byte) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is missing (CI=true: the README's verification recipe must be tested)")
		}
		t.Log("openssl missing: the README's recipe is not tested here")
		return
	}
	dir := t.TempDir()
	bodyFile, sigFile := filepath.Join(dir, "digest.json"), filepath.Join(dir, "digest.sig")
	os.WriteFile(bodyFile, body, 0o600)
	os.WriteFile(sigFile, signature, 0o600)
	out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pemFile, "-rawin", "-in", bodyFile, "-sigfile", sigFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
}
