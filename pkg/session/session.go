// Package session gives an MCP session an account's credentials: the
// stored access token, refreshed when it expires or the server refuses it,
// and, where the command's policy allows, a new login: a first one, or a
// step-up for the scopes the server asks for. It implements
// mcpclient.Credentials and prints nothing.
package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// MaxLogins bounds the logins one Credentials makes (a first login, then
// step-ups), so that a server that keeps asking for scopes it never
// accepts cannot make ncmcp loop.
const MaxLogins = 3

// MinTTL is how long a token handed to a request stays valid at least.
const MinTTL = time.Minute

// LoginFunc runs a new login at the server of endpoint, asking for the
// scopes challenged (nil: those the MCP authorization specification
// selects). Asked is set even when the login fails.
type LoginFunc func(ctx context.Context, endpoint string, challenged []string) (Login, error)

// Login is a new login's outcome.
type Login struct {
	// Server is the server's key, Subject the account.
	Server, Subject string
	Token           string
	// Expiry is when Token expires; zero when unknown.
	Expiry time.Time
	// Asked are the scopes the login asked for.
	Asked []string
}

// Credentials are an account's MCP credentials.
type Credentials struct {
	// Store holds the account.
	Store *store.Store
	// Source returns the credential source of an account.
	Source func(serverURL, subject string) *credential.Source
	// Server is the server's key, Endpoint its MCP endpoint.
	Server, Endpoint string
	// Subject is the account; empty: not logged in (yet).
	Subject string
	// Login, when set, lets the session log in: commands meant to change
	// state set it; read-only ones leave it nil and never log in.
	Login LoginFunc
	// Recover, when set, answers a client the server forgot (by
	// registering another); without it the credential.ClientGoneError is
	// returned as it is.
	Recover func(context.Context, *credential.ClientGoneError) error
	// Notice receives progress worth telling the user; nil drops it.
	Notice func(string)
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu     sync.Mutex
	token  string
	expiry time.Time
	logins int
	// asked are the scopes the logins of this session asked for.
	asked []string
}

func (c *Credentials) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Token returns the account's access token, refreshed first when it
// expires within MinTTL; none before a login. A session that outlives its
// token gets a new one here, before the server has to refuse the old one.
func (c *Credentials) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Subject == "" {
		return c.token, nil
	}
	if c.token != "" && (c.expiry.IsZero() || c.now().Add(MinTTL).Before(c.expiry)) {
		return c.token, nil
	}
	tok, err := c.Source(c.Server, c.Subject).Token(ctx, MinTTL)
	if err != nil {
		return "", c.clientGone(ctx, err)
	}
	c.token, c.expiry = tok.AccessToken, tok.Expiry
	return c.token, nil
}

// clientGone answers a client the server forgot with Recover, when set.
func (c *Credentials) clientGone(ctx context.Context, err error) error {
	var cg *credential.ClientGoneError
	if errors.As(err, &cg) && c.Recover != nil {
		return c.Recover(ctx, cg)
	}
	return err
}

// LoginNeededError reports a refusal that only a new login can answer,
// in a session that may not log in.
type LoginNeededError struct {
	Server string
	// Refusal is the server's refusal.
	Refusal error
}

func (e *LoginNeededError) Error() string { return e.Refusal.Error() }
func (e *LoginNeededError) Unwrap() error { return e.Refusal }

// Renew answers the server's refusal of token: a 401 with a refresh (or
// the token another process stored meanwhile), else a login; a 403
// insufficient_scope with a login for more scopes.
func (c *Credentials) Renew(ctx context.Context, token string, r mcpclient.Refusal) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Status == http.StatusForbidden {
		return c.stepUp(ctx, r)
	}
	if c.Subject != "" && token != "" {
		tok, err := c.refresh(ctx, token)
		if err == nil {
			return tok, nil
		}
		var lr *credential.LoginRequiredError
		if !errors.As(err, &lr) || c.Login == nil {
			return "", c.clientGone(ctx, err)
		}
	}
	if c.Login == nil {
		return "", &LoginNeededError{Server: c.Server, Refusal: r.Err()}
	}
	return c.login(ctx, r, nil, token)
}

// refresh gets a token other than refused: a new one, or one another
// process stored meanwhile.
func (c *Credentials) refresh(ctx context.Context, refused string) (string, error) {
	tok, err := c.Source(c.Server, c.Subject).Refresh(ctx, MinTTL, refused)
	if err != nil {
		return "", err
	}
	c.token, c.expiry = tok.AccessToken, tok.Expiry
	return c.token, nil
}

// StepUpReason says why a 403 insufficient_scope got no new login.
type StepUpReason int

const (
	// NoScopeNamed: the server did not say which scope it wants.
	NoScopeNamed StepUpReason = iota
	// AskedAlready: this session logged in asking for every scope the
	// server wants, and it still refuses.
	AskedAlready
	// AllGranted: the token was granted every scope the server wants.
	AllGranted
	// ScopesFixed: a generation-1 server's configuration decides the scopes.
	ScopesFixed
	// NoLogin: the session may not log in.
	NoLogin
	// LoginRefused: the authorization server refused the new login
	// (a *loopback.AuthError).
	LoginRefused
)

