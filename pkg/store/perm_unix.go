//go:build unix

package store

import (
	"io/fs"
	"syscall"
)

// ownerOf returns the uid that owns a file.
func ownerOf(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// ownerChecksApply reports whether Unix owners and modes mean something.
func ownerChecksApply() bool { return true }
