package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/zalando/go-keyring"
)

// Service is the keyring service name under which every ncmcp item lives.
const Service = "ncmcp"

// Backend names, as recorded in the config file and shown to users.
const (
	BackendKeyring = "keyring"
	BackendFile    = "file"
)

// ErrNotFound reports a secret that is not stored.
var ErrNotFound = errors.New("secret not found")

// KeyringError reports a keyring that failed or did not answer in time.
type KeyringError struct {
	Op  string
	Err error
}

func (e *KeyringError) Error() string {
	return fmt.Sprintf("OS keyring %s: %v", e.Op, e.Err)
}

func (e *KeyringError) Unwrap() error { return e.Err }

// Keyring is the part of github.com/zalando/go-keyring the store uses; tests
// of ncmcp's own logic may substitute it.
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

// OSKeyring is the platform keyring through go-keyring (Secret Service on
// Linux, Keychain on macOS, Credential Manager on Windows).
type OSKeyring struct{}

// Get implements Keyring.
func (OSKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }

// Set implements Keyring.
func (OSKeyring) Set(service, user, password string) error {
	return keyring.Set(service, user, password)
}

// Delete implements Keyring.
func (OSKeyring) Delete(service, user string) error { return keyring.Delete(service, user) }

// Backend holds secrets by key.
type Backend interface {
	// Name is BackendKeyring or BackendFile.
	Name() string
	// Get returns the secret, or an error wrapping ErrNotFound.
	Get(key string) (string, error)
	// Set stores the secret, replacing any earlier value.
	Set(key, value string) error
	// Delete removes the secret; deleting a missing secret is not an error.
	Delete(key string) error
}

// keyringBackend bounds every keyring call by a timeout: a locked keyring
// can wait for an unlock prompt for ever. Values longer than maxItem are
// split over several items and reassembled.
type keyringBackend struct {
	kr      Keyring
	timeout time.Duration
	maxItem int
}

// MaxKeyringItem is the largest value stored in one keyring item on this
// platform: Windows' Credential Manager holds 2560 bytes, macOS's security
// tool takes about 4 KB through its command line; the Secret Service has no
// practical limit.
func MaxKeyringItem() int {
	switch runtime.GOOS {
	case "windows":
		return 2560
	case "darwin":
		return 3000
	}
	return 1 << 20
}

// chunkPrefix marks an item whose value was split: "ncmcp-chunks:N:" then
// the first part; parts 2..N live in items KEY/chunk/2 ... KEY/chunk/N.
const chunkPrefix = "ncmcp-chunks:"

func chunkKey(key string, i int) string { return key + "/chunk/" + strconv.Itoa(i) }

func (b *keyringBackend) Name() string { return BackendKeyring }

func (b *keyringBackend) call(op string, f func() (string, error)) (string, error) {
	type result struct {
		v   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if errors.Is(r.err, keyring.ErrNotFound) {
			return "", ErrNotFound
		}
		if r.err != nil {
			return "", &KeyringError{Op: op, Err: r.err}
		}
		return r.v, nil
	case <-timer.C:
		return "", &KeyringError{Op: op, Err: fmt.Errorf("no answer within %s (locked, or waiting for an unlock prompt?); NCMCP_KEYRING_TIMEOUT sets the limit", b.timeout)}
	}
}

func (b *keyringBackend) get(key string) (string, error) { return b.getFor("read", key) }

// getFor reads an item as part of the operation op, which errors name.
func (b *keyringBackend) getFor(op, key string) (string, error) {
	return b.call(op, func() (string, error) { return b.kr.Get(Service, key) })
}

func (b *keyringBackend) set(key, value string) error {
	_, err := b.call("write", func() (string, error) { return "", b.kr.Set(Service, key, value) })
	return err
}

