package destination

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// TransportConfig bounds every request to a destination. Zero fields take the defaults shown.
type TransportConfig struct {
	// ConnectTimeout bounds the TCP connection, and then the TLS handshake. Default 10s.
	ConnectTimeout time.Duration
	// ResponseTimeout bounds the wait for a reply's headers once the request is sent. Default 60s.
	ResponseTimeout time.Duration
	// ProgressTimeout bounds any pause in sending a request's body (a part, a block) or in
	// receiving a reply's body: a destination that stops reading costs this long, not the
	// whole upload's time. Default 60s.
	ProgressTimeout time.Duration
	// Addresses says where connections may go.
	Addresses AddressPolicy
}

// fillDefaults replaces zero (and negative) fields by their defaults.
func (c *TransportConfig) fillDefaults() {
	c.ConnectTimeout = cmp.Or(max(c.ConnectTimeout, 0), 10*time.Second)
	c.ResponseTimeout = cmp.Or(max(c.ResponseTimeout, 0), time.Minute)
	c.ProgressTimeout = cmp.Or(max(c.ProgressTimeout, 0), time.Minute)
}

// NewHTTPClient returns the HTTP client every destination must send its requests with: it
// connects only where cfg.Addresses allows, bounds each phase of a request, follows no redirect
// (a 3xx is a reply like any other, which the implementation refuses), uses no proxy (the address
// dialled must be the destination's), and reports every failure before a reply in one form
// (NoAnswerError), so a refused port and a silent one look the same.
func NewHTTPClient(cfg TransportConfig) *http.Client {
	cfg.fillDefaults()
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	base := &http.Transport{
		DialContext:           cfg.Addresses.dialer(dialer),
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.ResponseTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport:     &guardedTransport{base: base, progress: cfg.ProgressTimeout},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// guardedTransport adds the progress timeout to each request and gives failures their types.
type guardedTransport struct {
	base     http.RoundTripper
	progress time.Duration
}

func (g *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	ctx, cancel := context.WithCancel(parent)
	w := &watchdog{after: g.progress, cancel: cancel}
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &watchedBody{body: req.Body, w: w, sending: true}
		if getBody := req.GetBody; getBody != nil { // a resend on a new connection
			req.GetBody = func() (io.ReadCloser, error) {
				b, err := getBody()
				if err != nil {
					return nil, err
				}
				return &watchedBody{body: b, w: w, sending: true}, nil
			}
		}
	}
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		fired := w.stop()
		cancel()
		return nil, failure(req.URL.Host, parent, fired, g.progress, err)
	}
	w.kick() // the reply's body must flow too
	resp.Body = &watchedBody{body: resp.Body, w: w, done: cancel, host: req.URL.Host}
	return resp, nil
}

// failure types an error of a request that got no reply.
func failure(host string, parent context.Context, stalled bool, progress time.Duration, err error) error {
	var refused *AddressError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &refused), errors.As(err, &dnsErr), errors.As(err, &certErr):
		return err
	case stalled:
		return &ProgressError{Host: host, After: progress}
	case errors.Is(parent.Err(), context.Canceled):
		return err // the caller gave up (a shutdown): not the destination's doing
	}
	return &NoAnswerError{Host: host, Err: err}
}

// watchdog cancels a request when its body makes no progress for after.
type watchdog struct {
	after  time.Duration
	cancel context.CancelFunc

	mu     sync.Mutex
	timer  *time.Timer
	fired  bool
	paused bool
	done   bool
}

// kick restarts the countdown: bytes moved.
func (w *watchdog) kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.paused = false
	if w.timer == nil {
		w.timer = time.AfterFunc(w.after, w.fire)
	} else {
		w.timer.Reset(w.after)
	}
}

// pause stops the countdown while the reply is awaited (the response timeout's turn).
func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paused = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *watchdog) fire() {
	w.mu.Lock()
	if w.done || w.paused {
		w.mu.Unlock()
		return
	}
	w.fired = true
	w.mu.Unlock()
	w.cancel()
}

// stop ends the watch and reports whether it had fired.
func (w *watchdog) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	return w.fired
}

func (w *watchdog) hasFired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

// watchedBody kicks the watchdog on every read that moves bytes: a request body as the
// transport sends it, or a reply's body as it is read.
type watchedBody struct {
	body    io.ReadCloser
	w       *watchdog
	sending bool               // a request body: at its end the reply is awaited
	done    context.CancelFunc // a reply body: releases the request when closed
	host    string
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.sending {
		b.w.kick() // the transport asks for more: what it had is sent
		n, err := b.body.Read(p)
		if err == io.EOF {
			b.w.pause()
		}
		return n, err
	}
	n, err := b.body.Read(p)
	if n > 0 {
		b.w.kick()
	}
	switch {
	case err == io.EOF:
		b.w.stop()
	case err != nil && b.w.hasFired():
		return n, &ProgressError{Host: b.host, After: b.w.after}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.body.Close()
	if !b.sending {
		b.w.stop()
		b.done()
	}
	return err
}
