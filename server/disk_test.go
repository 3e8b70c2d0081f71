package server

import (
	"errors"
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
)

// diskWatch: a write refused for lack of space makes the disk full until a write succeeds, the
// readiness probe's included; other failures say nothing; too little free space is reported
// whatever the writes did. (TestFullDiskRefusesThenRecovers fills a real disk.)
func TestDiskWatch(t *testing.T) {
	t.Parallel()
	d := &diskWatch{dir: t.TempDir(), minFree: 1}
	full := &os.PathError{Op: "write", Path: "auditexport.db", Err: syscall.ENOSPC}
	quota := &os.PathError{Op: "write", Path: "auditexport.db", Err: syscall.EDQUOT}
	if d.problem() != "" || d.wrote(errors.New("some other failure")) || d.full {
		t.Fatal("ready disk reported full")
	}
	if !d.wrote(full) || !d.full || !d.wrote(quota) {
		t.Fatal("ENOSPC or EDQUOT not taken for a full disk")
	}
	d.wrote(errors.New("some other failure"))
	if !d.full {
		t.Fatal("another failure cleared the full disk")
	}
	// The probe's write succeeds here: space was freed.
	if p := d.problem(); p != "" || d.full {
		t.Fatalf("after the probe wrote: %q, full %v", p, d.full)
	}
	if left, _ := os.ReadDir(d.dir); len(left) != 0 {
		t.Fatalf("the probe left %v behind", left)
	}
	d.wrote(full)
	if d.wrote(nil); d.full {
		t.Fatal("a successful write did not clear the full disk")
	}
	d.minFree = math.MaxUint64
	if p := d.problem(); !strings.Contains(p, "free") {
		t.Fatalf("too little free space: %q", p)
	}
}
