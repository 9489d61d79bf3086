// Package credential gives an account's access token: the stored one while
// it is valid, else a new one from its refresh token (or, for a
// client-credentials login, from the client's credentials; for a workload
// identity login, from the workload's JWT read again from its file),
// stored before it is returned, under the lock that all ncmcp processes
// share.
package credential

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/registration"
	"github.com/ncmcp/ncmcp/pkg/store"
	"golang.org/x/oauth2"
)

// DefaultLockWait bounds how long a refresh waits for another process's.
const DefaultLockWait = 60 * time.Second

// Source gives the access tokens of one account.
type Source struct {
	Store *store.Store
	HTTP  *http.Client
	// Server is the server's key, Subject the account's.
	Server, Subject string
	// ClientSecret, when set, is the client's secret instead of the stored
	// one (NCMCP_CLIENT_SECRET).
	ClientSecret string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Warn reports what went wrong without failing (nil: dropped).
	Warn func(string)
	// LockWait bounds the wait for another process's refresh
	// (DefaultLockWait when zero).
	LockWait time.Duration
}

// Token is an access token with the scopes the account was granted.
type Token struct {
	store.Tokens
	Scopes []string
}

// Reason says why only a new login gives a token.
type Reason int

// Reasons of a LoginRequiredError.
const (
	// LoggedOut: the account is gone (logged out meanwhile).
	LoggedOut Reason = iota
	// TokensMissing: the account's tokens are not in its storage.
	TokensMissing
	// NoRefreshToken: the access token expired and nothing renews it.
	NoRefreshToken
	// RefreshRefused: the authorization server refused the refresh token.
	RefreshRefused
	// CredentialsRefused: it refused the client's credentials.
	CredentialsRefused
	// AssertionRefused: it refused the workload's JWT read from the
	// account's file (workload identity).
	AssertionRefused
	// AssertionFromStdin: the access token expired and the workload's JWT
	// it was obtained with came on stdin, which cannot be read again.
	AssertionFromStdin
)

// LoginRequiredError reports that only a new login gives a token.
type LoginRequiredError struct {
	Reason  Reason
	Server  string
	Subject string
	// Account is the account as stored (nil when LoggedOut), Generation
	// the server's.
	Account    *store.Account
	Generation int
	// Expiry is the access token's (NoRefreshToken, AssertionFromStdin);
	// Storage the backend that misses the tokens (TokensMissing).
	Expiry  time.Time
	Storage string
	// File is the file of the workload's JWT (AssertionRefused).
	File string
	// Err is the authorization server's refusal.
	Err error
}

func (e *LoginRequiredError) Error() string {
	switch e.Reason {
	case LoggedOut:
		return fmt.Sprintf("%s was logged out of %s meanwhile", e.Subject, e.Server)
	case TokensMissing:
		return fmt.Sprintf("the tokens of %s on %s are missing from the %s storage", e.Subject, e.Server, e.Storage)
	case NoRefreshToken:
		return fmt.Sprintf("the access token of %s expires at %s and there is no refresh token", e.Subject, e.Expiry.Local().Format(time.RFC3339))
	case CredentialsRefused:
		return fmt.Sprintf("the authorization server refused the client's credentials: %v", e.Err)
	case AssertionRefused:
		return fmt.Sprintf("the authorization server refused the workload's JWT in %s: %v", e.File, e.Err)
	case AssertionFromStdin:
		return fmt.Sprintf("the access token of %s expires at %s, and the workload's JWT it was obtained with came on stdin, which ncmcp cannot read again: log in again with the platform's current JWT", e.Subject, e.Expiry.Local().Format(time.RFC3339))
	}
	return fmt.Sprintf("the IdP refused the refresh token: %v", e.Err)
}

func (e *LoginRequiredError) Unwrap() error { return e.Err }

// ClientGoneError is a refresh refused because the authorization server
// does not know the client ("Unknown client_id", invalid_client):
// generation-2 servers forget dynamic registrations when they restart.
type ClientGoneError struct {
	Server, ClientID string
	Err              error
}

