// Package oauth runs the client side of OAuth 2.0 / OpenID Connect for
// ncmcp on golang.org/x/oauth2: the authorization request with PKCE
// (RFC 7636), the code exchange, ID token verification, refresh and
// revocation (RFC 7009).
package oauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"

	"golang.org/x/oauth2"
)

// Client is an OAuth client as the IdP knows it.
type Client struct {
	ID string
	// Secret is empty for a public client.
	Secret string
	// AuthMethods is the IdP's token_endpoint_auth_methods_supported; it
	// decides how a confidential client authenticates.
	AuthMethods []string
}

// authStyle picks how x/oauth2 sends the client credentials: in the form for
// a public client (there is no secret to put in a header), HTTP Basic for a
// confidential one unless the IdP only lists client_secret_post.
func (c Client) authStyle() oauth2.AuthStyle {
	if c.Secret == "" {
		return oauth2.AuthStyleInParams
	}
	if slices.Contains(c.AuthMethods, "client_secret_post") && !slices.Contains(c.AuthMethods, "client_secret_basic") {
		return oauth2.AuthStyleInParams
	}
	if slices.Contains(c.AuthMethods, "client_secret_basic") {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleAutoDetect
}

func (c Client) config(authURL, tokenURL, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		RedirectURL:  redirectURI,
		Endpoint:     oauth2.Endpoint{AuthURL: authURL, TokenURL: tokenURL, AuthStyle: c.authStyle()},
	}
}

// randomString returns a URL-safe random string with 128 bits or more of entropy.
func randomString() string { return rand.Text() }

// Login is one authorization-code flow with PKCE S256, state and nonce.
type Login struct {
	// AuthorizeURL is the authorization endpoint the browser opens (the MCP
	// server's /oauth/authorize).
	AuthorizeURL string
	// TokenURL is where the code is exchanged (the IdP's token endpoint in
	// generation 1).
	TokenURL    string
	Client      Client
	RedirectURI string
	// Scopes are sent as the scope parameter when not empty.
	Scopes []string

	State    string
	Nonce    string
	Verifier string

	// NoVerifierFallback disables the second exchange without a verifier
	// (see Exchange), for servers whose codes are single-use whatever the
	// outcome (generation 2).
	NoVerifierFallback bool
}

// NewLogin prepares a flow with fresh random state, nonce and PKCE verifier.
func NewLogin(authorizeURL, tokenURL string, c Client, redirectURI string) *Login {
	return &Login{
		AuthorizeURL: authorizeURL,
		TokenURL:     tokenURL,
		Client:       c,
		RedirectURI:  redirectURI,
		State:        randomString(),
		Nonce:        randomString(),
		Verifier:     oauth2.GenerateVerifier(),
	}
}

// URL returns the authorization request URL: response_type=code, client_id,
// redirect_uri, state, code_challenge (S256), code_challenge_method, nonce,
// and scope when set.
func (l *Login) URL() string {
	cfg := l.Client.config(l.AuthorizeURL, l.TokenURL, l.RedirectURI)
	cfg.Scopes = l.Scopes
	return cfg.AuthCodeURL(l.State, oauth2.S256ChallengeOption(l.Verifier), oauth2.SetAuthURLParam("nonce", l.Nonce))
}

// Exchange trades the code for tokens at TokenURL, sending the PKCE
// verifier. A generation-1 server does not pass the challenge on to the
// IdP, and strict IdPs then refuse a verifier; on that refusal (and only
// that one) the exchange is made once more without it.
func (l *Login) Exchange(ctx context.Context, hc *http.Client, code string) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	cfg := l.Client.config(l.AuthorizeURL, l.TokenURL, l.RedirectURI)
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(l.Verifier))
	if err != nil && !l.NoVerifierFallback && isVerifierRejected(err) {
		tok, err = cfg.Exchange(ctx, code)
	}
	if err != nil {
		return nil, tokenError("exchange the code", l.TokenURL, err)
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("exchange the code at %s: the answer has no access_token", l.TokenURL)
	}
	if !printable(tok.AccessToken) || !printable(tok.RefreshToken) {
		return nil, &TokenError{Op: "exchange the code", URL: l.TokenURL, Unusable: true}
	}
	return tok, nil
}

