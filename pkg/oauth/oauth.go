// Package oauth runs the client side of OAuth 2.0 / OpenID Connect for
// ncmcp on golang.org/x/oauth2: the authorization request with PKCE
// (RFC 7636) and resource indicators (RFC 8707), the code exchange, client
// authentication (secrets, private_key_jwt), the client credentials, token
// exchange (RFC 8693) and JWT bearer (RFC 7523) grants, ID token
// verification, refresh and revocation (RFC 7009).
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
	"golang.org/x/oauth2/clientcredentials"
)

// Client is an OAuth client as the authorization server knows it.
type Client struct {
	ID string
	// Secret is empty for a public client.
	Secret string
	// AuthMethod is how the client authenticates at the token endpoint,
	// as its registration says (token_endpoint_auth_method): none,
	// client_secret_basic, client_secret_post or private_key_jwt; empty to
	// pick one from AuthMethods.
	AuthMethod string
	// AuthMethods is the authorization server's
	// token_endpoint_auth_methods_supported.
	AuthMethods []string
	// Key signs the client assertions of private_key_jwt (RFC 7523
	// section 2.2) for the authorization server Issuer, their audience.
	Key    *SigningKey
	Issuer string
	// DPoP, when set, signs a proof (RFC 9449) for each token request, so
	// that the authorization server binds the tokens it issues to this
	// key; a nonce it asks for is sent in a second request.
	DPoP *DPoPKey
}

// method returns the token endpoint authentication method the client uses:
// the registered one, else private_key_jwt with a key, none without a
// secret, else client_secret_basic or client_secret_post as the
// authorization server lists them (basic first, the default of RFC 8414).
// An authorization server that lists only none gets no secret, even from a
// client that has one. Empty means unknown: try basic, then post.
func (c Client) method() string {
	switch {
	case c.AuthMethod != "":
		return c.AuthMethod
	case c.Key != nil:
		return "private_key_jwt"
	case c.Secret == "":
		return "none"
	case slices.Contains(c.AuthMethods, "client_secret_basic"):
		return "client_secret_basic"
	case slices.Contains(c.AuthMethods, "client_secret_post"):
		return "client_secret_post"
	case slices.Contains(c.AuthMethods, "none"):
		return "none"
	}
	return ""
}

// authStyle picks how x/oauth2 sends the client credentials: in the form
// for a public client, a client assertion or client_secret_post, HTTP Basic
// for client_secret_basic, and both in turn when the method is unknown.
func (c Client) authStyle() oauth2.AuthStyle {
	switch c.method() {
	case "client_secret_basic":
		return oauth2.AuthStyleInHeader
	case "":
		return oauth2.AuthStyleAutoDetect
	}
	return oauth2.AuthStyleInParams
}

// credentials returns the secret to send (none for public clients and
// client assertions) and the parameters that authenticate the client with
// a fresh assertion.
func (c Client) credentials() (secret string, params url.Values, err error) {
	switch c.method() {
	case "none":
		return "", nil, nil
	case "private_key_jwt":
		if c.Key == nil {
			return "", nil, fmt.Errorf("client %s authenticates with private_key_jwt and no key was given", c.ID)
		}
		a, err := c.Key.assertion(c.ID, c.Issuer)
		if err != nil {
			return "", nil, err
		}
		return "", url.Values{"client_assertion_type": {ClientAssertionType}, "client_assertion": {a}}, nil
	}
	return c.Secret, nil, nil
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
	// Resource is the resource indicator (RFC 8707) of the authorization
	// and token requests; empty for none.
	Resource string

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
// and scope and resource when set.
func (l *Login) URL() string {
	cfg := &oauth2.Config{ClientID: l.Client.ID, RedirectURL: l.RedirectURI, Scopes: l.Scopes, Endpoint: oauth2.Endpoint{AuthURL: l.AuthorizeURL}}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(l.Verifier), oauth2.SetAuthURLParam("nonce", l.Nonce)}
	if l.Resource != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", l.Resource))
	}
	return cfg.AuthCodeURL(l.State, opts...)
}

// Exchange trades the code for tokens at TokenURL, sending the PKCE
// verifier (and the resource indicator). A generation-1 server does not
// pass the challenge on to the IdP, and strict IdPs then refuse a verifier;
// on that refusal (and only that one) the exchange is made once more
// without it.
func (l *Login) Exchange(ctx context.Context, hc *http.Client, code string) (*oauth2.Token, error) {
	p := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {l.RedirectURI}, "code_verifier": {l.Verifier}}
	if l.Resource != "" {
		p.Set("resource", l.Resource)
	}
	tok, err := l.Client.request(ctx, hc, l.TokenURL, p)
	if err != nil && !l.NoVerifierFallback && isVerifierRejected(err) {
		p.Del("code_verifier")
		tok, err = l.Client.request(ctx, hc, l.TokenURL, p)
	}
	return checked("exchange the code", l.TokenURL, tok, err)
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

// Refresh uses a refresh token at tokenURL (RFC 6749 section 6), for the
// resource indicator resource when not empty. When the answer carries no
// new refresh token the old one stays valid and is returned in the token.
//
// Cancelling ctx stops the refresh only until the request has been sent:
// after that an IdP that rotates refresh tokens may have spent the old one,
// and losing its answer would lose the login. The request then runs to the
// HTTP client's own timeout, so that the caller can store what comes back.
func Refresh(ctx context.Context, hc *http.Client, tokenURL string, c Client, refreshToken, resource string) (*oauth2.Token, error) {
	ctx, done := committed(ctx)
	defer done()
	p := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if resource != "" {
		p.Set("resource", resource)
	}
	tok, err := c.request(ctx, hc, tokenURL, p)
	return checked("refresh the token", tokenURL, tok, err)
}

// request makes a token request with the client's authentication. It
// builds on x/oauth2's client-credentials token source, which takes any
// grant_type in its parameters.
func (c Client) request(ctx context.Context, hc *http.Client, tokenURL string, params url.Values) (*oauth2.Token, error) {
	secret, auth, err := c.credentials()
	if err != nil {
		return nil, &CredentialsError{ClientID: c.ID, Err: err}
	}
	for k, v := range auth {
		params[k] = v
	}
	if c.DPoP != nil {
		hc = withDPoP(hc, c.DPoP)
	}
	cfg := &clientcredentials.Config{ClientID: c.ID, ClientSecret: secret, TokenURL: tokenURL, EndpointParams: params, AuthStyle: c.authStyle()}
	return cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
}

// checked turns a token request's outcome into a usable token or a
// *TokenError: an answer without an access token, or with a token that is
// not printable ASCII, is refused.
func checked(op, tokenURL string, tok *oauth2.Token, err error) (*oauth2.Token, error) {
	var ce *CredentialsError
	if errors.As(err, &ce) {
		return nil, err // nothing was sent
	}
	if err != nil {
		return nil, tokenError(op, tokenURL, err)
	}
	if tok.AccessToken == "" || !printable(tok.AccessToken) || !printable(tok.RefreshToken) {
		return nil, &TokenError{Op: op, URL: tokenURL, Unusable: true}
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

// CredentialsError reports a client whose credentials could not be used
// (a private_key_jwt client without its key): no request was sent.
type CredentialsError struct {
	ClientID string
	Err      error
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("authenticate client %s: %v", e.ClientID, e.Err)
}

func (e *CredentialsError) Unwrap() error { return e.Err }

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