func (e *ClientGoneError) Error() string {
	return fmt.Sprintf("the refresh was refused because client %s is unknown: %v", e.ClientID, e.Err)
}

func (e *ClientGoneError) Unwrap() error { return e.Err }

// StoreError reports new tokens that could not be stored: if the
// authorization server rotates refresh tokens, the login is lost.
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return fmt.Sprintf("store the refreshed tokens: %v", e.Err) }
func (e *StoreError) Unwrap() error { return e.Err }

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Source) warn(msg string) {
	if s.Warn != nil {
		s.Warn(msg)
	}
}

// Valid reports whether t is still valid minTTL from now. An unknown
// expiry counts as valid: the authorization server did not say.
func Valid(t *store.Tokens, now time.Time, minTTL time.Duration) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.Sub(now) > minTTL)
}

// Stored reads an account's stored tokens.
func (s *Source) Stored(srv *store.Server, acct *store.Account) (*store.Tokens, error) {
	tok, err := s.Store.GetTokens(acct.Storage, srv.URL, acct.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &LoginRequiredError{Reason: TokensMissing, Server: srv.URL, Subject: acct.Subject, Account: acct, Generation: srv.Generation, Storage: acct.Storage}
	}
	return tok, err
}

// Token returns a token valid for minTTL more: the stored one, else a new
// one (see Refresh).
func (s *Source) Token(ctx context.Context, minTTL time.Duration) (*Token, error) {
	_, _, acct, tok, err := s.load()
	if err != nil {
		return nil, err
	}
	if Valid(tok, s.now(), minTTL) {
		return &Token{Tokens: *tok, Scopes: acct.Scopes}, nil
	}
	return s.Refresh(ctx, minTTL, "")
}

// Current returns the account's stored token as it is, without renewing
// it.
func (s *Source) Current() (*Token, error) {
	_, _, acct, tok, err := s.load()
	if err != nil {
		return nil, err
	}
	return &Token{Tokens: *tok, Scopes: acct.Scopes}, nil
}

// load reads the config, the account and its stored tokens.
func (s *Source) load() (*store.Config, *store.Server, *store.Account, *store.Tokens, error) {
	cfg, err := store.LoadConfig(s.Store.Dir)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	srv := cfg.Servers[s.Server]
	var acct *store.Account
	if srv != nil {
		acct = srv.Accounts[s.Subject]
	}
	if acct == nil {
		return nil, nil, nil, nil, &LoginRequiredError{Reason: LoggedOut, Server: s.Server, Subject: s.Subject}
	}
	tok, err := s.Stored(srv, acct)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return cfg, srv, acct, tok, nil
}

// Refresh gets the account a new token under the store lock. It re-reads
// the config and the tokens after taking the lock, so that of several
// processes only the first refreshes and the others use its result. A
// stored access token equal to refused (one the server refused) counts as
// expired. The new tokens are stored before they are returned.
//
// Tokens of a client-credentials login are renewed with the client's
// credentials; those of a workload identity login by reading the
// workload's JWT from its file again and exchanging it, once (a refused
// JWT is neither sent again nor replaced by another grant); others with
// the refresh token.
func (s *Source) Refresh(ctx context.Context, minTTL time.Duration, refused string) (*Token, error) {
	wait := s.LockWait
	if wait == 0 {
		wait = DefaultLockWait
	}
	lctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	unlock, err := s.Store.Lock(lctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	cfg, srv, acct, tok, err := s.load()
	if err != nil {
		return nil, err
	}
	if Valid(tok, s.now(), minTTL) && (refused == "" || tok.AccessToken != refused) {
		return &Token{Tokens: *tok, Scopes: acct.Scopes}, nil // another process refreshed while we waited
	}
	if tok.RefreshToken == "" && acct.Grant != store.GrantClientCredentials && acct.Grant != store.GrantWorkloadIdentity {
		// Nothing renews it: said before the client's secret (a keyring
		// read) and the DPoP key are read for nothing.
		return nil, &LoginRequiredError{Reason: NoRefreshToken, Server: srv.URL, Subject: acct.Subject, Account: acct, Generation: srv.Generation, Expiry: tok.Expiry}
	}
	client, err := s.Client(srv, acct.ClientID)
	if err != nil {
		return nil, err
	}
	if client.DPoP, err = DPoPKey(tok); err != nil {
		return nil, err
	}
	var fresh *oauth2.Token
	switch {
	case acct.Grant == store.GrantWorkloadIdentity:
		fresh, err = s.renewWorkload(ctx, srv, acct, tok, client)
	case tok.RefreshToken != "":
		fresh, err = oauth.Refresh(ctx, s.HTTP, srv.TokenEndpoint, client, tok.RefreshToken, srv.Resource)
	default: // client credentials
		fresh, err = oauth.ClientCredentials(ctx, s.HTTP, srv.TokenEndpoint, client, acct.Scopes, srv.Resource)
	}
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) && te.Refused() {
			workload := acct.Grant == store.GrantWorkloadIdentity
			if !workload && registration.UnknownClient(te.Code, te.Description) {
				return nil, &ClientGoneError{Server: srv.URL, ClientID: acct.ClientID, Err: err}
			}
			e := &LoginRequiredError{Reason: RefreshRefused, Server: srv.URL, Subject: acct.Subject, Account: acct, Generation: srv.Generation, Err: err}
			switch {
			case workload:
				e.Reason, e.File = AssertionRefused, acct.AssertionFile
			case tok.RefreshToken == "":
				e.Reason = CredentialsRefused
			}
			return nil, e
		}
		return nil, err
	}
	return s.keep(cfg, srv, acct, tok, fresh)
}

