package rotlog

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lineLen is the length of every test line, newline included.
const lineLen = 32

// line returns a line of exactly lineLen bytes naming its writer and number.
func line(writer string, seq int) []byte {
	s := fmt.Sprintf("%s %08d ", writer, seq)
	return []byte(s + strings.Repeat(".", lineLen-1-len(s)) + "\n")
}

type entry struct {
	writer string
	seq    int
}

// readLog returns the lines of the file at path, parsed, and whether it
// exists. Every line must be one the tests write, whole.
func readLog(t *testing.T, path string) ([]entry, bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []entry
	for i, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(l) == 0 {
			continue // after the last newline
		}
		fields := strings.Fields(string(l))
		if len(l) != lineLen || len(fields) != 3 {
			t.Fatalf("%s line %d is not a whole line: %q", path, i+1, l)
		}
		seq, err := strconv.Atoi(fields[1])
		if err != nil {
			t.Fatalf("%s line %d: %v", path, i+1, err)
		}
		if !bytes.Equal(l, line(fields[0], seq)) {
			t.Fatalf("%s line %d is garbled: %q", path, i+1, l)
		}
		out = append(out, entry{fields[0], seq})
	}
	return out, true
}

func seqs(es []entry) []int {
	var out []int
	for _, e := range es {
		out = append(out, e.seq)
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkOnlyTwoFiles fails unless the directory holds nothing but path and
// path.1.
func checkOnlyTwoFiles(t *testing.T, path string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if n := e.Name(); n != filepath.Base(path) && n != filepath.Base(path)+".1" {
			t.Fatalf("unexpected file %s next to the log", n)
		}
	}
}

// checkSequential checks the log after the lines 1..n were written one after
// the other, through any number of Files, with limit maxSize. A file is
// rotated by the first write that finds it at maxSize or more, that is after
// perFile lines, so the state is known exactly: path holds the lines written
// since the last rotation, all of them, and path.1 the perFile lines before.
// In particular path.1 is always a full file: a File that renamed a file it
// does not hold (a fresh one another File had just created) would leave a
// short path.1 and lose the full one.
func checkSequential(t *testing.T, path string, maxSize int64, n int) {
	t.Helper()
	perFile := int((maxSize + lineLen - 1) / lineLen)
	rotations := (n - 1) / perFile

	if s := size(t, path); s > maxSize+lineLen {
		t.Fatalf("after %d lines: %s is %d bytes, limit %d plus a %d-byte line", n, path, s, maxSize, lineLen)
	}
	if s := size(t, path+".1"); s > maxSize+lineLen {
		t.Fatalf("after %d lines: %s.1 is %d bytes, limit %d plus a %d-byte line", n, path, s, maxSize, lineLen)
	}
	cur, _ := readLog(t, path)
	if got, want := seqs(cur), span(rotations*perFile+1, n); !slices.Equal(got, want) {
		t.Fatalf("after %d lines: %s holds lines %v, want %v", n, path, got, want)
	}
	old, ok := readLog(t, path+".1")
	if rotations == 0 {
		if ok {
			t.Fatalf("after %d lines: %s.1 exists before any rotation", n, path)
		}
	} else if got, want := seqs(old), span((rotations-1)*perFile+1, rotations*perFile); !slices.Equal(got, want) {
		t.Fatalf("after %d lines: %s.1 holds lines %v, want %v", n, path, got, want)
	}
	checkOnlyTwoFiles(t, path)
}

func mustWrite(t *testing.T, f *File, p []byte) {
	t.Helper()
	n, err := f.Write(p)
	if err != nil || n != len(p) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
	}
}

func TestRotatesBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	const maxSize = 10*lineLen + 7 // not a multiple: the last line crosses it
	f, err := Open(path, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	const n = 200 // about 20 times maxSize
	for i := 1; i <= n; i++ {
		mustWrite(t, f, line("a", i))
		checkSequential(t, path, maxSize, i)
	}
	cur, _ := readLog(t, path)
	if last := cur[len(cur)-1]; last.seq != n {
		t.Fatalf("newest line in %s is %d, want %d", path, last.seq, n)
	}
}

