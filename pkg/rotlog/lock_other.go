//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package rotlog

import "os"

// lockFile does nothing here. On Windows an open file usually cannot be
// renamed at all, so rotation falls back to truncation and no process can
// rename a file another one holds.
func lockFile(*os.File) (unlock func()) { return func() {} }