// keep stores the tokens of a renewal and the account's new expiry and
// scopes.
func (s *Source) keep(cfg *store.Config, srv *store.Server, acct *store.Account, tok *store.Tokens, fresh *oauth2.Token) (*Token, error) {
	next := store.Tokens{AccessToken: fresh.AccessToken, TokenType: fresh.Type(), RefreshToken: fresh.RefreshToken, Expiry: oauth.Expiry(fresh), DPoPKey: tok.DPoPKey}
	if next.RefreshToken == "" {
		next.RefreshToken = tok.RefreshToken
	}
	if err := s.Store.PutTokensIn(acct.Storage, srv.URL, acct.Subject, &next); err != nil {
		return nil, &StoreError{Err: err}
	}
	acct.AccessTokenExpiry = next.Expiry
	acct.HasRefreshToken = next.RefreshToken != ""
	if sc := oauth.Scopes(fresh); sc != nil {
		acct.Scopes = sc
	}
	if err := store.SaveConfig(s.Store.Dir, cfg); err != nil {
		s.warn(fmt.Sprintf("could not update the config after refreshing: %v", err))
	}
	return &Token{Tokens: next, Scopes: acct.Scopes}, nil
}

// renewWorkload renews the tokens of a workload identity login: the JWT
// is read again from the account's file, where the platform keeps a
// current one, and exchanged once. Refresh handles a refusal.
func (s *Source) renewWorkload(ctx context.Context, srv *store.Server, acct *store.Account, tok *store.Tokens, client oauth.Client) (*oauth2.Token, error) {
	if acct.AssertionFile == "" {
		return nil, &LoginRequiredError{Reason: AssertionFromStdin, Server: srv.URL, Subject: acct.Subject, Account: acct, Generation: srv.Generation, Expiry: tok.Expiry}
	}
	assertion, err := ReadAssertionFile(acct.AssertionFile)
	if err != nil {
		return nil, err
	}
	if acct.ClientID == "" {
		client = oauth.Client{AuthMethod: "none", DPoP: client.DPoP} // no client: nothing to authenticate
	}
	return oauth.WorkloadJWTBearer(ctx, s.HTTP, srv.TokenEndpoint, client, assertion, acct.Scopes, srv.Resource)
}

// DPoPKey returns the account's DPoP key kept with its tokens; nil when it
// has none.
func DPoPKey(t *store.Tokens) (*oauth.DPoPKey, error) {
	if t.DPoPKey == "" {
		return nil, nil
	}
	k, err := oauth.ParseDPoPKey(t.DPoPKey)
	if err != nil {
		return nil, fmt.Errorf("%w: log in again", err)
	}
	return k, nil
}

