// Package testneed decides what a test does when something it needs from outside the process (a
// server, a browser, a tool) is missing: it skips locally, so a developer without it can run the
// rest, and fails under CI=true, where everything must be tested for real.
package testneed

import (
	"os"
	"testing"
)

// Missing skips the test with msg, or fails it with msg when CI=true.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: what a test needs must be there)")
	}
	t.Skip(msg)
}
