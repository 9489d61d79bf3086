package setup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/store"
)

// need skips t when a part is missing, or fails it when
// NCMCP_TEST_REQUIRE names that part.
func need(t *testing.T, part, why string) {
	t.Helper()
	if slices.Contains(strings.Split(os.Getenv("NCMCP_TEST_REQUIRE"), ","), part) {
		t.Fatalf("%s is required (NCMCP_TEST_REQUIRE) but not available: %s", part, why)
	}
	t.Skipf("skipping: %s not available: %s (set NCMCP_TEST_REQUIRE=%s to make this a failure)", part, why, part)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cursor(t *testing.T) *Client {
	t.Helper()
	c, ok := Lookup("cursor")
	if !ok {
		t.Fatal("no cursor")
	}
	return c
}

// TestBackupNeverFollowsALink: a repository ships its config and, as the
// backup's name, a link to a file of the user's: the link is left alone,
// the file it points to unchanged, and the backup goes to a new name.
func TestBackupNeverFollowsALink(t *testing.T) {
	home := t.TempDir()
	keys := filepath.Join(home, ".ssh", "authorized_keys")
	writeFile(t, keys, "ssh-ed25519 AAAA user@host\n", 0o600)
	repo := filepath.Join(home, "src", "repo")
	cfg := filepath.Join(repo, ".vscode", "mcp.json")
	writeFile(t, cfg, `{"servers": {}, "evil": "ssh-ed25519 ATTACKER"}`, 0o644)
	if err := os.Symlink("../../../.ssh/authorized_keys", cfg+BackupSuffix); err != nil {
		t.Fatal(err)
	}
	c, _ := Lookup("vscode")
	res, err := c.Apply(cfg, entry, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, keys); got != "ssh-ed25519 AAAA user@host\n" {
		t.Fatalf("authorized_keys changed: %q", got)
	}
	if fi, err := os.Lstat(cfg + BackupSuffix); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the planted link was replaced: %v %v", fi, err)
	}
	if res.Backup != cfg+BackupSuffix+".1" || !strings.Contains(read(t, res.Backup), "ATTACKER") {
		t.Errorf("backup %q", res.Backup)
	}
}

// TestFileLinkOutOfItsDirectory: --file names a link into another
// client's file: refused, both files unchanged. A link within the
// directory is followed, its target edited and the link kept.
func TestFileLinkOutOfItsDirectory(t *testing.T) {
	home := t.TempDir()
	other := filepath.Join(home, ".cursor", "mcp.json")
	secret := `{"mcpServers": {"paid": {"command": "x", "env": {"API_KEY": "sk-secret"}}}}`
	writeFile(t, other, secret, 0o600)
	repo := filepath.Join(home, "repo")
	cfg := filepath.Join(repo, ".vscode", "mcp.json")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../.cursor/mcp.json", cfg); err != nil {
		t.Fatal(err)
	}
	c, _ := Lookup("vscode")
	_, err := c.Apply(cfg, entry, Options{})
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "out of the directory it is in") {
		t.Fatalf("Apply = %v", err)
	}
	if read(t, other) != secret {
		t.Error("the other client's file changed")
	}
	if fi, _ := os.Lstat(cfg); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link was replaced")
	}

	within := filepath.Join(repo, "conf", "mcp.json")
	writeFile(t, filepath.Join(repo, "conf", "real.json"), `{"servers": {}}`, 0o644)
	if err := os.Symlink("real.json", within); err != nil {
		t.Fatal(err)
	}
	res, err := c.Apply(within, entry, Options{})
	if err != nil || res.Target != filepath.Join(repo, "conf", "real.json") {
		t.Fatalf("a link within its directory: %+v %v", res, err)
	}
	if !strings.Contains(read(t, res.Target), "nextcloud") {
		t.Error("the target was not edited")
	}
}

// TestOwnFileLinkIsEditedInPlace: a dotfiles manager's link to the
// client's own file is kept, and its target edited atomically, with its
// backup beside it.
func TestOwnFileLinkIsEditedInPlace(t *testing.T) {
	home := t.TempDir()
	target := filepath.Join(home, "dotfiles", "cursor", "mcp.json")
	writeFile(t, target, `{"mcpServers": {"a": {"command": "a"}}}`, 0o600)
	link := filepath.Join(home, ".cursor", "mcp.json")
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	res, err := cursor(t).Apply(link, entry, Options{Own: true})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced by a file: %v %v", fi, err)
	}
	got := read(t, target)
	if !strings.Contains(got, `"nextcloud"`) || !strings.Contains(got, `"a"`) || res.Target != target || res.Backup != target+BackupSuffix {
		t.Errorf("target %q, result %+v", got, res)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
		t.Errorf("target mode %v", fi.Mode())
	}
}

