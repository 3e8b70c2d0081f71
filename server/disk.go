package server

import (
	"fmt"
	"os"
	"sync"

	"github.com/auditexport/auditexport/internal/disk"
)

// diskWatch tells whether the data directory's disk can take writes, for readiness. Two signs:
// a write that failed for lack of space (ENOSPC, or EDQUOT: a quota statfs does not show), until
// a write succeeds again; and free space below a minimum, so a disk about to fill takes the
// server out of rotation before ingestion fails.
type diskWatch struct {
	dir     string
	minFree uint64

	mu   sync.Mutex
	full bool // the last write to the data directory failed for lack of space
}

// wrote records the outcome of a write to the data directory and reports whether it failed for
// lack of space. Other failures say nothing about space and change nothing.
func (d *diskWatch) wrote(err error) bool {
	full := disk.Full(err)
	if err == nil || full {
		d.mu.Lock()
		d.full = full
		d.mu.Unlock()
	}
	return full
}

// probeSize is written and removed to learn whether space was freed after a full disk.
const probeSize = 64 << 10

// problem says why the disk cannot take writes now, or "" when it can. While the last write
// failed for lack of space, it writes a small file to find out whether space was freed: were it
// to wait for the next ingest instead, a load balancer that stops sending events to a server not
// ready would keep it not ready for good.
func (d *diskWatch) problem() string {
	if free, err := disk.Free(d.dir); err == nil && free < d.minFree {
		return fmt.Sprintf("less than %d bytes free on the data directory's disk", d.minFree)
	}
	d.mu.Lock()
	full := d.full
	d.mu.Unlock()
	if full && d.wrote(d.probe()) {
		return "the data directory's disk is full"
	}
	return ""
}

// probe writes probeSize bytes to a file in the data directory, syncs and removes it.
func (d *diskWatch) probe() error {
	f, err := os.CreateTemp(d.dir, ".space-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, probeSize))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
