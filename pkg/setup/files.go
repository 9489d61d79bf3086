package setup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ncmcp/ncmcp/pkg/store"
)

// Options says how Apply may treat the configuration file.
type Options struct {
	// Own is set for the client's own per-user configuration file: a
	// symbolic link to a regular file of the user (a dotfiles manager's)
	// is followed, its target edited in place and the link kept. Without
	// it (a file the user named, perhaps in a repository just cloned) a
	// link may lead only within the directory it is in.
	Own bool
	// Lock, if set, is held around reading, merging and writing the file,
	// so that concurrent runs change it one after the other.
	Lock func(path string) (unlock func(), err error)
	// Run, if set, runs a client's own command to add a new entry to its
	// own file (Claude Code's 'claude mcp add-json'); when that fails or
	// does not leave the entry, ncmcp edits the file itself.
	Run Runner
}

// FileError reports a configuration file ncmcp refuses to touch; nothing
// was written.
type FileError struct {
	Path   string
	Reason string
}

func (e *FileError) Error() string { return e.Path + ": " + e.Reason }

// maxBackups bounds the numbered backups of one file.
const maxBackups = 100

// resolve returns the file to read and write for path: path itself, or
// the target of a link to follow (see Options.Own), and its information
// (nil when it does not exist yet). Files of another user, and anything
// but regular files, are refused.
func resolve(path string, own bool) (string, fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	real := path
	if fi.Mode()&fs.ModeSymlink != 0 {
		if real, err = filepath.EvalSymlinks(path); err != nil {
			return "", nil, &FileError{Path: path, Reason: "a symbolic link that leads nowhere (" + err.Error() + ")"}
		}
		if !own {
			dir, err := filepath.EvalSymlinks(filepath.Dir(path))
			if err != nil {
				return "", nil, err
			}
			if rel, err := filepath.Rel(dir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return "", nil, &FileError{Path: path, Reason: fmt.Sprintf("a symbolic link to %s, out of the directory it is in: ncmcp follows links of a --file only within that directory", real)}
			}
		}
		if fi, err = os.Lstat(real); err != nil {
			return "", nil, err
		}
	}
	if !fi.Mode().IsRegular() {
		return "", nil, &FileError{Path: path, Reason: "not a regular file"}
	}
	if uid, another := store.OwnedByAnother(fi); another {
		return "", nil, &FileError{Path: path, Reason: fmt.Sprintf("the file belongs to another user (uid %d)", uid)}
	}
	return real, fi, nil
}

// backup keeps a copy of a file's content beside it, with its mode: the
// first as FILE.ncmcp-backup, later ones numbered (.1, .2, ...). It never
// overwrites anything and never follows a link: the copy is created
// exclusively, and a name that exists, as a file or a link, is skipped.
func backup(path string, data []byte, mode fs.FileMode) (string, error) {
	for i := range maxBackups {
		name := path + BackupSuffix
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		// The mode given to OpenFile passes through the umask.
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return "", err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return "", err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return "", err
		}
		return name, f.Close()
	}
	return "", fmt.Errorf("%d backups of %s exist already: remove those you do not need", maxBackups, path)
}

// writeAtomic replaces path with data through a temporary file beside it,
// so that readers see the old or the new file, never a mix.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
