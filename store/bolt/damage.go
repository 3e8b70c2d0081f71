package bolt

import (
	"fmt"
	"runtime/debug"

	"github.com/auditexport/auditexport/store"
)

// bbolt trusts its file: on a truncated file it reads past the end of its memory map (a fault),
// on a damaged page it panics with an assertion. The engine turns either, wherever a transaction
// meets it, into a DamagedError naming the file and what to do, reports it once (OnDamage), and
// stays unready: a process that keeps writing to a damaged file only makes the damage worse.

// DamagedError is a data file the engine cannot trust: empty, truncated or damaged.
type DamagedError struct {
	Path    string
	Problem string
	// Empty is a 0-byte file, which bbolt would silently take for a new database.
	Empty bool
}

func (e *DamagedError) Error() string {
	if e.Empty {
		return fmt.Sprintf("data file %s is empty (0 bytes): starting on it would begin a blank database "+
			"(no configurations, tokens or buffered events, a new digest signing key). Restore %s from a backup "+
			"made with this master key; only if this data directory never held data, delete the empty file", e.Path, e.Path)
	}
	return fmt.Sprintf("data file %s is damaged (%s): restore the data directory from a backup "+
		"(auditexport.db with the master key it was sealed with), or move the file away to start empty and lose what it held", e.Path, e.Problem)
}

// Unwrap makes a DamagedError an ErrUnavailable to the store's callers: nothing can be served.
func (e *DamagedError) Unwrap() error { return store.ErrUnavailable }

// guard, deferred with the transaction's error, turns a fault or a bbolt panic into a
// DamagedError and reports it.
func (e *Engine) guard(err *error) {
	v := recover()
	if v == nil {
		return
	}
	damaged := &DamagedError{Path: e.db.Path(), Problem: fmt.Sprint(v)}
	*err = damaged
	if e.damaged.CompareAndSwap(nil, damaged) && e.opts.OnDamage != nil {
		e.opts.OnDamage(damaged)
	}
}

// faultsPanic makes memory faults on this goroutine panics (which guard recovers) until the
// returned function restores the previous setting.
func faultsPanic() func() {
	previous := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(previous) }
}

// damage is the damage found so far, if any.
func (e *Engine) damage() error {
	if d := e.damaged.Load(); d != nil {
		return d
	}
	return nil
}
