package destination

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]addressClass{
		"169.254.169.254":        never, // AWS, GCP, Azure, Oracle metadata
		"169.254.170.2":          never, // ECS task metadata
		"fd00:ec2::254":          never, // AWS metadata over IPv6
		"100.100.100.200":        never, // Alibaba metadata
		"168.63.129.16":          never, // Azure wire server
		"fe80::1":                never,
		"0.0.0.0":                never,
		"::":                     never,
		"255.255.255.255":        never,
		"224.0.0.1":              never,
		"::ffff:169.254.169.254": never, // mapped
		"64:ff9b::a9fe:a9fe":     never, // NAT64 of 169.254.169.254
		"2002:a9fe:a9fe::1":      never, // 6to4 of 169.254.169.254
		"127.0.0.1":              private,
		"127.8.9.10":             private,
		"::1":                    private,
		"10.1.2.3":               private,
		"172.16.0.1":             private,
		"192.168.1.1":            private,
		"100.64.0.1":             private,
		"fd12:3456::1":           private,
		"::ffff:10.0.0.1":        private,
		"64:ff9b::a00:1":         private, // NAT64 of 10.0.0.1
		"52.216.1.2":             public,  // S3
		"20.60.1.2":              public,  // Azure Storage
		"2600:1f18::1":           public,
	} {
		if got := classify(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: class %d, want %d", addr, got, want)
		}
	}
}

func TestParseAddressPolicy(t *testing.T) {
	t.Parallel()
	none, _ := ParseAddressPolicy("")
	anyPrivate, _ := ParseAddressPolicy("any")
	named, err := ParseAddressPolicy("127.0.0.1, minio.internal:9000")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p          AddressPolicy
		host, port string
		want       bool
	}{
		{none, "127.0.0.1", "9000", false},
		{anyPrivate, "10.0.0.1", "443", true},
		{named, "127.0.0.1", "1234", true},
		{named, "minio.internal", "9000", true},
		{named, "minio.internal", "9001", false},
		{named, "localhost", "9000", false},
	} {
		if got := c.p.allowsPrivate(c.host, c.port); got != c.want {
			t.Errorf("%s allows private for %s:%s = %v", c.p, c.host, c.port, got)
		}
	}
	for _, bad := range []string{"*", "http://minio:9000", "a b"} {
		if _, err := ParseAddressPolicy(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// listen returns a loopback listener and the number of connections it accepted, each handled by
// serve (which may be nil: the connection is held open, silent).
func listen(t *testing.T, serve func(net.Conn)) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			t.Cleanup(func() { conn.Close() })
			if serve != nil {
				go serve(conn)
			}
		}
	}()
	return ln.Addr().String(), &accepted
}

func client(t *testing.T, allowPrivate string, cfg TransportConfig) *http.Client {
	t.Helper()
	p, err := ParseAddressPolicy(allowPrivate)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addresses = p
	return NewHTTPClient(cfg)
}

func put(ctx context.Context, c *http.Client, url string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// By default the service connects to no loopback or private address, named or literal, and never
// to a metadata address even when private ones are allowed; the refusal comes before any
// connection.
func TestPolicyIsCheckedOnTheDialledAddress(t *testing.T) {
	t.Parallel()
	addr, accepted := listen(t, nil)
	_, port, _ := net.SplitHostPort(addr)
	for name, c := range map[string]struct {
		allow, url string
		never      bool
	}{
		"a literal loopback address":        {"", "http://" + addr, false},
		"a name resolving to loopback":      {"", "http://localhost:" + port, false},
		"a name the operator did not allow": {"127.0.0.1", "http://localhost:" + port, false},
		"the metadata service":              {"any", "http://169.254.169.254/latest/meta-data/", true},
		"a metadata address in IPv6":        {"any", "http://[fd00:ec2::254]/", true},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := put(t.Context(), client(t, c.allow, TransportConfig{}), c.url, []byte("x"))
			var refused *AddressError
			if !errors.As(err, &refused) || refused.Never != c.never {
				t.Fatalf("put to %s: %v", c.url, err)
			}
			if strings.Contains(refused.Error(), "127.0.0.1") && !strings.Contains(c.url, "127.0.0.1") {
				t.Errorf("the refusal names the address the name resolved to: %q", refused.Error())
			}
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d connections reached the listener", n)
	}
	// Allowed by name, the same listener is reached.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	put(ctx, client(t, "127.0.0.1", TransportConfig{}), "http://"+addr, []byte("x"))
	if accepted.Load() != 1 {
		t.Fatal("the allowed endpoint was not connected to")
	}
}

// Redirects are not followed: the 3xx is the reply, and its target is never contacted.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	target, reached := listen(t, nil)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+target+"/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	resp, err := put(t.Context(), client(t, "127.0.0.1", TransportConfig{}), redirector.URL, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || reached.Load() != 0 {
		t.Fatalf("status %d, %d connections to the redirect's target", resp.StatusCode, reached.Load())
	}
}

// A refused port and a port that accepts and never answers give one error, with one text but
// for the address.
func TestRefusedAndSilentPortsLookAlike(t *testing.T) {
	t.Parallel()
	closed, _ := listen(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	c := client(t, "127.0.0.1", TransportConfig{ResponseTimeout: 300 * time.Millisecond})
	texts := map[string]string{}
	for name, addr := range map[string]string{"refused": refused, "silent": closed} {
		_, err := put(t.Context(), c, "http://"+addr, []byte("x"))
		var noAnswer *NoAnswerError
		if !errors.As(err, &noAnswer) {
			t.Fatalf("%s: %v", name, err)
		}
		cause, _ := ExplainTransport(err, addr)
		texts[name] = strings.ReplaceAll(cause, addr, "ADDR")
	}
	if texts["refused"] != texts["silent"] {
		t.Fatalf("refused: %q\nsilent:  %q", texts["refused"], texts["silent"])
	}
}

// A destination that stops reading a request's body costs the progress timeout, not the whole
// upload's time; one that reads slowly but steadily is not cut off.
func TestProgressTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	stalling := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, 1<<20) // then reads no more
		<-release
	}))
	defer stalling.Close()
	defer close(release)
	c := client(t, "127.0.0.1", TransportConfig{ProgressTimeout: 500 * time.Millisecond})
	_, err := put(t.Context(), c, stalling.URL, make([]byte, 64<<20))
	var stalled *ProgressError
	if !errors.As(err, &stalled) {
		t.Fatalf("upload to a server that stopped reading: %v", err)
	}
	if cause, _ := ExplainTransport(err, ""); !strings.HasPrefix(cause, "RequestTimeout: the transfer with 127.0.0.1:") {
		t.Fatalf("explained as %q", cause)
	}

	steady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer steady.Close()
	resp, err := put(t.Context(), c, steady.URL, make([]byte, 4<<20))
	if err != nil {
		t.Fatalf("a slow but steady upload was cut off: %v", err)
	}
	resp.Body.Close()
}

// A reply whose body stops coming fails its read.
func TestProgressTimeoutOnTheReply(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	resp, err := put(t.Context(), client(t, "127.0.0.1", TransportConfig{ProgressTimeout: 300 * time.Millisecond}), srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	var stalled *ProgressError
	if !errors.As(err, &stalled) {
		t.Fatalf("reading a stalled reply: %v", err)
	}
}
