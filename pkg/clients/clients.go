// Package clients manages the OAuth clients ncmcp uses with each server:
// it registers them (RFC 7591), records pre-registered ones, removes them
// (RFC 7592), and replaces a registered client its server forgot. It
// prints nothing: notices go to Manager.Notice, failures are typed errors.
package clients

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/registration"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// MaxRetryWait is the longest Retry-After that Register waits out by
// itself before retrying once.
const MaxRetryWait = 30 * time.Second

// Manager carries out the client operations on one store.
type Manager struct {
	Store *store.Store
	HTTP  *http.Client
	// Notice receives progress worth telling the user; nil drops it.
	Notice func(string)
	// Discover finds a server's authorization server, for Recover.
	Discover func(ctx context.Context, serverURL string) (*discovery.Result, error)
}

func (m *Manager) notice(format string, args ...any) {
	if m.Notice != nil {
		m.Notice(fmt.Sprintf(format, args...))
	}
}

// NoRegistrationError reports an authorization server without dynamic
// client registration.
type NoRegistrationError struct{ Issuer string }

func (e *NoRegistrationError) Error() string {
	return fmt.Sprintf("%s does not offer dynamic client registration (no registration_endpoint)", e.Issuer)
}

// Registered is the outcome of Register.
type Registered struct {
	Client   store.Client
	Endpoint string
	Redirect string
	// FellBack is the keyring's failure when a secret went to the file.
	FellBack error
}

// ServerMeta is the stored metadata of a discovered server.
func ServerMeta(disc *discovery.Result) store.Server {
	p := disc.Provider
	return store.Server{URL: disc.ServerURL, Generation: disc.Generation, Issuer: p.Issuer, TokenEndpoint: p.TokenEndpoint,
		TokenAuthMethods: p.TokenEndpointAuthMethodsSupported, RevocationEndpoint: p.RevocationEndpoint,
		Endpoint: disc.Endpoint, Resource: disc.ResourceIndicator()}
}

