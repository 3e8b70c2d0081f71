// Package browsertest gives tests a real browser: Debian's Chromium, headless, driven through the
// DevTools protocol by chromedp, and a place to keep screenshots after the run.
//
// scripts/chromium.sh installs Chromium and scripts/with-test-servers.sh sets
// AUDITEXPORT_TEST_CHROMIUM to its path. Without it the tests skip locally, but under CI=true they
// fail: CI must test for real.
//
// Screenshots go to $AUDITEXPORT_TEST_ARTIFACTS/screenshots/<test>/<name>.png, and without that
// variable to test-artifacts/ at the module's root (ignored by git), so they outlive the test's
// temporary directories and every package's land in one place.
package browsertest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/auditexport/auditexport/internal/testneed"
	"github.com/chromedp/chromedp"
)

// Require returns the path of the Chromium binary from AUDITEXPORT_TEST_CHROMIUM.
func Require(t testing.TB) string {
	t.Helper()
	path := os.Getenv("AUDITEXPORT_TEST_CHROMIUM")
	msg := "no test browser: run `make test`, or `scripts/with-test-servers.sh go test ./...` (Chromium from scripts/chromium.sh install)"
	if path != "" {
		if info, err := os.Stat(path); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			msg = "AUDITEXPORT_TEST_CHROMIUM=" + path + " is not an executable file"
			path = ""
		}
	}
	if path == "" {
		testneed.Missing(t, msg)
	}
	return path
}

// NewContext starts a headless Chromium of this test's own, with a fresh profile, and returns a
// chromedp context for its first tab, whose viewport is 1280×800; the browser stops when the test
// ends. opts (allocator options: flags) come after the defaults. For a narrow screen, run
// chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile) on the context.
//
// The flags keep Chromium off the network but for the pages a test opens: the machine has no
// internet, and without them Chromium keeps calling Google's hosts (updates, sync, field trials).
func NewContext(t testing.TB, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	all := append(chromedp.DefaultExecAllocatorOptions[:], // headless, no first run, no background networking, no sync
		chromedp.ExecPath(Require(t)),
		chromedp.NoSandbox, // the tests may run as root, where Chromium's sandbox will not start
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800), // the window; the viewport is set below
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(all, opts...)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Start the browser now, on a context with no deadline, so a failure to start fails here.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

var notFileName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves a PNG of the whole page in ctx's tab as name (".png" added) among the test's
// screenshots, and returns its path.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(ArtifactsDir(t), "screenshots", notFileName.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, notFileName.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
	return path
}

// ArtifactsDir returns the directory that keeps what a test run leaves to look at afterwards:
// $AUDITEXPORT_TEST_ARTIFACTS, or test-artifacts/ at the module's root.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("AUDITEXPORT_TEST_ARTIFACTS"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "test-artifacts")
}

// moduleRoot finds go.mod from the working directory up: go test runs in the package's directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("browsertest: no go.mod above the working directory; set AUDITEXPORT_TEST_ARTIFACTS")
		}
		dir = parent
	}
}
