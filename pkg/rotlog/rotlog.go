// Package rotlog provides a log file, shared by several processes, that
// rotates itself by size while they run.
//
// Every process opens the same path with [Open] and appends to it. Before
// each write a [File] looks at the file at the path: once that file has
// reached the size limit, it is renamed to path+".1" (replacing an older
// path+".1") and a new file is opened at path. So at most two files exist and
// disk use stays at about twice the limit, plus one line per concurrent
// writer. A process that finds that the path no longer names the file it
// holds (another process rotated it) just reopens the path: a File only ever
// renames the file it holds, and on Unix systems it holds an advisory lock
// (flock) on that file while it checks and renames it, so two processes
// cannot both rotate it.
//
// On Windows a file that is open, by this process or another, usually cannot
// be renamed. When the rename fails, on any system, the file is truncated to
// zero bytes instead: the size stays bounded, but its older lines are lost
// and no path+".1" is written.
package rotlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// File is a log file opened by [Open] that rotates itself by size. It
// implements [io.Writer]; its methods are safe for concurrent use by
// multiple goroutines, and other processes may append to the same path
// through their own File.
type File struct {
	path    string
	maxSize int64

	mu sync.Mutex
	f  *os.File // nil once closed
}

// maxRounds bounds the stat/reopen/rotate rounds of one Write. A round is
// repeated only when the path changed since the previous one (another process
// rotated the file, which takes maxSize bytes of writes), so the bound is
// never reached in practice; it keeps Write from spinning on a file system
// whose file identities are not stable, and Write reports it.
const maxRounds = 8

// Open opens the log file at path for appending, creating it with mode 0600
// if needed. maxSize is the size in bytes at which the file is rotated to
// path+".1"; it must be positive. The error names path if the file cannot be
// opened, for example because its directory does not exist.
func Open(path string, maxSize int64) (*File, error) {
	if maxSize <= 0 {
		return nil, fmt.Errorf("rotlog: open %s: size limit must be positive, not %d", path, maxSize)
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, maxSize: maxSize, f: f}, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		// err is an *fs.PathError, whose message names the path.
		return nil, fmt.Errorf("rotlog: %w", err)
	}
	return f, nil
}

// Write appends p to the log file, as one write, after rotating the file if
// it has reached the size limit or reopening the path if another process
// rotated it. Write p as a whole line: rotation happens between writes.
//
// If checking, rotating or reopening fails, p is still written to the file
// held so far and Write returns that failure with n = len(p). After
// [File.Close], Write returns an error wrapping [os.ErrClosed].
func (l *File) Write(p []byte) (n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, fmt.Errorf("rotlog: write %s: %w", l.path, os.ErrClosed)
	}
	rotErr := l.prepare()
	n, err = l.f.Write(p)
	if err != nil {
		return n, err
	}
	return n, rotErr
}

// prepare makes l.f the file at l.path, rotated if it had reached maxSize.
func (l *File) prepare() error {
	for range maxRounds {
		cur, err := os.Stat(l.path)
		if errors.Is(err, fs.ErrNotExist) {
			// Another process renamed it and has not written a new one yet.
			if err := l.reopen(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("rotlog: %w", err)
		}
		held, err := l.f.Stat()
		if err != nil {
			return fmt.Errorf("rotlog: %w", err)
		}
		if !os.SameFile(cur, held) {
			// Another process rotated it: ours is path.1 now, or gone.
			if err := l.reopen(); err != nil {
				return err
			}
			continue
		}
		if cur.Size() < l.maxSize {
			return nil
		}
		if err := l.rotate(); err != nil {
			return err
		}
	}
	return fmt.Errorf("rotlog: %s kept changing", l.path)
}

// rotate renames the held file to path.1 and reopens path, or truncates the
// held file if the rename fails.
func (l *File) rotate() error {
	unlock := lockFile(l.f)
	reopen, err := l.renameOrTruncate()
	unlock()
	if err != nil {
		return err
	}
	if reopen {
		return l.reopen()
	}
	return nil
}

// renameOrTruncate runs with the held file locked against other processes'
// rotations (on Unix). It checks again that the path still names the held
// file, now that no other process can rename it, and reports whether the
// path has to be reopened.
func (l *File) renameOrTruncate() (reopen bool, err error) {
	cur, err := os.Stat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("rotlog: %w", err)
	}
	held, err := l.f.Stat()
	if err != nil {
		return false, fmt.Errorf("rotlog: %w", err)
	}
	if !os.SameFile(cur, held) {
		return true, nil // rotated by another process meanwhile
	}
	if cur.Size() < l.maxSize {
		return false, nil // truncated by another process meanwhile
	}
	renameErr := os.Rename(l.path, l.path+".1")
	if renameErr == nil {
		return true, nil
	}
	// The rename failed (on Windows: the file is open). Truncate instead so
	// that the size stays bounded. Our descriptor is opened with O_APPEND,
	// so this and every other process's next write go to the new end. On
	// Windows an append-only handle may not truncate; truncate by path then.
	truncErr := l.f.Truncate(0)
	if truncErr != nil {
		truncErr = os.Truncate(l.path, 0)
	}
	if truncErr != nil {
		return false, fmt.Errorf("rotlog: rotate %s: %w", l.path, errors.Join(renameErr, truncErr))
	}
	return false, nil
}

// reopen replaces the held file with the one now at the path, creating it
// if needed. On failure the held file is kept.
func (l *File) reopen() error {
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	// Nothing is buffered, so an error closing the old file loses nothing.
	_ = l.f.Close()
	l.f = f
	return nil
}

// Close closes the log file. Later calls to Write and Close return an error
// wrapping [os.ErrClosed].
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("rotlog: close %s: %w", l.path, os.ErrClosed)
	}
	err := l.f.Close()
	l.f = nil
	return err
}
