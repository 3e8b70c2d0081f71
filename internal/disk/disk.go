// Package disk tells a write refused for lack of space from other failures, and how much room
// is left on a directory's filesystem, for the server's readiness and error messages.
package disk

import (
	"errors"
	"syscall"
)

// Full reports whether err is a write refused for lack of space: the filesystem is full
// (ENOSPC) or the user's quota is spent (EDQUOT).
func Full(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