func (b *keyringBackend) del(key string) error {
	_, err := b.call("delete", func() (string, error) { return "", b.kr.Delete(Service, key) })
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// chunks returns the number of parts of a stored value and its first part.
func chunks(first string) (int, string, bool) {
	rest, ok := strings.CutPrefix(first, chunkPrefix)
	if !ok {
		return 1, first, false
	}
	ns, part, ok := strings.Cut(rest, ":")
	n, err := strconv.Atoi(ns)
	if !ok || err != nil || n < 1 {
		return 1, first, false
	}
	return n, part, true
}

func (b *keyringBackend) Get(key string) (string, error) {
	first, err := b.get(key)
	if err != nil {
		return "", err
	}
	n, part, split := chunks(first)
	if !split {
		return first, nil
	}
	var sb strings.Builder
	sb.WriteString(part)
	for i := 2; i <= n; i++ {
		p, err := b.get(chunkKey(key, i))
		if errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("keyring item %s is incomplete (part %d of %d missing)", key, i, n)
		}
		if err != nil {
			return "", err
		}
		sb.WriteString(p)
	}
	return sb.String(), nil
}

func (b *keyringBackend) Set(key, value string) error {
	limit := b.maxItem
	if limit <= 0 {
		limit = MaxKeyringItem()
	}
	// Reading the old value first tells how many parts to clean up; it
	// also stops a hanging keyring at the first timeout instead of the second.
	old, err := b.getFor("write", key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	oldN, _, _ := chunks(old)
	if len(value) <= limit && !strings.HasPrefix(value, chunkPrefix) {
		if err := b.set(key, value); err != nil {
			return err
		}
	} else {
		// Parts 2..N first, the head last: a reader never finds a head
		// that points to parts not written yet.
		head := min(limit-len(chunkPrefix)-8, len(value))
		var parts []string
		parts = append(parts, value[:head])
		for rest := value[head:]; len(rest) > 0; {
			n := min(limit, len(rest))
			parts = append(parts, rest[:n])
			rest = rest[n:]
		}
		for i := 2; i <= len(parts); i++ {
			if err := b.set(chunkKey(key, i), parts[i-1]); err != nil {
				return err
			}
		}
		if err := b.set(key, chunkPrefix+strconv.Itoa(len(parts))+":"+parts[0]); err != nil {
			return err
		}
		for i := len(parts) + 1; i <= oldN; i++ {
			_ = b.del(chunkKey(key, i))
		}
		return nil
	}
	for i := 2; i <= oldN; i++ {
		_ = b.del(chunkKey(key, i))
	}
	return nil
}

func (b *keyringBackend) Delete(key string) error {
	old, err := b.getFor("delete", key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	n, _, _ := chunks(old)
	for i := 2; i <= n; i++ {
		if err := b.del(chunkKey(key, i)); err != nil {
			return err
		}
	}
	return b.del(key)
}

// fileBackend keeps secrets in one owner-only JSON file, rewritten
// atomically. Writers must hold the store lock.
type fileBackend struct {
	path string
}

// SecretsPath returns the path of the file backend inside dir.
func SecretsPath(dir string) string { return filepath.Join(dir, "secrets.json") }

func (b *fileBackend) Name() string { return BackendFile }

func (b *fileBackend) load() (map[string]string, error) {
	if err := checkDir(filepath.Dir(b.path)); err != nil {
		return nil, err
	}
	fi, err := checkFile(b.path)
	if err != nil {
		return nil, err
	}
	if fi == nil {
		return map[string]string{}, nil
	}
	if fi.Mode().Perm()&0o077 != 0 && ownerChecksApply() {
		return nil, fmt.Errorf("secrets file %s is readable by others (mode %v): run chmod 600 on it", b.path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets file: %w", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("secrets file %s is damaged: fix or remove it", b.path)
	}
	return m, nil
}

func (b *fileBackend) Get(key string) (string, error) {
	m, err := b.load()
	if err != nil {
		return "", err
	}
	v, ok := m[key]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

func (b *fileBackend) Set(key, value string) error {
	m, err := b.load()
	if err != nil {
		return err
	}
	m[key] = value
	return b.save(m)
}

func (b *fileBackend) Delete(key string) error {
	m, err := b.load()
	if err != nil {
		return err
	}
	if _, ok := m[key]; !ok {
		return nil
	}
	delete(m, key)
	return b.save(m)
}

func (b *fileBackend) save(m map[string]string) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(b.path, data)
}