// printable reports whether a token is made of printable ASCII, as RFC 6749
// (appendix A.12, A.17) requires: anything else is refused, so that a
// hostile token endpoint cannot put control characters on a terminal via
// 'ncmcp token'.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// isVerifierRejected recognises an IdP that refuses a code_verifier because
// the code was issued without a challenge (Keycloak: "PKCE code verifier
// specified but challenge not present"; zitadel: "code_verifier unexpectedly
// provided").
func isVerifierRejected(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil || re.Response.StatusCode != http.StatusBadRequest {
		return false
	}
	if re.ErrorCode != "invalid_request" && re.ErrorCode != "invalid_grant" {
		return false
	}
	d := strings.ToLower(re.ErrorDescription)
	if strings.Contains(d, "invalid code_verifier") || strings.Contains(d, "verifier required") {
		return false // a real PKCE failure, not an unexpected verifier
	}
	return strings.Contains(d, "pkce") || strings.Contains(d, "code_verifier") || strings.Contains(d, "code verifier") || strings.Contains(d, "challenge")
}

// Refresh uses a refresh token at tokenURL (RFC 6749 section 6). When the
// answer carries no new refresh token the old one stays valid and is
// returned in the token.
//
// Cancelling ctx stops the refresh only until the request has been sent:
// after that an IdP that rotates refresh tokens may have spent the old one,
// and losing its answer would lose the login. The request then runs to the
// HTTP client's own timeout, so that the caller can store what comes back.
func Refresh(ctx context.Context, hc *http.Client, tokenURL string, c Client, refreshToken string) (*oauth2.Token, error) {
	ctx, done := committed(ctx)
	defer done()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	cfg := c.config("", tokenURL, "")
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, tokenError("refresh the token", tokenURL, err)
	}
	if !printable(tok.AccessToken) || !printable(tok.RefreshToken) {
		return nil, &TokenError{Op: "refresh the token", URL: tokenURL, Unusable: true}
	}
	return tok, nil
}

// committed returns a context for one HTTP request that follows parent's
// cancellation until the request has been written, and no longer after.
func committed(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	var mu sync.Mutex
	written := false
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		mu.Lock()
		written = true
		mu.Unlock()
	}})
	stop := context.AfterFunc(parent, func() {
		mu.Lock()
		defer mu.Unlock()
		if !written {
			cancel()
		}
	})
	return ctx, func() { stop(); cancel() }
}

// TokenError is a refusal or failure at a token endpoint. It never carries
// the response body, which may hold secrets.
type TokenError struct {
	Op  string
	URL string
	// Status is the HTTP status, 0 when the endpoint was not reached or its
	// answer could not be read.
	Status int
	// Unusable is set when an answer came but was no token response (cut
	// short, not JSON, no access_token).
	Unusable    bool
	Code        string
	Description string
	Err         error
}

func (e *TokenError) Error() string {
	switch {
	case e.Unusable:
		return fmt.Sprintf("%s: the answer of %s is not a usable token response", e.Op, e.URL)
	case e.Status == 0:
		return fmt.Sprintf("%s: token endpoint %s unreachable: %v", e.Op, e.URL, e.Err)
	case e.Code != "":
		s := fmt.Sprintf("%s: %s answered %d %s", e.Op, e.URL, e.Status, e.Code)
		if e.Description != "" {
			s += ": " + e.Description
		}
		return s
	default:
		return fmt.Sprintf("%s: %s answered HTTP %d", e.Op, e.URL, e.Status)
	}
}

func (e *TokenError) Unwrap() error { return e.Err }

// Refused reports whether the IdP answered with a 4xx: the grant (code or
// refresh token) is not accepted and only a new login helps.
func (e *TokenError) Refused() bool { return e.Status >= 400 && e.Status < 500 }

func tokenError(op, u string, err error) error {
	te := &TokenError{Op: op, URL: u, Err: err}
	var re *oauth2.RetrieveError
	var ue *url.Error
	if !errors.As(err, &re) && !errors.As(err, &ue) {
		// x/oauth2 could not read or parse the answer; its message may
		// quote the body, which may hold tokens, so it is not passed on.
		te.Err, te.Unusable = nil, true
		return te
	}
	if re != nil {
		te.Err = nil
		if re.Response != nil {
			te.Status = re.Response.StatusCode
		}
		te.Code, te.Description = re.ErrorCode, re.ErrorDescription
		if te.Status == 0 {
			te.Status = http.StatusOK // a 200 whose body could not be used
			te.Code = "invalid_response"
		}
	}
	return te
}

// Scopes returns the scopes granted in a token response, or nil when the
// IdP did not say (the scope parameter is optional, RFC 6749 section 5.1).
func Scopes(tok *oauth2.Token) []string {
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		return strings.Fields(s)
	}
	return nil
}
