package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// fakeKeyring stands in for the OS keyring in tests of the store's own
// policy. The real keyring, and its real failures (no bus, no Secret
// Service, locked collection), are exercised by the e2e tests.
type fakeKeyring struct {
	mu    sync.Mutex
	items map[string]string
	err   error
	hang  chan struct{} // when set, every call blocks until it is closed
}

func (f *fakeKeyring) wait() {
	if f.hang != nil {
		<-f.hang
	}
}

func (f *fakeKeyring) Get(service, user string) (string, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	v, ok := f.items[service+"/"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeKeyring) Set(service, user, password string) error {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.items[service+"/"+user] = password
	return nil
}

func (f *fakeKeyring) Delete(service, user string) error {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	delete(f.items, service+"/"+user)
	return nil
}

func TestPutPolicy(t *testing.T) {
	broken := errors.New("org.freedesktop.secrets was not provided")
	tests := []struct {
		name         string
		mode         Mode
		keyringErr   error
		wantBackend  string
		wantFallback bool
		wantErr      bool
	}{
		{"auto uses a working keyring", ModeAuto, nil, BackendKeyring, false, false},
		{"auto falls back to the file", ModeAuto, broken, BackendFile, true, false},
		{"keyring fails closed", ModeKeyring, broken, "", false, true},
		{"file never asks the keyring", ModeFile, broken, BackendFile, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kr := &fakeKeyring{items: map[string]string{}, err: tt.keyringErr}
			s := New(dir, tt.mode, kr, time.Second)
			backend, fallback, err := s.Put("k", "secret-value")
			if (err != nil) != tt.wantErr || backend != tt.wantBackend || (fallback != nil) != tt.wantFallback {
				t.Fatalf("Put = %q, %v, %v", backend, fallback, err)
			}
			_, statErr := os.Stat(SecretsPath(dir))
			if fileUsed := statErr == nil; fileUsed != (tt.wantBackend == BackendFile) {
				t.Fatalf("secrets file exists = %v, want %v", fileUsed, tt.wantBackend == BackendFile)
			}
			if tt.wantBackend == "" {
				return
			}
			b, _ := s.Backend(tt.wantBackend)
			if v, err := b.Get("k"); err != nil || v != "secret-value" {
				t.Fatalf("Get from %s = %q, %v", tt.wantBackend, v, err)
			}
		})
	}
}

func TestKeyringTimeout(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	s := New(t.TempDir(), ModeAuto, &fakeKeyring{items: map[string]string{}, hang: hang}, 50*time.Millisecond)
	start := time.Now()
	backend, fallback, err := s.Put("k", "v")
	if err != nil || backend != BackendFile {
		t.Fatalf("Put on a hanging keyring = %q, %v", backend, err)
	}
	var ke *KeyringError
	if !errors.As(fallback, &ke) {
		t.Fatalf("fallback = %v, want a KeyringError", fallback)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Put took %s with a 50ms keyring timeout", d)
	}
}

func TestFileBackendIsOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	s := New(dir, ModeFile, &fakeKeyring{}, time.Second)
	if _, _, err := s.PutTokens("http://srv", "sub", &Tokens{AccessToken: "at", RefreshToken: "rt"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(SecretsPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file mode %v, want 0600", fi.Mode().Perm())
	}
	tok, err := s.GetTokens(BackendFile, "http://srv", "sub")
	if err != nil || tok.RefreshToken != "rt" {
		t.Fatalf("GetTokens = %+v, %v", tok, err)
	}
	// A file others can read is refused rather than used.
	if err := os.Chmod(SecretsPath(dir), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTokens(BackendFile, "http://srv", "sub"); err == nil {
		t.Fatal("a world-readable secrets file was accepted")
	}
}

func TestConfigRoundTripAndDamage(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadConfig(dir)
	if err != nil || len(c.Servers) != 0 {
		t.Fatalf("missing config = %+v, %v", c, err)
	}
	c.Servers["http://a"] = &Server{URL: "http://a", Accounts: map[string]*Account{"s1": {Subject: "s1", Username: "alice"}}}
	if err := SaveConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	c2, err := LoadConfig(dir)
	if err != nil || c2.Servers["http://a"].FindAccount("alice") == nil {
		t.Fatalf("reloaded = %+v, %v", c2, err)
	}
	if err := os.WriteFile(ConfigPath(dir), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(dir); err == nil {
		t.Fatal("a damaged config was accepted")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".config.json.*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestLockExcludes(t *testing.T) {
	s := New(t.TempDir(), ModeFile, &fakeKeyring{}, time.Second)
	unlock, err := s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(ctx); err == nil {
		t.Fatal("a second Lock succeeded while the first is held")
	}
	unlock()
	unlock2, err := s.Lock(context.Background())
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}

func TestFindAccount(t *testing.T) {
	srv := &Server{Accounts: map[string]*Account{
		"s1": {Subject: "s1", Username: "alice"},
		"s2": {Subject: "s2", Username: "bob", Email: "bob@example.test"},
	}}
	if srv.FindAccount("") != nil {
		t.Fatal("two accounts, no active one: FindAccount(\"\") must not guess")
	}
	srv.ActiveAccount = "s2"
	for name, want := range map[string]string{"": "s2", "s1": "s1", "alice": "s1", "bob@example.test": "s2", "Alice": "s1", "BOB": "s2", "Bob@Example.test": "s2"} {
		if a := srv.FindAccount(name); a == nil || a.Subject != want {
			t.Errorf("FindAccount(%q) = %+v, want %s", name, a, want)
		}
	}
	if srv.FindAccount("carol") != nil || srv.FindAccount("S1") != nil {
		t.Error("FindAccount(carol) or a subject in another case found someone")
	}
}

// TestKeyringChunking: a value larger than one keyring item holds is split
// and read back whole; shrinking it removes the parts no longer needed.
func TestKeyringChunking(t *testing.T) {
	kr := &fakeKeyring{items: map[string]string{}}
	b := &keyringBackend{kr: kr, timeout: time.Second, maxItem: 100}
	big := strings.Repeat("0123456789", 45) // 450 bytes: 5 or 6 items
	if err := b.Set("token:x", big); err != nil {
		t.Fatal(err)
	}
	for k, v := range kr.items {
		if len(v) > 100 {
			t.Errorf("item %s holds %d bytes, more than the limit", k, len(v))
		}
	}
	if len(kr.items) < 5 {
		t.Fatalf("%d items for 450 bytes at 100 per item", len(kr.items))
	}
	if got, err := b.Get("token:x"); err != nil || got != big {
		t.Fatalf("Get = %d bytes, %v", len(got), err)
	}
	if err := b.Set("token:x", "small"); err != nil {
		t.Fatal(err)
	}
	if len(kr.items) != 1 {
		t.Fatalf("stale parts left after shrinking: %v", len(kr.items))
	}
	if got, _ := b.Get("token:x"); got != "small" {
		t.Fatalf("Get = %q", got)
	}
	if err := b.Set("token:x", big); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete("token:x"); err != nil || len(kr.items) != 0 {
		t.Fatalf("Delete left %d items (%v)", len(kr.items), err)
	}
	// A value that looks like a chunk header is itself chunked, so it
	// reads back unchanged.
	odd := chunkPrefix + "2:abc"
	if err := b.Set("k", odd); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get("k"); got != odd {
		t.Fatalf("Get = %q", got)
	}
}
