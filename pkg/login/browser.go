package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/registration"
)

// Browser is the input of a browser login (the authorization code flow).
type Browser struct {
	Disc   *discovery.Result
	Client oauth.Client
	// Port is the loopback port; 0 picks a free one.
	Port   int
	Scopes []string
}

// Attempt is a browser login under way: the loopback listener waits for
// the browser, which is to be sent to StartURL.
type Attempt struct {
	f     *Flow
	disc  *discovery.Result
	ln    *loopback.Server
	login *oauth.Login

	// AuthURL is the authorization request, for the user to see.
	AuthURL string
	// StartURL is the listener's one-time page that makes the
	// authorization request: the page to open in the browser. Other users
	// can read a command line, so the browser never gets AuthURL itself.
	StartURL string
	// RedirectURI is where the browser comes back to.
	RedirectURI string
	// Port is the listener's port.
	Port int
}

// NoPKCEError reports an authorization server that does not offer PKCE
// with S256, which MCP requires.
type NoPKCEError struct{ Issuer string }

func (e *NoPKCEError) Error() string {
	return fmt.Sprintf("the authorization server %s does not offer PKCE with S256 (code_challenge_methods_supported), which MCP requires", e.Issuer)
}

// Start opens the loopback listener and prepares the authorization
// request. Close the attempt when done. A port in use is a
// *loopback.PortInUseError.
func (f *Flow) Start(b Browser) (*Attempt, error) {
	login, err := newLogin(b.Disc, b.Client, b.Scopes)
	if err != nil {
		return nil, err
	}
	ln, err := loopback.Listen(b.Port)
	if err != nil {
		return nil, err
	}
	login.RedirectURI = ln.RedirectURI()
	a := &Attempt{f: f, disc: b.Disc, ln: ln, login: login, AuthURL: login.URL(), RedirectURI: ln.RedirectURI(), Port: ln.Port()}
	a.StartURL = ln.Start(func(ctx context.Context) (string, error) {
		return authorize(ctx, f.HTTP, a.AuthURL)
	})
	return a, nil
}

// Close stops the listener.
func (a *Attempt) Close() error { return a.ln.Close() }

// Wait waits for the browser (or a pasted address or code from pasted,
// with rejected told of each unusable one), exchanges the code, verifies
// the identity and stores the login. ctx bounds the wait.
//
// Errors: *loopback.AuthError (the authorization server refused),
// *loopback.StartError wrapping *AuthorizeError or *UnreachableError (the
// authorization request failed), loopback.ErrStartReused, *ExchangeError,
// *IdentityError, storage failures, and ctx's error.
func (a *Attempt) Wait(ctx context.Context, pasted <-chan string, rejected func(error)) (*Result, error) {
	var done *Result
	var completeErr error
	_, err := a.ln.WaitOrPaste(ctx, a.login.State, func(cctx context.Context, code string) loopback.Result {
		done, completeErr = a.complete(cctx, code)
		if completeErr != nil {
			return loopback.Result{Title: "Login failed", Message: strings.Join(strings.Fields(completeErr.Error()), " ") + ". Nothing was stored; see the terminal."}
		}
		return loopback.Result{OK: true, Title: "Logged in", Message: fmt.Sprintf("ncmcp is logged in to %s as %s.", a.disc.ServerURL, done.Identity.Display())}
	}, pasted, rejected)
	if err != nil {
		return nil, err
	}
	return done, completeErr
}

// ExchangeError reports a code the token endpoint did not exchange.
type ExchangeError struct {
	Err error
	// Unreachable is set when the token endpoint could not be reached.
	Unreachable bool
	// UnknownClient is set when the server no longer knows the client.
	UnknownClient bool
	// Spent is set when the code was not retried, because codes work once.
	Spent bool
}

func (e *ExchangeError) Error() string {
	if e.Spent {
		return fmt.Sprintf("%v (codes work once: it was not retried)", e.Err)
	}
	return e.Err.Error()
}

func (e *ExchangeError) Unwrap() error { return e.Err }

