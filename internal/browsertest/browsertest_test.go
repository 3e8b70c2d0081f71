package browsertest

import (
	"bytes"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestPageTitleAndScreenshot: Chromium loads a page from a server on 127.0.0.1, runs its script,
// and a screenshot of it is a PNG of the viewport, kept among the run's artifacts.
func TestPageTitleAndScreenshot(t *testing.T) {
	t.Parallel()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>auditexport console</title>
<h1 id="status">loading</h1>
<script>document.getElementById("status").textContent = "ready";</script>`)
	}))
	t.Cleanup(server.Close)

	ctx := NewContext(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(server.URL)); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if title != "auditexport console" {
		t.Fatalf("title %q, want %q", title, "auditexport console")
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	if err != nil {
		t.Fatal(err)
	}
	if status != "ready" {
		t.Fatalf("status %q, want the script's %q", status, "ready")
	}

	path := Screenshot(t, ctx, "console")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", path, err)
	}
	if size := img.Bounds().Size(); size.X != 1280 || size.Y != 800 {
		t.Fatalf("screenshot of a short page %v, want the viewport's 1280×800", size)
	}
}