// TestFileOfAnotherUser: a file another user owns is never read into, or
// written over.
func TestFileOfAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		need(t, "root", "giving a file to another user needs root")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mcp.json")
	writeFile(t, path, `{"mcpServers": {}}`, 0o644)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := cursor(t).Apply(path, entry, Options{Own: true})
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "another user (uid 65534)") {
		t.Fatalf("Apply = %v", err)
	}
	if read(t, path) != `{"mcpServers": {}}` {
		t.Error("the file changed")
	}
	if _, err := os.Lstat(path + BackupSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a backup was made: %v", err)
	}
}

// TestBackupsAreKept: the first backup stays as it was; later changes
// get numbered backups, each with the mode of the file it copies.
func TestBackupsAreKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	original := `{"mcpServers": {"mine": {"command": "x", "env": {"TOKEN": "t"}}}}`
	writeFile(t, path, original, 0o600)
	c := cursor(t)
	first, err := c.Apply(path, entry, Options{})
	if err != nil {
		t.Fatal(err)
	}
	second := entry
	second.Name = "nextcloud-2"
	again, err := c.Apply(path, second, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Backup != path+BackupSuffix || again.Backup != path+BackupSuffix+".1" {
		t.Fatalf("backups %q, %q", first.Backup, again.Backup)
	}
	if read(t, first.Backup) != original {
		t.Error("the first backup was overwritten")
	}
	for _, b := range []string{first.Backup, again.Backup} {
		if fi, err := os.Stat(b); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", b, fi.Mode(), err)
		}
	}
}

// TestConcurrentSetups: 20 runs at once, each adding its own entry under
// the store's file lock: all 20 entries are there.
func TestConcurrentSetups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	st := store.New(t.TempDir(), store.ModeFile, nil, time.Second)
	lock := func(p string) (func(), error) { return st.FileLock(t.Context(), p) }
	c := cursor(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			en := entry
			en.Name = fmt.Sprintf("n%d", i)
			if _, err := c.Apply(path, en, Options{Lock: lock}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := read(t, path)
	for i := range 20 {
		if !strings.Contains(got, fmt.Sprintf(`"n%d"`, i)) {
			t.Errorf("entry n%d lost", i)
		}
	}
	if n := bytes.Count([]byte(got), []byte(`"command"`)); n != 20 {
		t.Errorf("%d entries, want 20", n)
	}
}

// TestClaudeAddJSON: with Claude Code installed, a new entry is added by
// its own 'claude mcp add-json --scope user' (here a script that stands
// in for the claude command, which these machines do not have, and writes
// what Claude Code would); when that fails, ncmcp edits the file.
func TestClaudeAddJSON(t *testing.T) {
	c, _ := Lookup("claude-code")
	for _, works := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, ".claude.json")
		writeFile(t, path, `{"numStartups": 3, "mcpServers": {}}`, 0o600)
		var calls [][]string
		run := func(name string, args ...string) error {
			calls = append(calls, append([]string{name}, args...))
			if !works {
				return errors.New("exit status 1")
			}
			// What Claude Code does: the entry under mcpServers.
			_, err := c.Apply(path, entry, Options{})
			return err
		}
		res, err := c.Apply(path, entry, Options{Own: true, Run: run})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"claude", "mcp", "add-json", "--scope", "user", "nextcloud",
			`{"type":"http","url":"https://mcp.example.com/mcp","headersHelper":"/usr/local/bin/ncmcp token --headers"}`}
		if len(calls) != 1 || !slices.Equal(calls[0], want) {
			t.Errorf("calls %q, want %q", calls, want)
		}
		if !res.Changed || (res.Via != "") != works || !strings.Contains(read(t, path), `"numStartups": 3`) {
			t.Errorf("works=%t: result %+v\n%s", works, res, read(t, path))
		}
		if again, err := c.Apply(path, entry, Options{Own: true, Run: run}); err != nil || again.Changed || len(calls) != 1 {
			t.Errorf("a second run: %+v %v, %d calls", again, err, len(calls))
		}
	}
}
