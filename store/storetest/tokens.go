package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/auditexport/auditexport/store"
)

func testTokens(t *testing.T, h *harness) {
	st := h.new(t)
	token, rec, err := st.CreateToken(t.Context(), "ci-pipeline", []store.Permission{store.PermissionAudit, store.PermissionIngest, store.PermissionAudit}, admin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "aex_") || len(rec.Permissions) != 2 || rec.CreatedBy != "admin" {
		t.Fatalf("token %q, record %+v", token, rec)
	}
	p, err := st.Authenticate(t.Context(), token)
	if err != nil || p.Name != "ci-pipeline" || !p.Can(store.PermissionAudit) || !p.Can(store.PermissionIngest) || p.Can(store.PermissionAdmin) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	// Same id, other secret; other id; garbage; empty; too long.
	flipped := byte('A')
	if token[len(token)-1] == 'A' {
		flipped = 'B'
	}
	forged := token[:len(token)-1] + string(flipped)
	for _, bad := range []string{forged, "aex_0000000000000000_" + strings.Repeat("A", 43), "nope", "", strings.Repeat("x", 5000)} {
		if _, err := st.Authenticate(t.Context(), bad); !errors.Is(err, store.ErrUnauthenticated) {
			t.Errorf("Authenticate(%.30q) = %v, want ErrUnauthenticated", bad, err)
		}
	}
	if _, _, err := st.CreateToken(t.Context(), "CI-Pipeline", []store.Permission{store.PermissionAudit}, admin); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, _, err := st.CreateToken(t.Context(), "x", nil, admin); !IsValidation(err, "permissions") {
		t.Errorf("no permissions: %v", err)
	}
	if _, _, err := st.CreateToken(t.Context(), "x", []store.Permission{"ROOT"}, admin); !IsValidation(err, "permissions") {
		t.Errorf("unknown permission: %v", err)
	}
	if _, _, err := st.CreateToken(t.Context(), "", []store.Permission{store.PermissionAudit}, admin); !IsValidation(err, "name") {
		t.Errorf("empty name: %v", err)
	}
}

func testRevokeToken(t *testing.T, h *harness) {
	st := h.new(t)
	if err := st.SetBootstrapToken(t.Context(), "bootstrap-admin-token-value"); err != nil {
		t.Fatal(err)
	}
	bootstrap, _ := st.Authenticate(t.Context(), "bootstrap-admin-token-value")
	ci, _, _ := st.CreateToken(t.Context(), "ci-pipeline", []store.Permission{store.PermissionAudit}, bootstrap)
	ingest, _, _ := st.CreateToken(t.Context(), "Platform", []store.Permission{store.PermissionIngest}, bootstrap)
	tokens, err := st.Tokens(t.Context())
	if err != nil || len(tokens) != 3 || tokens[0].Name != "admin" || tokens[1].Name != "ci-pipeline" || tokens[2].Name != "Platform" {
		t.Fatalf("Tokens = %+v %v; want admin, ci-pipeline, Platform", tokens, err)
	}
	for _, tok := range tokens {
		if tok.SHA256 != nil {
			t.Errorf("Tokens returns the hash of %s", tok.Name)
		}
	}
	head := Status(t, st).Head

	revoked, err := st.RevokeToken(t.Context(), "PLATFORM", bootstrap)
	if err != nil || revoked.Name != "Platform" || revoked.SHA256 != nil {
		t.Fatalf("RevokeToken = %+v %v", revoked, err)
	}
	if _, err := st.Authenticate(t.Context(), ingest); !errors.Is(err, store.ErrUnauthenticated) {
		t.Fatalf("a revoked token still authenticates: %v", err)
	}
	if p, err := st.Authenticate(t.Context(), ci); err != nil || p.Name != "ci-pipeline" {
		t.Fatalf("another token stopped working: %v", err)
	}
	events := readAll(t, st, head)
	if len(events) != 1 || events[0].Action != "DELETE" || !strings.Contains(string(events[0].AuditPayload), `"ApiTokenRevokedAuditPayload"`) ||
		events[0].Actor.Name != "admin" {
		t.Fatalf("audit events of the revocation: %+v", events)
	}

	if _, err := st.RevokeToken(t.Context(), "Platform", bootstrap); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking it again: %v", err)
	}
	if _, err := st.RevokeToken(t.Context(), "admin", bootstrap); !IsValidation(err, "name") {
		t.Errorf("a token revoking itself: %v", err)
	}
	if _, err := st.Authenticate(t.Context(), "bootstrap-admin-token-value"); err != nil {
		t.Errorf("the refused self-revocation changed something: %v", err)
	}
}

func testBootstrapToken(t *testing.T, h *harness) {
	st := h.new(t)
	if has, _ := st.HasBootstrapToken(t.Context()); has {
		t.Fatal("new store has a bootstrap token")
	}
	if err := st.SetBootstrapToken(t.Context(), "first-admin-token-value"); err != nil {
		t.Fatal(err)
	}
	p, err := st.Authenticate(t.Context(), "first-admin-token-value")
	if err != nil || p.Name != "admin" || !p.Can(store.PermissionAudit) || !p.Can(store.PermissionAdmin) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	if err := st.SetBootstrapToken(t.Context(), "second-admin-token-value"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(t.Context(), "first-admin-token-value"); !errors.Is(err, store.ErrUnauthenticated) {
		t.Fatalf("replaced bootstrap token still works: %v", err)
	}
	if _, _, err := st.CreateToken(t.Context(), "admin", []store.Permission{store.PermissionAudit}, admin); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a token may not take the bootstrap token's name: %v", err)
	}
}
