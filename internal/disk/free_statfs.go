//go:build linux || darwin || freebsd

package disk

import "syscall"

// Free is how many bytes an unprivileged process may still write to the filesystem holding
// dir (quotas aside).
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