// AssertionFileError reports a file that does not hold a workload's JWT.
// It never quotes the file's content.
type AssertionFileError struct {
	Path string
	// Empty is set for an empty file; NotJWT for one that holds something
	// else than a JWT.
	Empty, NotJWT bool
	Err           error
}

func (e *AssertionFileError) Error() string {
	switch {
	case e.Empty:
		return fmt.Sprintf("the JWT file %s is empty", e.Path)
	case e.NotJWT:
		return fmt.Sprintf("the JWT file %s does not hold a JWT (three base64url parts separated by dots)", e.Path)
	}
	return fmt.Sprintf("read the JWT file: %v", e.Err)
}

func (e *AssertionFileError) Unwrap() error { return e.Err }

// maxAssertionFile bounds what is read of a JWT file: workload tokens are
// a few kilobytes.
const maxAssertionFile = 64 << 10

// ReadAssertionFile reads a workload's JWT from a file, such as a
// Kubernetes service account token (which is readable by other users, as
// the platform mounts it) or a CI job's OIDC token written to a file. The
// JWT is checked for shape only: the authorization server verifies it.
func ReadAssertionFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", &AssertionFileError{Path: path, Err: err}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAssertionFile+1))
	if err != nil {
		return "", &AssertionFileError{Path: path, Err: err}
	}
	v := strings.TrimSpace(string(b))
	switch {
	case v == "":
		return "", &AssertionFileError{Path: path, Empty: true}
	case len(b) > maxAssertionFile || strings.ContainsAny(v, " \t\r\n"):
		return "", &AssertionFileError{Path: path, NotJWT: true}
	}
	if _, err := oauth.ParseAssertion(v); err != nil {
		return "", &AssertionFileError{Path: path, NotJWT: true, Err: err}
	}
	return v, nil
}

// Client returns the OAuth client of an account as stored: its secret
// from ClientSecret or storage, its private key from its key file.
func (s *Source) Client(srv *store.Server, id string) (oauth.Client, error) {
	c := oauth.Client{ID: id, Secret: s.ClientSecret, AuthMethods: srv.TokenAuthMethods, Issuer: srv.Issuer}
	sc := srv.Client(id)
	if sc == nil {
		return c, nil
	}
	c.AuthMethod = sc.AuthMethod
	if sc.KeyFile != "" {
		k, err := ReadKeyFile(sc.KeyFile)
		if err != nil {
			return c, err
		}
		c.Key = k
	}
	if c.Secret == "" && sc.Confidential {
		secret, err := s.Store.ClientSecret(srv.URL, sc)
		if err != nil {
			return c, err
		}
		c.Secret = secret
	}
	return c, nil
}

// KeyFileError reports a private_key_jwt key file that cannot be used.
type KeyFileError struct {
	Path string
	// Exposed is set for a file that other users can read.
	Exposed bool
	Err     error
}

func (e *KeyFileError) Error() string {
	if e.Exposed {
		return fmt.Sprintf("the private key %s is readable by other users", e.Path)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *KeyFileError) Unwrap() error { return e.Err }

// ReadKeyFile reads a private_key_jwt key, which must be readable by its
// owner only.
func ReadKeyFile(path string) (*oauth.SigningKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Err: err}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, &KeyFileError{Path: path, Exposed: true}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Err: err}
	}
	k, err := oauth.ParseSigningKey(b, "")
	if err != nil {
		return nil, &KeyFileError{Path: path, Err: err}
	}
	return k, nil
}

// TokenSource adapts the source to x/oauth2: each Token is valid for
// minTTL more.
func (s *Source) TokenSource(ctx context.Context, minTTL time.Duration) oauth2.TokenSource {
	return tokenSource{ctx: ctx, s: s, minTTL: minTTL}
}

type tokenSource struct {
	ctx    context.Context
	s      *Source
	minTTL time.Duration
}

func (t tokenSource) Token() (*oauth2.Token, error) {
	tok, err := t.s.Token(t.ctx, t.minTTL)
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}, nil
}
