package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// Mode is the --storage policy.
type Mode string

// Storage modes, as accepted by --storage and NCMCP_STORAGE.
const (
	// ModeAuto uses the OS keyring when it answers within the timeout, else
	// the owner-only file, with a warning.
	ModeAuto Mode = "auto"
	// ModeKeyring uses the OS keyring only and fails when it is unusable.
	ModeKeyring Mode = "keyring"
	// ModeFile uses the owner-only file only.
	ModeFile Mode = "file"
)

// DefaultKeyringTimeout bounds each keyring call unless NCMCP_KEYRING_TIMEOUT says otherwise.
const DefaultKeyringTimeout = 3 * time.Second

// ParseMode parses a --storage value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeKeyring, ModeFile:
		return m, nil
	case "":
		return ModeAuto, nil
	}
	return "", fmt.Errorf("invalid storage %q: want auto, keyring or file", s)
}

// Store gives access to the config file and the secret backends in Dir.
type Store struct {
	// Dir holds config.json, secrets.json (file storage) and the lock file.
	Dir  string
	Mode Mode

	keyring Backend
	file    Backend
}

// New returns a Store in dir. kr is the keyring to use (OSKeyring{} in
// production) and timeout bounds each keyring call.
func New(dir string, mode Mode, kr Keyring, timeout time.Duration) *Store {
	if timeout <= 0 {
		timeout = DefaultKeyringTimeout
	}
	return &Store{
		Dir:     dir,
		Mode:    mode,
		keyring: &keyringBackend{kr: kr, timeout: timeout},
		file:    &fileBackend{path: SecretsPath(dir)},
	}
}

// Backend returns the backend with the given name.
func (s *Store) Backend(name string) (Backend, error) {
	switch name {
	case BackendKeyring:
		return s.keyring, nil
	case BackendFile:
		return s.file, nil
	}
	return nil, fmt.Errorf("unknown storage backend %q in config", name)
}

// Put stores a secret as the Mode says and returns the backend that holds
// it. When auto mode falls back to the file, fallback says why the keyring
// was not used; with keyring mode a keyring failure is returned as err.
func (s *Store) Put(key, value string) (backend string, fallback error, err error) {
	if s.Mode == ModeFile {
		return BackendFile, nil, s.file.Set(key, value)
	}
	kerr := s.keyring.Set(key, value)
	if kerr == nil {
		return BackendKeyring, nil, nil
	}
	if s.Mode == ModeKeyring {
		return "", nil, kerr
	}
	if err := s.file.Set(key, value); err != nil {
		return "", kerr, err
	}
	return BackendFile, kerr, nil
}

// Lock takes the cross-process lock that serialises changes to the config
// and secrets (and read-refresh-store cycles), waiting until ctx is done. The
// operating system releases it when the process dies.
func (s *Store) Lock(ctx context.Context) (unlock func(), err error) {
	return s.lockFile(ctx, "ncmcp.lock", "lock config")
}

// LoginLock takes the cross-process lock that lets one process at a time
// run a browser login, so that several processes that need one at once
// (MCP clients starting their proxies together) open one browser window:
// the others wait, then find the stored login. It is not the config lock,
// which a login takes to store its result.
func (s *Store) LoginLock(ctx context.Context) (unlock func(), err error) {
	return s.lockFile(ctx, "login.lock", "wait for another login")
}

// FileLock takes the store's lock for changes to another file (a client's
// configuration, named by its path), so that concurrent ncmcp processes
// change it one after the other.
func (s *Store) FileLock(ctx context.Context, path string) (unlock func(), err error) {
	sum := sha256.Sum256([]byte(path))
	return s.lockFile(ctx, "file-"+hex.EncodeToString(sum[:8])+".lock", "wait for another ncmcp changing "+path)
}

func (s *Store) lockFile(ctx context.Context, name, what string) (unlock func(), err error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", s.Dir, err)
	}
	// In a directory only this user can write to, a lock file that passes
	// the check cannot be swapped for a link before flock opens it.
	if err := checkDir(s.Dir); err != nil {
		return nil, err
	}
	path := filepath.Join(s.Dir, name)
	if _, err := checkFile(path); err != nil {
		return nil, err
	}
	l := flock.New(path, flock.SetPermissions(0o600))
	ok, err := l.TryLockContext(ctx, 25*time.Millisecond)
	if err != nil || !ok {
		if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			err = fmt.Errorf("another ncmcp process holds %s", l.Path())
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return func() { _ = l.Unlock() }, nil
}

// Update runs f on the current config under the lock and saves the result
// when f returns nil.
func (s *Store) Update(ctx context.Context, f func(*Config) error) error {
	unlock, err := s.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := LoadConfig(s.Dir)
	if err != nil {
		return err
	}
	if err := f(c); err != nil {
		return err
	}
	return SaveConfig(s.Dir, c)
}

// Tokens is the secret part of a login, kept in one item so that reading a
// cached token costs a single keyring call.
type Tokens struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// DPoPKey is the account's DPoP private key (RFC 9449), as
	// oauth.DPoPKey.Marshal writes it, when its authorization server binds
	// tokens to one: kept with the tokens, so that one read serves both.
	DPoPKey string `json:"dpop_key,omitempty"`
}

// TokenKey names the item holding an account's Tokens.
func TokenKey(serverURL, subject string) string {
	return "token:" + serverURL + "#" + subject
}

// ClientSecretKey names the item holding a confidential client's secret.
func ClientSecretKey(serverURL, clientID string) string {
	return "client-secret:" + serverURL + "#" + clientID
}

// RegistrationTokenKey names the item holding a client's RFC 7592
// registration access token.
func RegistrationTokenKey(serverURL, clientID string) string {
	return "registration-token:" + serverURL + "#" + clientID
}

// GetTokens reads an account's tokens from the named backend.
func (s *Store) GetTokens(backend, serverURL, subject string) (*Tokens, error) {
	b, err := s.Backend(backend)
	if err != nil {
		return nil, err
	}
	v, err := b.Get(TokenKey(serverURL, subject))
	if err != nil {
		return nil, err
	}
	var t Tokens
	if err := json.Unmarshal([]byte(v), &t); err != nil {
		return nil, fmt.Errorf("stored tokens for %s are damaged: log in again", subject)
	}
	return &t, nil
}

// PutTokensIn writes an account's tokens to the named backend (used when
// the backend is already decided, e.g. when storing a rotated token).
func (s *Store) PutTokensIn(backend, serverURL, subject string, t *Tokens) error {
	b, err := s.Backend(backend)
	if err != nil {
		return err
	}
	v, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return b.Set(TokenKey(serverURL, subject), string(v))
}

// PutTokens writes an account's tokens as the Mode says; see Put.
func (s *Store) PutTokens(serverURL, subject string, t *Tokens) (backend string, fallback error, err error) {
	v, err := json.Marshal(t)
	if err != nil {
		return "", nil, err
	}
	return s.Put(TokenKey(serverURL, subject), string(v))
}