// complete exchanges the code, establishes the identity (a verified ID
// token where the server allows it) and stores the result.
func (a *Attempt) complete(ctx context.Context, code string) (*Result, error) {
	l := a.login
	tok, err := l.Exchange(ctx, a.f.HTTP, code)
	if err != nil {
		var te *oauth.TokenError
		return nil, &ExchangeError{Err: err,
			Unreachable:   errors.As(err, &te) && te.Status == 0 && !te.Unusable,
			UnknownClient: errors.As(err, &te) && registration.UnknownClient(te.Code, te.Description),
			Spent:         l.NoVerifierFallback,
		}
	}
	id, err := Identifier(a.disc, l.Client.ID).Identify(ctx, a.f.HTTP, tok, l.Nonce)
	if err != nil {
		return nil, &IdentityError{Err: err}
	}
	return a.f.save(ctx, a.disc, &Record{Client: l.Client, Identity: id, Token: tok, Requested: l.Scopes})
}

// newLogin prepares the authorization request. Generation 1 authorizes at
// the server's /oauth/authorize (which passes the browser on to the IdP)
// and exchanges at the IdP; any other server at the endpoints of its
// authorization server's metadata, which must offer PKCE with S256.
func newLogin(disc *discovery.Result, client oauth.Client, scopes []string) (*oauth.Login, error) {
	if disc.Generation == discovery.Generation1 {
		return oauth.NewLogin(disc.ServerURL+"/oauth/authorize", disc.Provider.TokenEndpoint, client, ""), nil
	}
	if !disc.Provider.SupportsS256() {
		return nil, &NoPKCEError{Issuer: disc.Issuer}
	}
	l := oauth.NewLogin(disc.Provider.AuthorizationEndpoint, disc.Provider.TokenEndpoint, client, "")
	l.Scopes = scopes
	l.Resource = disc.ResourceIndicator()
	// Codes of authorization servers that follow OAuth 2.1 are spent by a
	// failed exchange: never try one twice.
	l.NoVerifierFallback = true
	return l, nil
}

// AuthorizeError reports an authorization request the server refused
// with an OAuth error, or answered with neither a redirect nor a page.
type AuthorizeError struct {
	Status      int
	Code        string
	Description string
	// BadRedirect is set for a redirect to no usable http(s) address.
	BadRedirect bool
}

func (e *AuthorizeError) Error() string {
	if e.BadRedirect {
		return "the authorization endpoint redirected to no usable http(s) address"
	}
	if e.Code == "" {
		return fmt.Sprintf("the authorization endpoint answered HTTP %d", e.Status)
	}
	return fmt.Sprintf("the server refused the authorization request (HTTP %d %s): %s", e.Status, e.Code, e.Description)
}

// UnreachableError reports an authorization endpoint that could not be
// reached.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("reach the authorization endpoint: %v", e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// authorize makes the authorization request for the browser and returns
// where the browser goes on to: the authorization server's redirect (to
// the IdP, or straight back with a code), or the request itself when the
// server answers with a page of its own or sets cookies (the browser must
// then make it again). A refusal (unknown client, bad parameters) becomes
// an error for the terminal instead of JSON in a browser tab.
func authorize(ctx context.Context, hc *http.Client, authURL string) (string, error) {
	nc := *hc
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := nc.Do(req)
	if err != nil {
		if u := errors.Unwrap(err); u != nil {
			err = u
		}
		return "", &UnreachableError{Err: err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		loc, err := resp.Location()
		if err != nil || (loc.Scheme != "http" && loc.Scheme != "https") {
			return "", &AuthorizeError{Status: resp.StatusCode, BadRedirect: true}
		}
		if len(resp.Cookies()) > 0 {
			return authURL, nil
		}
		return loc.String(), nil
	case resp.StatusCode == http.StatusOK:
		return authURL, nil // a login page served directly
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(body, &e) != nil {
		e.Error = ""
	}
	return "", &AuthorizeError{Status: resp.StatusCode, Code: e.Error, Description: e.Description}
}
