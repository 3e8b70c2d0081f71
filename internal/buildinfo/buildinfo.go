// Package buildinfo describes the running binary from what the Go toolchain embeds in it: the
// module version, the VCS revision and its time, and the Go version. `auditexport version`, the
// server's startup log line and the auditexport_build_info metric all show it.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// Info is what the binary says about its build. Fields the build did not record are "".
type Info struct {
	// Version is the module version: a tag such as v1.2.0 (go install …@v1.2.0), a pseudo-version
	// derived from the repository (go build in a clone, +dirty with uncommitted changes), or
	// (devel).
	Version string `json:"version"`
	// Revision and Time are the VCS commit the binary was built from and its time (RFC 3339).
	Revision string `json:"revision"`
	Time     string `json:"time"`
	// Modified is true when the working tree had uncommitted changes.
	Modified  bool   `json:"modified"`
	GoVersion string `json:"goVersion"`
}

// Read returns the running binary's build information, read once.
var Read = sync.OnceValue(read)

func read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown"}
	}
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is one line: "v1.2.0 (revision 824bc82…, 2026-11-27T15:28:00Z) go1.26.8".
func (i Info) String() string {
	s := i.Version
	if i.Revision != "" {
		s += fmt.Sprintf(" (revision %s, %s", i.Revision, i.Time)
		if i.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s + " " + i.GoVersion
}
