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
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// MaxLogins bounds the logins one Credentials makes (a first login, then
// step-ups), so that a server that keeps asking for scopes it never
// accepts cannot make ncmcp loop.
const MaxLogins = 3

// MinTTL is how long a token handed to a request stays valid at least;
// for tokens that live less than 4 x MinTTL, a quarter of their life.
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
	// LoginAtExpiry, with Login, replaces a token that cannot be renewed
	// by a new login once it expires, as a long-running session (the
	// proxy) needs; without it the expiry is reported
	// (*credential.LoginRequiredError), as commands do.
	LoginAtExpiry bool
	// Recover, when set, answers a client the server forgot by
	// registering another in its place: nil when it did (a login with it
	// follows, once, when Login is set), else the error to give up with.
	// Without it the credential.ClientGoneError is returned as it is.
	Recover func(context.Context, *credential.ClientGoneError) error
	// Notice receives progress worth telling the user; nil drops it.
	Notice func(string)
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu     sync.Mutex
	token  string
	expiry time.Time
	// lifetime is the token's, from when this session got it.
	lifetime time.Duration
	// toExpiry is set when the token in use cannot be renewed: it is used
	// until it expires, without looking for a renewal at every request of
	// its last margin. A token that changes clears it.
	toExpiry bool
	logins   int
	// failed counts the logins that failed, last is the last one's error.
	failed int
	last   error
	// recovered is set once a forgotten client was replaced.
	recovered bool
	// asked are the scopes the logins of this session asked for.
	asked []string
	// tokenType is the token's type, dpopKey the account's DPoP key as
	// stored; key is dpopKey read, once needed (nil until then).
	tokenType, dpopKey string
	key                *oauth.DPoPKey
}

func (c *Credentials) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Token returns the account's access token, refreshed first when it
// expires within its margin (MinTTL, or a quarter of a short token's
// life); none before a login. A session that outlives its token gets a new
// one here, before the server has to refuse the old one. A token that
// cannot be renewed (no refresh token) is used until it really expires;
// then a session that may log in at expiry does.
func (c *Credentials) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Subject == "" {
		return c.token, nil
	}
	margin := c.margin()
	if c.token != "" && (c.expiry.IsZero() || c.now().Add(margin).Before(c.expiry) || c.toExpiry && c.now().Before(c.expiry)) {
		return c.token, nil
	}
	src := c.Source(c.Server, c.Subject)
	tok, err := src.Token(ctx, margin)
	var lr *credential.LoginRequiredError
	if errors.As(err, &lr) && (lr.Reason == credential.NoRefreshToken || lr.Reason == credential.AssertionFromStdin) {
		if t, serr := src.Current(); serr == nil && t.AccessToken != "" && (t.Expiry.IsZero() || c.now().Before(t.Expiry)) {
			c.use(t.AccessToken, t.Expiry)
			c.bind(&t.Tokens)
			c.toExpiry = true
			return c.token, nil
		}
		if c.Login != nil && c.LoginAtExpiry {
			return c.login(ctx, err, false, nil, c.token)
		}
	}
	if err != nil {
		return c.clientGone(ctx, err, c.token)
	}
	c.use(tok.AccessToken, tok.Expiry)
	c.bind(&tok.Tokens)
	return c.token, nil
}

// margin is how long before its expiry the token is renewed: MinTTL, or
// a quarter of the life of a token that lives less than 4 x MinTTL, so
// that short-lived tokens are not renewed for every request.
func (c *Credentials) margin() time.Duration {
	if c.lifetime > 0 && c.lifetime/4 < MinTTL {
		return c.lifetime / 4
	}
	return MinTTL
}

// use takes a token as the session's.
func (c *Credentials) use(token string, expiry time.Time) {
	if token != c.token {
		c.toExpiry = false
		if !expiry.IsZero() {
			c.lifetime = expiry.Sub(c.now())
		}
	}
	c.token, c.expiry = token, expiry
}

// bind records the token type and DPoP key that come with the token in
// use (nil: a bearer token, as far as is known); a key read before is
// forgotten when the token comes with another.
func (c *Credentials) bind(t *store.Tokens) {
	var tokenType, dpopKey string
	if t != nil {
		tokenType, dpopKey = t.TokenType, t.DPoPKey
	}
	if dpopKey != c.dpopKey {
		c.key = nil
	}
	c.tokenType, c.dpopKey = tokenType, dpopKey
}

// DPoP returns the DPoP key the token in use is bound to (RFC 9449), nil
// for a bearer token or one that is no longer in use. The key is read
// from its stored form once, when first needed.
func (c *Credentials) DPoP(_ context.Context, token string) (*oauth.DPoPKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if token == "" || token != c.token || !oauth.IsDPoP(c.tokenType) {
		return nil, nil
	}
	if c.dpopKey == "" {
		return nil, fmt.Errorf("the access token of %s on %s is DPoP-bound, and its key is not stored: log in again", c.Subject, c.Server)
	}
	if c.key != nil {
		return c.key, nil
	}
	k, err := credential.DPoPKey(&store.Tokens{DPoPKey: c.dpopKey})
	if err != nil {
		return nil, err
	}
	c.key = k
	return k, nil
}