// TestTwoFilesTakeTurns simulates two processes appending to one path:
// each File sees the other's rotations only through the file system.
func TestTwoFilesTakeTurns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	// 11 lines a file: the write that rotates is number 12, 23, 34...,
	// alternately b's and a's, so each File both renames and has to follow
	// the other's rename.
	const maxSize = 10*lineLen + 7
	a, err := Open(path, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	const n = 400
	renames := 0
	var prevOld os.FileInfo
	for i := 1; i <= n; i++ {
		w, name := a, "a"
		if i%2 == 0 {
			w, name = b, "b"
		}
		mustWrite(t, w, line(name, i))
		checkSequential(t, path, maxSize, i)
		if fi, err := os.Stat(path + ".1"); err == nil {
			if prevOld == nil || !os.SameFile(prevOld, fi) {
				renames++
			}
			prevOld = fi
		}
	}
	// Exactly one rename per full file, whichever File did it.
	if want := (n - 1) / 11; renames != want {
		t.Fatalf("%d renames onto %s.1, want %d", renames, path, want)
	}
}

// TestConcurrentFiles runs two Files, as two processes would, each written by
// several goroutines at once. Its checks hold for any interleaving.
func TestConcurrentFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	const maxSize = 20*lineLen + 5
	const perWriter = 300
	var wg sync.WaitGroup
	var writers []string
	for _, fname := range []string{"a", "b"} {
		f, err := Open(path, maxSize)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for g := range 4 {
			name := fmt.Sprintf("%s%d", fname, g)
			writers = append(writers, name)
			wg.Go(func() {
				for i := 1; i <= perWriter; i++ {
					if _, err := f.Write(line(name, i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()

	checkOnlyTwoFiles(t, path)
	// Each File checks the size before each write and writes one line at a
	// time, so at most one line per File lands after a check that found the
	// file just under the limit.
	const bound = maxSize + 2*lineLen
	if s := size(t, path); s >= bound {
		t.Errorf("%s is %d bytes, want < %d", path, s, bound)
	}
	if s := size(t, path+".1"); s < maxSize || s >= bound {
		t.Errorf("%s.1 is %d bytes, want in [%d, %d): only a full file is renamed", path, s, maxSize, bound)
	}
	old, _ := readLog(t, path+".1")
	cur, _ := readLog(t, path)
	// Every writer's lines, path.1 then path, are in the order written.
	last := map[string]int{}
	for _, e := range append(old, cur...) {
		if !slices.Contains(writers, e.writer) {
			t.Fatalf("unknown writer %q", e.writer)
		}
		if e.seq <= last[e.writer] {
			t.Fatalf("writer %s: line %d after line %d", e.writer, e.seq, last[e.writer])
		}
		last[e.writer] = e.seq
	}
}

// TestRenameFailureTruncates makes the rename fail for real: path.1 is a
// non-empty directory, which no file can be renamed onto.
func TestRenameFailureTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	keep := filepath.Join(path+".1", "keep")
	if err := os.Mkdir(path+".1", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keep, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	const maxSize = 4 * lineLen // a multiple: the file is full after 4 lines
	f, err := Open(path, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	for i := 1; i <= 30; i++ {
		mustWrite(t, f, line("a", i))
		// Truncated by the write that found it full: it holds the lines
		// since, and never more than the limit.
		cur, _ := readLog(t, path)
		if got, want := seqs(cur), span((i-1)/4*4+1, i); !slices.Equal(got, want) {
			t.Fatalf("after %d lines: %s holds lines %v, want %v", i, path, got, want)
		}
		if s := size(t, path); s > maxSize {
			t.Fatalf("after %d lines: %s is %d bytes, limit %d", i, path, s, maxSize)
		}
	}
	if data, err := os.ReadFile(keep); err != nil || string(data) != "keep" {
		t.Fatalf("directory in the way was changed: %q, %v", data, err)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "x.log")
	f, err := Open(path, 100)
	if err == nil {
		f.Close()
		t.Fatal("Open succeeded in a missing directory")
	}
	if !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open error %q does not name %s or is not ErrNotExist", err, path)
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	f, err := Open(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("mode %v, want no group or other access", fi.Mode().Perm())
	}
	if _, err := f.Write([]byte("x\n")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
	if _, err := Open(path, 0); err == nil {
		t.Fatal("Open with a zero limit succeeded")
	}
}