// Register registers ncmcp as a native public client of the discovered
// server's authorization server, with a loopback redirect URI on port (0:
// a free one, which the registration then fixes), and stores it with its
// secrets. A 429 with a short Retry-After is waited out once. Errors are
// *NoRegistrationError, *registration.Error, or storage and network
// failures; nothing is stored on failure.
func (m *Manager) Register(ctx context.Context, disc *discovery.Result, port int) (*Registered, error) {
	endpoint := disc.Provider.RegistrationEndpoint
	if endpoint == "" {
		return nil, &NoRegistrationError{Issuer: disc.Provider.Issuer}
	}
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	redirect := fmt.Sprintf("http://127.0.0.1:%d%s", port, loopback.CallbackPath)
	req := registration.NativeClient(redirect)
	resp, err := registration.Register(ctx, m.HTTP, endpoint, req)
	var re *registration.Error
	if errors.As(err, &re) && re.Status == http.StatusTooManyRequests && re.RetryAfter > 0 && re.RetryAfter <= MaxRetryWait {
		m.notice("The registration endpoint is rate limited; retrying once in %s...", re.RetryAfter)
		select {
		case <-time.After(re.RetryAfter):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		resp, err = registration.Register(ctx, m.HTTP, endpoint, req)
	}
	if err != nil {
		return nil, err
	}
	c := store.Client{ID: resp.ClientID, RedirectPort: port, Registered: true, RegistrationURI: resp.RegistrationClientURI,
		SecretExpiresAt: resp.SecretExpiry(), AuthMethod: resp.TokenEndpointAuthMethod}
	meta := ServerMeta(disc)
	c, fellBack, err := m.Store.SaveClient(ctx, disc.ServerURL, &meta, c,
		store.ClientSecrets{Secret: resp.ClientSecret, RegistrationToken: resp.RegistrationAccessToken})
	if err != nil {
		return nil, err
	}
	return &Registered{Client: c, Endpoint: endpoint, Redirect: redirect, FellBack: fellBack}, nil
}

// freePort asks the OS for a free loopback port.
func freePort() (int, error) {
	s, err := loopback.Listen(0)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.Port(), nil
}

// Add records a pre-registered client for a server, with its secret when
// given. It returns the client as stored and the keyring's failure when
// the secret went to the file.
func (m *Manager) Add(ctx context.Context, serverURL string, c store.Client, secret string) (store.Client, error, error) {
	return m.Store.SaveClient(ctx, serverURL, nil, c, store.ClientSecrets{Secret: secret})
}

// Removed is the outcome of Remove.
type Removed struct {
	// Deleted is set when the registration was deleted at the server.
	Deleted bool
	// Users are the accounts that logged in with the client.
	Users []string
}

// NotStoredError reports a client that is not stored for the server.
type NotStoredError struct{ Server, ClientID string }

func (e *NotStoredError) Error() string {
	return fmt.Sprintf("no client %q stored for %s", e.ClientID, e.Server)
}

// DeleteError reports a registration that could not be deleted at the
// server; the client is still stored.
type DeleteError struct{ Err error }

func (e *DeleteError) Error() string { return fmt.Sprintf("%v; the client is still stored", e.Err) }
func (e *DeleteError) Unwrap() error { return e.Err }

// Remove deletes the client's registration at the server when ncmcp holds
// its registration access token (unless localOnly), then forgets the client
// and its secrets. When the deletion fails nothing is forgotten.
func (m *Manager) Remove(ctx context.Context, serverURL, id string, localOnly bool) (*Removed, error) {
	cfg, err := store.LoadConfig(m.Store.Dir)
	if err != nil {
		return nil, err
	}
	var c *store.Client
	if srv := cfg.Servers[serverURL]; srv != nil {
		c = srv.Client(id)
	}
	if c == nil {
		return nil, &NotStoredError{Server: serverURL, ClientID: id}
	}
	// The deletion at the server is a network call: it happens before the
	// store lock is taken, so that token refreshes are not held up by it.
	out := &Removed{}
	if c.RegistrationURI != "" && c.RegistrationTokenStorage != "" && !localOnly {
		tok, err := m.Store.RegistrationToken(serverURL, c)
		if err != nil {
			return nil, err
		}
		if err := registration.Delete(ctx, m.HTTP, c.RegistrationURI, tok); err != nil {
			return nil, &DeleteError{Err: err}
		}
		out.Deleted = true
	}
	if out.Users, err = m.Store.ForgetClient(ctx, serverURL, id); err != nil {
		return nil, err
	}
	return out, nil
}

// ReplacedError reports a registered client the server forgot, which
// Recover replaced: the tokens of the old one are bound to it, so the user
// must log in again.
type ReplacedError struct {
	Server     string
	Old, New   string
	Registered *Registered
}

func (e *ReplacedError) Error() string {
	return fmt.Sprintf("%s no longer knows client %s (servers that keep registrations in memory forget them when they restart); registered client %s in its place", e.Server, e.Old, e.New)
}

// UnrecoveredError reports a registered client the server forgot that
// could not be replaced now, because the server could not be discovered.
type UnrecoveredError struct {
	Gone *credential.ClientGoneError
	Err  error
}

func (e *UnrecoveredError) Error() string {
	return fmt.Sprintf("%v; no new client could be registered: %v", e.Gone, e.Err)
}

func (e *UnrecoveredError) Unwrap() error { return e.Gone }

// Recover answers a credential.ClientGoneError: a client ncmcp registered
// is forgotten and a new one registered in its place (*ReplacedError); a
// pre-registered one is left as it is and the error returned unchanged;
// when the server cannot be discovered now, *UnrecoveredError. Only commands meant to
// change state call it. Call it without holding the store lock.
func (m *Manager) Recover(ctx context.Context, gone *credential.ClientGoneError) error {
	cfg, err := store.LoadConfig(m.Store.Dir)
	if err != nil {
		return err
	}
	srv := cfg.Servers[gone.Server]
	if srv == nil {
		return gone
	}
	c := srv.Client(gone.ClientID)
	if c == nil || !c.Registered || m.Discover == nil {
		return gone
	}
	disc, err := m.Discover(ctx, gone.Server)
	if err != nil {
		return &UnrecoveredError{Gone: gone, Err: err}
	}
	if _, err := m.Store.ForgetClient(ctx, gone.Server, gone.ClientID); err != nil {
		return err
	}
	reg, err := m.Register(ctx, disc, 0)
	if err != nil {
		return err
	}
	return &ReplacedError{Server: gone.Server, Old: gone.ClientID, New: reg.Client.ID, Registered: reg}
}
