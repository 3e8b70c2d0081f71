package console

import (
	"regexp"
	"strings"
	"testing"
)

// TestAssetsUseNoHTMLSinks: no module parses strings as HTML or code, or reaches another host;
// the CSP (Trusted Types, script-src 'self') would refuse them at run time, this says so before.
func TestAssetsUseNoHTMLSinks(t *testing.T) {
	sinks := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*['"` + "`" + `]|createContextualFragment|DOMParser|https?://(?:[^'"\s]*\.)?[a-z]+\.(?:com|net|org|io)`)
	checked := 0
	for path, a := range assets {
		if !strings.HasSuffix(path, ".js") && !strings.HasSuffix(path, ".css") && path != "/" {
			continue
		}
		checked++
		for i, line := range strings.Split(string(a.body), "\n") {
			if m := sinks.FindString(line); m != "" && !strings.Contains(line, "example.com") {
				t.Errorf("%s:%d uses %s: %s", path, i+1, m, strings.TrimSpace(line))
			}
		}
	}
	if checked < 8 {
		t.Fatalf("checked %d files", checked)
	}
}

// TestAssetsAreReachable: every module an import names is served, so a missing or misspelled
// file fails here rather than in a browser.
func TestAssetsAreReachable(t *testing.T) {
	imports := regexp.MustCompile(`from '\./([a-z]+\.js)'`)
	for path, a := range assets {
		for _, m := range imports.FindAllStringSubmatch(string(a.body), -1) {
			if _, ok := assets[AssetsPrefix+m[1]]; !ok {
				t.Errorf("%s imports %s, which is not served", path, m[1])
			}
		}
	}
	for _, p := range Paths() {
		if _, ok := assets[p]; !ok {
			t.Errorf("Paths lists %s, which is not served", p)
		}
	}
}
