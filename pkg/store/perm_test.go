//go:build unix

package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// need skips t when a part is missing, or fails it when NCMCP_TEST_REQUIRE
// names that part.
func need(t *testing.T, part, why string) {
	t.Helper()
	if slices.Contains(strings.Split(os.Getenv("NCMCP_TEST_REQUIRE"), ","), part) {
		t.Fatalf("%s is required (NCMCP_TEST_REQUIRE) but not available: %s", part, why)
	}
	t.Skipf("skipping: %s not available: %s (set NCMCP_TEST_REQUIRE=%s to make this a failure)", part, why, part)
}

func unsafe(t *testing.T, err error, want string) {
	t.Helper()
	var ue *UnsafePathError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want an UnsafePathError saying %q", err, want)
	}
}

// TestConfigDirectoryOfOthersRefused: a config directory that other users
// can write to (as a directory created by another user with mode 1777 or
// 0777 is) is refused for reading and writing, with the fix named.
func TestConfigDirectoryOfOthersRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o777 | os.ModeSticky, 0o770} {
		dir := filepath.Join(t.TempDir(), "ncmcp")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(dir)
		unsafe(t, err, "chmod go-w")
		unsafe(t, SaveConfig(dir, &Config{}), "other users may write")
		st := New(dir, ModeFile, nil, time.Second)
		_, err = st.Lock(context.Background())
		unsafe(t, err, "other users may write")
		_, _, err = st.Put("k", "v")
		unsafe(t, err, "other users may write")
	}
}

// TestSymlinksNeverFollowed: the config, the secrets file and the lock file
// are never read or locked through a symbolic link (another user's link to
// a file of theirs).
func TestSymlinksNeverFollowed(t *testing.T) {
	for _, name := range []string{"config.json", "secrets.json", "ncmcp.lock"} {
		dir := t.TempDir()
		target := filepath.Join(t.TempDir(), "elsewhere")
		if err := os.WriteFile(target, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		st := New(dir, ModeFile, nil, time.Second)
		var err error
		switch name {
		case "config.json":
			_, err = LoadConfig(dir)
		case "secrets.json":
			_, err = st.Backend(BackendFile)
			if err == nil {
				b, _ := st.Backend(BackendFile)
				_, err = b.Get("k")
			}
		case "ncmcp.lock":
			_, err = st.Lock(context.Background())
		}
		unsafe(t, err, "symbolic link")
	}
}

// TestConfigOwnedByAnotherUser needs root to give a directory to another
// user (CI runs as root).
func TestConfigOwnedByAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		need(t, "root", "giving a directory to another user needs root")
	}
	dir := filepath.Join(t.TempDir(), "ncmcp")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(dir)
	unsafe(t, err, "belongs to another user (uid 65534)")

	own := t.TempDir()
	if err := SaveConfig(own, &Config{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ConfigPath(own), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err = LoadConfig(own)
	unsafe(t, err, "belongs to another user")
}

func TestOwnDirectoryAccepted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ncmcp")
	st := New(dir, ModeFile, nil, time.Second)
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if err := SaveConfig(dir, &Config{DefaultServer: "https://x"}); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfig(dir); err != nil || c.DefaultServer != "https://x" {
		t.Fatalf("LoadConfig = %+v, %v", c, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(dir); err != nil {
		t.Fatalf("a directory others may read but not write is refused: %v", err)
	}
}
