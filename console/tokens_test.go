package console_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/auditexport/auditexport/internal/browsertest"
	"github.com/auditexport/auditexport/internal/testserver"
)

// TestConsoleTokens: an ADMIN creates a token (shown once, copied, working), sees it listed,
// is told why a duplicate name is refused, and revokes it after confirming.
func TestConsoleTokens(t *testing.T) {
	browsertest.Require(t)
	srv := testserver.Start(t, testserver.Options{})
	c := openConsole(t, srv)
	c.signIn(srv.AdminToken)
	c.click(`#nav a[href="#/tokens"]`)
	c.waitFor(`document.getElementById('token-name') && document.querySelector('tr[data-token="admin"]')`)
	if own := c.text(`tr[data-token="admin"]`); !strings.Contains(own, "this session's token") || strings.Contains(own, "Revoke") {
		t.Fatalf("the signed-in token's row offers to revoke itself: %q", own)
	}

	c.fill("#token-name", "ci-pipeline")
	c.click("#perm-AUDIT")
	c.click(".token-form button[type=submit]")
	c.waitFor(`document.getElementById('new-token-value') && document.getElementById('new-token-value').value`)
	token := eval[string](c, `document.getElementById('new-token-value').value`)
	var who struct {
		Viewer struct {
			Name        string
			Permissions []string
		}
	}
	srv.MustGraphQL(token, `{ viewer { name permissions } }`, nil, &who)
	if who.Viewer.Name != "ci-pipeline" || fmt.Sprint(who.Viewer.Permissions) != "[AUDIT]" {
		t.Fatalf("the token shown is %+v", who.Viewer)
	}
	c.screenshot("token-created")
	c.clickButton("Done: I have stored it")
	c.waitFor(`document.querySelector('tr[data-token="ci-pipeline"]') && !document.getElementById('new-token-value')`)
	if strings.Contains(c.pageText(), token) {
		t.Fatalf("the token is still on the page after Done")
	}

	c.fill("#token-name", "CI-Pipeline") // names are unique regardless of case
	c.click("#perm-INGEST")
	c.click(".token-form button[type=submit]")
	c.waitFor(`!document.getElementById('token-name-err').hidden`)
	if msg := c.text("#token-name-err"); msg != `a token named "ci-pipeline" already exists` || eval[string](c, `document.getElementById('token-name').getAttribute('aria-invalid')`) != "true" {
		t.Fatalf("a duplicate name: error %q", msg)
	}
	c.screenshot("tokens")

	c.click(`tr[data-token="ci-pipeline"] button`)
	c.click("dialog[open] button[data-confirm]")
	c.waitFor(`!document.querySelector('tr[data-token="ci-pipeline"]') && document.querySelector('tr[data-token="admin"]')`)
	if resp := srv.GraphQL(token, `{ viewer { name } }`, nil); resp.Status != http.StatusUnauthorized {
		t.Fatalf("a revoked token answers %d", resp.Status)
	}
	c.noCSPViolations()
}

// TestConsoleOffersOnlyWhatTheTokenMay: an AUDIT token sees exports but no tokens page; an
// INGEST token is told the console has nothing for it; a wrong token is refused at sign-in; a
// token revoked while signed in signs the tab out at its next request.
func TestConsoleOffersOnlyWhatTheTokenMay(t *testing.T) {
	browsertest.Require(t)
	srv := testserver.Start(t, testserver.Options{})
	audit := newToken(srv, "auditor", "AUDIT")
	ingest := newToken(srv, "pipeline", "INGEST")
	c := openConsole(t, srv)

	c.signIn(audit)
	c.waitFor(`document.querySelector('main h1').textContent === 'Exports'`)
	if nav := c.text("#nav"); nav != "Exports" {
		t.Fatalf("an AUDIT token's navigation: %q", nav)
	}
	c.goTo("#/tokens")
	if h := c.text("main h1"); h != "Nothing here for this token" {
		t.Fatalf("an AUDIT token on #/tokens: %q", h)
	}
	c.click("#signout")

	c.signIn(ingest)
	c.waitFor(`document.querySelector('main h1')`)
	if h, nav := c.text("main h1"), c.text("#nav"); h != "Nothing here for this token" || nav != "" {
		t.Fatalf("an INGEST token sees %q with navigation %q", h, nav)
	}
	if buttons := eval[int](c, `document.querySelectorAll('main a.button, main button').length`); buttons != 0 {
		t.Fatalf("an INGEST token is offered %d actions", buttons)
	}
	c.screenshot("ingest-token")
	c.click("#signout")

	c.waitFor(`document.activeElement && document.activeElement.id === 'token'`)
	c.do(chromedp.KeyEvent("not-a-token"), chromedp.KeyEvent("\r"))
	c.waitFor(`!document.getElementById('signin-error').hidden`)
	if msg := c.text("#signin-error"); msg != "The server does not accept this token." || eval[int](c, `sessionStorage.length`) != 0 {
		t.Fatalf("a wrong token: %q", msg)
	}

	c.signIn(audit)
	srv.MustGraphQL(srv.AdminToken, `mutation { revokeApiToken(name: "auditor") { name } }`, nil, nil)
	c.do(chromedp.Evaluate[chromedp.Void](`location.hash = '#/config/any'`)) // the page's next request is refused
	c.waitFor(`document.getElementById('token') && !document.getElementById('signin-error').hidden`)
	if msg := c.text("#signin-error"); !strings.Contains(msg, "no longer accepts the token") || eval[int](c, `sessionStorage.length`) != 0 {
		t.Fatalf("after revocation: %q", msg)
	}
}