// clientGone answers a client the server forgot with Recover, when set:
// once a new client took its place, a session that may log in does, with
// it. refused is the token in use, if any.
func (c *Credentials) clientGone(ctx context.Context, err error, refused string) (string, error) {
	var cg *credential.ClientGoneError
	if !errors.As(err, &cg) || c.Recover == nil {
		return "", err
	}
	if c.recovered {
		return "", err // replaced once already: the new one is gone too
	}
	if rerr := c.Recover(ctx, cg); rerr != nil {
		return "", rerr
	}
	c.recovered = true
	if c.Notice != nil {
		c.Notice(fmt.Sprintf("The authorization server no longer knew client %s (restarted?): registered a new one.", cg.ClientID))
	}
	if c.Login == nil {
		return "", &LoginNeededError{Server: c.Server, Refusal: err}
	}
	return c.login(ctx, err, false, nil, refused)
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
		if !errors.As(err, &lr) || c.Login == nil || isWorkload(lr.Account) {
			// A workload's tokens come from its JWT alone: why that
			// failed is the answer, not a login.
			return c.clientGone(ctx, err, token)
		}
	}
	if c.Login == nil {
		return "", &LoginNeededError{Server: c.Server, Refusal: r.Err()}
	}
	return c.login(ctx, r.Err(), false, r.Challenge.Scopes(), token)
}

// refresh gets a token other than refused: a new one, or one another
// process stored meanwhile.
func (c *Credentials) refresh(ctx context.Context, refused string) (string, error) {
	tok, err := c.Source(c.Server, c.Subject).Refresh(ctx, c.margin(), refused)
	if err != nil {
		return "", err
	}
	c.use(tok.AccessToken, tok.Expiry)
	c.bind(&tok.Tokens)
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
	generation, workload := 0, false
	if cfg, err := store.LoadConfig(c.Store.Dir); err == nil && cfg.Servers[c.Server] != nil {
		srv := cfg.Servers[c.Server]
		generation = srv.Generation
		if a := srv.Accounts[c.Subject]; a != nil {
			granted, workload = a.Scopes, isWorkload(a)
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
	case c.Login == nil || workload:
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
		tok, err := c.login(ctx, r.Err(), true, want, "")
		if ae := (*loopback.AuthError)(nil); errors.As(err, &ae) {
			e.Reason, e.Err = LoginRefused, err
			return "", e
		}
		return tok, err
	}
	return "", e
}

// TooManyLoginsError reports a session that made MaxLogins logins and
// needs another: the server still refuses what they got, or they failed.
type TooManyLoginsError struct {
	// Refusal is why another login is needed.
	Refusal error
	Logins  int
	// Failed counts the logins that failed; Last is the last one's error.
	Failed int
	Last   error
}

func (e *TooManyLoginsError) Error() string {
	if e.Failed == e.Logins && e.Last != nil {
		return fmt.Sprintf("%v; %d logins failed, the last: %v", e.Refusal, e.Logins, e.Last)
	}
	return fmt.Sprintf("%v, still, after %d logins", e.Refusal, e.Logins)
}

func (e *TooManyLoginsError) Unwrap() []error { return []error{e.Refusal, e.Last} }

// AllFailed tells whether no login of the session succeeded.
func (e *TooManyLoginsError) AllFailed() bool { return e.Failed == e.Logins }

// login runs a new login, asking for the challenged scopes (nil: the
// specification's choice), and uses its token; why is why one is needed.
// One process at a time logs in (the store's login lock); one that waited
// for another first looks for what that one stored, unless this is a
// step-up (for more scopes): any stored token but refused (the one in
// use; empty when none) will do.
func (c *Credentials) login(ctx context.Context, why error, stepUp bool, challenged []string, refused string) (string, error) {
	if c.logins >= MaxLogins {
		return "", &TooManyLoginsError{Refusal: why, Logins: c.logins, Failed: c.failed, Last: c.last}
	}
	if !stepUp && c.workload() { // stepUp checked the account it loaded
		// Its tokens come from the workload's JWT alone: a browser login
		// would be another grant, for another identity.
		return "", &LoginNeededError{Server: c.Server, Refusal: why}
	}
	unlock, err := c.Store.LoginLock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	if !stepUp {
		if tok, ok := c.loggedInMeanwhile(ctx, refused); ok {
			return tok, nil
		}
	}
	c.logins++
	l, err := c.Login(ctx, c.Endpoint, challenged)
	c.asked = append(c.asked, l.Asked...)
	if err != nil {
		c.failed++
		c.last = err
		return "", err
	}
	c.Server, c.Subject = l.Server, l.Subject
	c.use(l.Token, l.Expiry)
	c.bind(nil)
	if t, err := c.Source(c.Server, c.Subject).Current(); err == nil && t.AccessToken == l.Token {
		c.bind(&t.Tokens) // the login stored its token type and DPoP key there
	}
	return c.token, nil
}

// workload tells whether the session's account logged in with a
// workload's JWT (workload identity), whose tokens only that JWT renews.
func (c *Credentials) workload() bool {
	if c.Subject == "" {
		return false
	}
	cfg, err := store.LoadConfig(c.Store.Dir)
	if err != nil || cfg.Servers[c.Server] == nil {
		return false
	}
	return isWorkload(cfg.Servers[c.Server].Accounts[c.Subject])
}

// isWorkload tells whether a stored account (nil: none) is a workload's.
func isWorkload(a *store.Account) bool {
	return a != nil && a.Grant == store.GrantWorkloadIdentity
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
	tok, err := c.Source(c.Server, a.Subject).Token(ctx, c.margin())
	if err != nil {
		return "", false
	}
	c.Subject = a.Subject
	c.use(tok.AccessToken, tok.Expiry)
	c.bind(&tok.Tokens)
	return c.token, true
}
