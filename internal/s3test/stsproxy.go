package s3test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// AssumeRoleCall is one AssumeRole request seen by an STSProxy.
type AssumeRoleCall struct {
	RoleArn, ExternalID, RoleSessionName, DurationSeconds string
}

// STSProxy sits in front of the server's STS endpoint. MinIO ignores RoleArn and ExternalId, so
// the proxy records them to prove what the service sends; it can also shorten the lifetime of the
// credentials MinIO returns (at least 15 minutes there) to exercise refresh.
type STSProxy struct {
	URL string

	mu       sync.Mutex
	calls    []AssumeRoleCall
	lifetime time.Duration
}

var expirationPattern = regexp.MustCompile(`<Expiration>[^<]*</Expiration>`)

// NewSTSProxy starts a proxy; lifetime > 0 rewrites each credential's expiry to now+lifetime.
func (s *Server) NewSTSProxy(t testing.TB, lifetime time.Duration) *STSProxy {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &STSProxy{lifetime: lifetime}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the SigV4 signature covers the Host the client used
		},
		ModifyResponse: p.shortenExpiry,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "AssumeRole" {
			p.mu.Lock()
			p.calls = append(p.calls, AssumeRoleCall{
				RoleArn: form.Get("RoleArn"), ExternalID: form.Get("ExternalId"),
				RoleSessionName: form.Get("RoleSessionName"), DurationSeconds: form.Get("DurationSeconds"),
			})
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *STSProxy) shortenExpiry(resp *http.Response) error {
	if p.lifetime <= 0 || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	expiry := time.Now().Add(p.lifetime).UTC().Format(time.RFC3339)
	body = expirationPattern.ReplaceAll(body, []byte("<Expiration>"+expiry+"</Expiration>"))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// Calls returns the AssumeRole requests seen so far.
func (p *STSProxy) Calls() []AssumeRoleCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]AssumeRoleCall(nil), p.calls...)
}
