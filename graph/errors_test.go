package graph

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/auditexport/auditexport/store"
)

// A store out of reach reads as UNAVAILABLE, not as an internal error, and its cause (which may
// name the database's host) stays in the log.
func TestUnavailableStoreIsNamed(t *testing.T) {
	var log bytes.Buffer
	present := presentError(slog.New(slog.NewTextHandler(&log, nil)))
	cause := fmt.Errorf("list configurations: dial tcp db.internal:5432: connection refused: %w", store.ErrUnavailable)
	got := present(context.Background(), cause)
	if got.Extensions["code"] != CodeUnavailable || strings.Contains(got.Message, "db.internal") || !strings.Contains(got.Message, "retry later") {
		t.Fatalf("presented as %q %v", got.Message, got.Extensions)
	}
	if !strings.Contains(log.String(), "db.internal") {
		t.Fatalf("the cause is not in the log: %s", log.String())
	}
}
