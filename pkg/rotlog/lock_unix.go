//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package rotlog

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on f, waiting for it, and returns the
// function that releases it. Processes lock the file they hold before they
// rename it, so only one of them renames it. If the lock cannot be taken
// (some network file systems), rotation goes ahead unlocked: the check that
// the path still names the held file then still narrows the race to the
// instant between that check and the rename.
func lockFile(f *os.File) (unlock func()) {
	rc, err := f.SyscallConn()
	if err != nil {
		return func() {}
	}
	var lockErr error
	err = rc.Control(func(fd uintptr) {
		for {
			lockErr = syscall.Flock(int(fd), syscall.LOCK_EX)
			if lockErr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil || lockErr != nil {
		return func() {}
	}
	return func() {
		_ = rc.Control(func(fd uintptr) { _ = syscall.Flock(int(fd), syscall.LOCK_UN) })
	}
}