// StepUpError reports a 403 insufficient_scope that a new login did not
// or could not answer.
type StepUpError struct {
	Reason StepUpReason
	// Challenged are the scopes the server asks for; Missing those the
	// token was not granted.
	Challenged, Missing []string
	// Refusal is the server's refusal.
	Refusal error
	// Err is the login's failure, for LoginRefused.
	Err error
}

func (e *StepUpError) Error() string {
	if e.Reason == LoginRefused {
		var ae *loopback.AuthError
		if errors.As(e.Err, &ae) {
			return fmt.Sprintf("%v; logging in again for %s failed: %v", e.Refusal, strings.Join(e.Missing, " "), ae)
		}
		return fmt.Sprintf("%v; logging in again for %s failed: %v", e.Refusal, strings.Join(e.Missing, " "), e.Err)
	}
	return e.Refusal.Error()
}

func (e *StepUpError) Unwrap() []error { return []error{e.Refusal, e.Err} }

// stepUp logs in again for the scopes the server asks for, with those
// already granted; not when it asks for none, or only for scopes the token
// has (another authorization would not change its answer).
func (c *Credentials) stepUp(ctx context.Context, r mcpclient.Refusal) (string, error) {
	challenged := r.Challenge.Scopes()
	var granted []string
	generation := 0
	if cfg, err := store.LoadConfig(c.Store.Dir); err == nil && cfg.Servers[c.Server] != nil {
		srv := cfg.Servers[c.Server]
		generation = srv.Generation
		if a := srv.Accounts[c.Subject]; a != nil {
			granted = a.Scopes
		}
	}
	missing := slices.DeleteFunc(slices.Clone(challenged), func(s string) bool { return slices.Contains(granted, s) })
	askedAll := len(challenged) > 0 && !slices.ContainsFunc(challenged, func(s string) bool { return !slices.Contains(c.asked, s) })
	e := &StepUpError{Challenged: challenged, Missing: missing, Refusal: r.Err()}
	switch {
	case len(challenged) == 0:
		e.Reason = NoScopeNamed
	case askedAll:
		e.Reason = AskedAlready
	case len(missing) == 0:
		e.Reason = AllGranted
	case generation == discovery.Generation1:
		e.Reason = ScopesFixed
	case c.Login == nil:
		e.Reason = NoLogin
	default:
		if c.Notice != nil {
			c.Notice(fmt.Sprintf("The server asks for the scopes %s: logging in again to get them.", strings.Join(missing, " ")))
		}
		want := slices.Clone(granted)
		for _, s := range challenged {
			if !slices.Contains(want, s) {
				want = append(want, s)
			}
		}
		tok, err := c.login(ctx, r, want, "")
		if ae := (*loopback.AuthError)(nil); errors.As(err, &ae) {
			e.Reason, e.Err = LoginRefused, err
			return "", e
		}
		return tok, err
	}
	return "", e
}

// TooManyLoginsError reports a server that still refuses after MaxLogins
// logins.
type TooManyLoginsError struct {
	Refusal error
	Logins  int
}

func (e *TooManyLoginsError) Error() string {
	return fmt.Sprintf("%v, still, after %d logins", e.Refusal, e.Logins)
}

func (e *TooManyLoginsError) Unwrap() error { return e.Refusal }

// login runs a new login, asking for the challenged scopes (nil: the
// specification's choice), and uses its token. One process at a time logs
// in (the store's login lock); one that waited for another first looks for
// what that one stored: for a refusal (refused, the token the server
// refused; empty when none was sent) any stored token but the refused one
// will do.
func (c *Credentials) login(ctx context.Context, r mcpclient.Refusal, challenged []string, refused string) (string, error) {
	if c.logins >= MaxLogins {
		return "", &TooManyLoginsError{Refusal: r.Err(), Logins: c.logins}
	}
	unlock, err := c.Store.LoginLock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	if r.Status != http.StatusForbidden {
		if tok, ok := c.loggedInMeanwhile(ctx, refused); ok {
			return tok, nil
		}
	}
	c.logins++
	if challenged == nil {
		challenged = r.Challenge.Scopes()
	}
	l, err := c.Login(ctx, c.Endpoint, challenged)
	c.asked = append(c.asked, l.Asked...)
	if err != nil {
		return "", err
	}
	c.Server, c.Subject, c.token, c.expiry = l.Server, l.Subject, l.Token, l.Expiry
	return c.token, nil
}

// loggedInMeanwhile returns the token of a login another process stored
// while this one waited for the login lock.
func (c *Credentials) loggedInMeanwhile(ctx context.Context, refused string) (string, bool) {
	if c.Subject != "" {
		tok, err := c.refresh(ctx, refused)
		return tok, err == nil
	}
	cfg, err := store.LoadConfig(c.Store.Dir)
	if err != nil || cfg.Servers[c.Server] == nil {
		return "", false
	}
	a := cfg.Servers[c.Server].FindAccount("")
	if a == nil {
		return "", false
	}
	tok, err := c.Source(c.Server, a.Subject).Token(ctx, MinTTL)
	if err != nil {
		return "", false
	}
	c.Subject, c.token, c.expiry = a.Subject, tok.AccessToken, tok.Expiry
	return c.token, true
}
