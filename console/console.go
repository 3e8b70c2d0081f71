// Package console is the web console: a static page and its ES modules, embedded in the binary
// (no JavaScript toolchain builds them), that work only through the GraphQL API with the bearer
// token the user signs in with, kept in the tab's sessionStorage.
//
// Every response carries a Content-Security-Policy that admits scripts, styles and requests from
// this origin only, no inline script or style, no framing, and Trusted Types with no policy, so
// the browser itself refuses to parse strings as HTML: the modules build the page with
// textContent and createElement, never innerHTML.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// AssetsPrefix is where the console's files are served; the page itself is served at "/".
const AssetsPrefix = "/console/"

// ContentSecurityPolicy is the policy of every console response.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets maps each URL path to its file: "/" to index.html, the rest under AssetsPrefix.
var assets = func() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := asset{body: body, contentType: contentTypes[path.Ext(name)], etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if a.contentType == "" {
			panic("console: no content type for " + name)
		}
		rel := strings.TrimPrefix(name, "static/")
		if rel == "index.html" {
			out["/"] = a
		} else {
			out[AssetsPrefix+rel] = a
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return out
}()

// Paths lists the URL paths the console serves, for the router: "/" and each file.
func Paths() []string {
	out := make([]string, 0, len(assets))
	for p := range assets {
		out = append(out, p)
	}
	return out
}

// Handler serves the console's files with its security headers. Paths it does not know answer
// 404; the router sends it only Paths.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Content-Type", a.contentType)
		// Revalidate every time: an upgraded binary serves new files at the same paths.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
