package store_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

func TestEndpointPolicy(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		policy  string
		allowed []string
		refused []string
	}{
		{"", []string{"http://10.0.0.1:9000", "https://anything.example"}, nil},
		{"none", nil, []string{"https://s3.example.com"}},
		{"minio.internal:9000, *.R2.cloudflarestorage.com,127.0.0.1,[::1]:9000",
			[]string{"http://minio.internal:9000", "https://acct.r2.cloudflarestorage.com", "https://a.b.r2.cloudflarestorage.com:443",
				"http://127.0.0.1:9000", "http://127.0.0.1", "http://[::1]:9000", "HTTP://MINIO.INTERNAL:9000"},
			[]string{"http://minio.internal", "http://minio.internal:9001", "https://r2.cloudflarestorage.com", "https://evilr2.cloudflarestorage.com",
				"http://169.254.169.254", "http://[::1]:9001", "http://minio.internal.evil.com:9000"}},
	} {
		p, err := store.ParseEndpointPolicy(c.policy)
		if err != nil {
			t.Fatalf("%q: %v", c.policy, err)
		}
		if err := p.Check(""); err != nil {
			t.Errorf("%q refuses AWS (no endpoint): %v", c.policy, err)
		}
		for _, e := range c.allowed {
			if err := p.Check(e); err != nil {
				t.Errorf("%q refuses %s: %v", c.policy, e, err)
			}
		}
		for _, e := range c.refused {
			if err := p.Check(e); err == nil {
				t.Errorf("%q allows %s", c.policy, e)
			}
		}
	}
	for _, bad := range []string{"http://minio:9000", "minio/path", "*", "a,,b", "host:port", "*.*.example.com"} {
		if _, err := store.ParseEndpointPolicy(bad); err == nil || !strings.Contains(err.Error(), "host[:port]") {
			t.Errorf("ParseEndpointPolicy(%q) = %v, want a refusal", bad, err)
		}
	}
}

func TestEndpointPolicyIsEnforcedOnWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy, _ := store.ParseEndpointPolicy("s3.example.com")
	st := storetest.Open(t, filepath.Join(dir, "a.db"), storetest.Key(), func(c *store.Config) { c.Endpoints = policy })

	cfg := accessKeyConfig()
	cfg.Endpoint = "http://169.254.169.254"
	if _, err := st.CreateConfiguration(t.Context(), cfg, testSecret, alice); !isValidation(err, "endpoint") || !strings.Contains(err.Error(), "not among this server's allowed endpoints") {
		t.Fatalf("create with an endpoint outside the policy: %v", err)
	}
	cfg.Endpoint = "https://s3.example.com"
	c, err := st.CreateConfiguration(t.Context(), cfg, testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateConfiguration(t.Context(), c.ID, alice, func(c *store.ExportConfiguration) error { c.Endpoint = "http://10.0.0.1"; return nil }, nil); !isValidation(err, "endpoint") {
		t.Fatalf("update to an endpoint outside the policy: %v", err)
	}
	if got, _ := st.Configuration(t.Context(), c.ID); got.Endpoint != "https://s3.example.com" {
		t.Fatalf("a refused update changed the endpoint to %q", got.Endpoint)
	}
	if _, err := st.UpdateConfiguration(t.Context(), c.ID, alice, func(c *store.ExportConfiguration) error { c.Interval = store.EveryHour; return nil }, nil); err != nil {
		t.Fatalf("update leaving the allowed endpoint: %v", err)
	}
}
