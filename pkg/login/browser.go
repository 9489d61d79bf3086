package login

import (
	"context"
	"errors"
	"fmt"
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
	// StartURL is the listener's one-time page that redirects the browser
	// to AuthURL: the page to open in the browser. Other users can read a
	// command line, so the browser is never given AuthURL on it.
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
	client, err := withDPoP(b.Disc, b.Client)
	if err != nil {
		return nil, err
	}
	login, err := newLogin(b.Disc, client, b.Scopes)
	if err != nil {
		return nil, err
	}
	ln, err := loopback.Listen(b.Port)
	if err != nil {
		return nil, err
	}
	login.RedirectURI = ln.RedirectURI()
	// The response must come from the authorization server the request
	// goes to (RFC 9207): its iss, where present, is compared with the
	// issuer of that server's metadata, and required where the metadata
	// promises it. A generation-1 request goes to the server's
	// pass-through route, and the response comes from the IdP, whose
	// metadata disc.Provider is.
	ln.ExpectIssuer(b.Disc.Provider.Issuer, b.Disc.Provider.AuthorizationResponseIssParameterSupported)
	a := &Attempt{f: f, disc: b.Disc, ln: ln, login: login, AuthURL: login.URL(), RedirectURI: ln.RedirectURI(), Port: ln.Port()}
	// The browser makes the authorization request, never ncmcp (RFC 8252
	// section 6): the authorization server then sees the browser's cookies
	// (single sign-on), and each login makes one request, whose code is
	// the one redeemed. A refusal the server answers with a page of its
	// own therefore reaches the browser only (see Wait).
	a.StartURL = ln.Start(a.AuthURL)
	return a, nil
}

// Close stops the listener.
func (a *Attempt) Close() error { return a.ln.Close() }

// Wait waits for the browser (or a pasted address or code from pasted,
// with rejected told of each unusable one), exchanges the code, verifies
// the identity and stores the login. ctx bounds the wait.
//
// Errors: *loopback.AuthError (the authorization server refused, with a
// redirect to the callback), *loopback.IssuerError (a response that does
// not come from that authorization server), loopback.ErrStartReused, *ExchangeError,
// *IdentityError, storage failures, and ctx's error. An authorization
// server that shows its refusal in the browser instead (as RFC 6749
// section 4.1.2.1 requires for an unknown client or redirect URI) leaves
// Wait waiting until ctx is done.
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
