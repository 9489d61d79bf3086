package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// UnsafePathError refuses a config directory or file that another user
// could have changed: one owned by someone else, writable by others, or (for
// files) a symbolic link. Whoever can change the config can redirect the
// refresh token to a server of theirs.
type UnsafePathError struct {
	Path   string
	Reason string
	Fix    string
}

func (e *UnsafePathError) Error() string {
	return fmt.Sprintf("refusing %s: %s; %s", e.Path, e.Reason, e.Fix)
}

// checkDir checks that dir, if it exists, is a directory of the current
// user that no one else can write to. A missing directory is fine: ncmcp
// creates it with mode 0700.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config directory: %w", err)
	}
	if !fi.IsDir() {
		return &UnsafePathError{Path: dir, Reason: "it is not a directory", Fix: "set NCMCP_CONFIG_DIR to a directory of your own"}
	}
	return checkOwnerAndMode(dir, fi, "directory")
}

// checkFile checks a file in the config directory before it is read: a
// regular file (not a symbolic link) of the current user that no one else
// can write to. A missing file is fine.
func checkFile(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &UnsafePathError{Path: path, Reason: "it is a symbolic link, which ncmcp never follows for its config, secrets or lock", Fix: "remove the link; ncmcp writes a file of its own there"}
	}
	if !fi.Mode().IsRegular() {
		return nil, &UnsafePathError{Path: path, Reason: "it is not a regular file", Fix: "remove it"}
	}
	return fi, checkOwnerAndMode(path, fi, "file")
}

// checkOwnerAndMode refuses what another user owns or may write.
func checkOwnerAndMode(path string, fi fs.FileInfo, what string) error {
	if uid, another := OwnedByAnother(fi); another {
		return &UnsafePathError{Path: path, Reason: fmt.Sprintf("the %s belongs to another user (uid %d), who could change where ncmcp sends your tokens", what, uid),
			Fix: "use a directory of your own (NCMCP_CONFIG_DIR), or have it chown'ed to you"}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 && ownerChecksApply() {
		return &UnsafePathError{Path: path, Reason: fmt.Sprintf("other users may write to the %s (mode %04o), and so change where ncmcp sends your tokens", what, fi.Mode()&(fs.ModePerm|fs.ModeSticky)),
			Fix: fmt.Sprintf("run chmod go-w %s (and check what is in it), or use another directory (NCMCP_CONFIG_DIR)", path)}
	}
	return nil
}

// OwnedByAnother reports whether a file belongs to another user than the
// current one, and which (Unix; elsewhere owners are not compared).
func OwnedByAnother(fi fs.FileInfo) (uid int, another bool) {
	uid, ok := ownerOf(fi)
	return uid, ok && uid != os.Getuid()
}
