package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/auditexport/auditexport/internal/browsertest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// stepTimeout bounds one browser step, so a broken page fails the test instead of hanging it;
// it is a guard, not a measurement.
const stepTimeout = 60 * time.Second

// watchScript runs before the console's own scripts in every document (DevTools adds it, so the
// page's CSP does not apply to it): it records CSP violations the page causes.
const watchScript = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`

// tab is one browser tab on the console of a real server.
type tab struct {
	t   *testing.T
	ctx context.Context
	srv *testserver.Server

	mu         sync.Mutex
	dialogs    []string // JavaScript dialogs (alert, confirm, prompt) opened: none may be
	exceptions []string // uncaught exceptions of the page
}

func openConsole(t *testing.T, srv *testserver.Server) *tab {
	t.Helper()
	c := &tab{t: t, ctx: browsertest.NewContext(t), srv: srv}
	if _, err := chromedp.Call(c.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchScript}); err != nil {
		t.Fatal(err)
	}
	dialogs := chromedp.Events(c.ctx, page.JavascriptDialogOpening)
	exceptions := chromedp.Events(c.ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.dialogs = append(c.dialogs, string(ev.Type)+": "+ev.Message)
			c.mu.Unlock()
			chromedp.Call(c.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			text := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				text += " " + ev.ExceptionDetails.Exception.Description
			}
			c.mu.Lock()
			c.exceptions = append(c.exceptions, text)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.dialogs) > 0 {
			t.Errorf("the page opened JavaScript dialogs: %q", c.dialogs)
		}
		if len(c.exceptions) > 0 {
			t.Errorf("the page threw: %q", c.exceptions)
		}
	})
	c.do(chromedp.Navigate(srv.URL + "/"))
	return c
}

func (c *tab) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, stepTimeout)
}

// do runs actions, failing the test on an error.
func (c *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := c.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		c.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](c *tab, expr string) T {
	c.t.Helper()
	ctx, cancel := c.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until expr is true in the page and the console is not rendering (main is not
// aria-busy). It evaluates through DevTools: chromedp's Poll compiles its predicate with new
// Function, which the console's CSP (no unsafe-eval) refuses.
func (c *tab) waitFor(expr string) {
	c.t.Helper()
	ctx, cancel := c.step()
	defer cancel()
	full := fmt.Sprintf(`!!(%s) && !document.getElementById('main').hasAttribute('aria-busy')`, expr)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](full))
		if err == nil && ok {
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("waiting for %s: %v (last error %v)\npage text:\n%s", expr, ctx.Err(), err, c.pageText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitText waits for an element matching css whose text contains want.
func (c *tab) waitText(css, want string) {
	c.t.Helper()
	sel, _ := json.Marshal(css)
	text, _ := json.Marshal(want)
	c.waitFor(fmt.Sprintf(`[...document.querySelectorAll(%s)].some((e) => e.textContent.includes(%s))`, sel, text))
}

func (c *tab) pageText() string {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	return text
}

// text is the textContent of the first element matching css.
func (c *tab) text(css string) string {
	c.t.Helper()
	sel, _ := json.Marshal(css)
	return eval[string](c, fmt.Sprintf(`(document.querySelector(%s) || {textContent: '<missing>'}).textContent`, sel))
}

func (c *tab) click(css string) {
	c.t.Helper()
	c.do(chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

// fill replaces the value of the input matching css by typing.
func (c *tab) fill(css, value string) {
	c.t.Helper()
	sel, _ := json.Marshal(css)
	c.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ''`, sel)),
		chromedp.SendKeys(chromedp.CSS(css), value))
}

// clickButton clicks the visible button or link whose text is label.
func (c *tab) clickButton(label string) {
	c.t.Helper()
	c.do(chromedp.Click(chromedp.Search(`//*[self::button or self::a][normalize-space()='`+label+`']`), chromedp.NodeVisible))
}

// go navigates to a hash route of the console and waits for its heading.
func (c *tab) goTo(hash string) {
	c.t.Helper()
	c.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, hash)))
	c.waitFor(`document.querySelector('main h1')`)
}

// tabTo presses Tab until the element matching css has the focus, failing after 50 presses.
func (c *tab) tabTo(css string) {
	c.t.Helper()
	sel, _ := json.Marshal(css)
	for range 50 {
		c.do(chromedp.KeyEvent("\t"))
		if eval[bool](c, fmt.Sprintf(`document.activeElement === document.querySelector(%s)`, sel)) {
			return
		}
	}
	c.t.Fatalf("50 presses of Tab did not reach %s", css)
}

func (c *tab) screenshot(name string) {
	c.t.Helper()
	browsertest.Screenshot(c.t, c.ctx, name)
}

// signIn signs in with token from the keyboard alone: the page focuses the field, Enter submits.
func (c *tab) signIn(token string) {
	c.t.Helper()
	c.waitFor(`document.activeElement && document.activeElement.id === 'token'`)
	c.do(chromedp.KeyEvent(token), chromedp.KeyEvent("\r"))
	c.waitFor(`document.getElementById('viewer-name')`)
}

// noCSPViolations fails the test if the page caused any.
func (c *tab) noCSPViolations() {
	c.t.Helper()
	if v := eval[[]string](c, `window.__csp`); len(v) > 0 {
		c.t.Errorf("Content-Security-Policy violations: %q", v)
	}
}

// postEvents sends an NDJSON body to the ingestion endpoint with token.
func postEvents(t *testing.T, srv *testserver.Server, token string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/audit/events", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST events: status %d", resp.StatusCode)
	}
}

// destination is a MinIO bucket and a user that may only put objects into it: what a customer grants.
type destination struct {
	s3                        *s3test.Server
	bucket, accessKey, secret string
}

// newDestination needs the browser too: the tests that use it drive the console.
func newDestination(t *testing.T) destination {
	t.Helper()
	browsertest.Require(t)
	d := destination{s3: s3test.Require(t)}
	d.bucket = d.s3.NewBucket(t)
	d.accessKey, d.secret = d.s3.NewUser(t, s3test.PutOnlyPolicy(d.bucket))
	return d
}

// newToken creates an API token through the API as the admin.
func newToken(srv *testserver.Server, name string, perms ...string) string {
	var out struct{ CreateAPIToken string }
	srv.MustGraphQL(srv.AdminToken, `mutation($n: String!, $p: [Permission!]!) { createApiToken(name: $n, permissions: $p) }`,
		map[string]any{"n": name, "p": perms}, &out)
	return out.CreateAPIToken
}
