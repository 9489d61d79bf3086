// Package login logs an account in to an MCP server and stores the login:
// the browser's authorization code flow, the client's own credentials, an
// ID token traded for an identity assertion, or a refresh token given. It
// prints nothing: notices go to Flow.Notice, failures are typed errors.
package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/ncmcp/ncmcp/pkg/clients"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
	"golang.org/x/oauth2"
)

// Flow runs logins against one store.
type Flow struct {
	Store *store.Store
	HTTP  *http.Client
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Notice receives progress worth telling the user; nil drops it.
	Notice func(string)
	// Clients registers a client when none is known.
	Clients *clients.Manager
}

func (f *Flow) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Flow) notice(format string, args ...any) {
	if f.Notice != nil {
		f.Notice(fmt.Sprintf(format, args...))
	}
}

// Record is what a login obtained, before it is stored.
type Record struct {
	Client oauth.Client
	// Identity is who logged in; nil: established by Complete.
	Identity *oauth.Identity
	Token    *oauth2.Token
	// Requested are the scopes the request asked for: a token response
	// without a scope parameter grants exactly those (RFC 6749 section 5.1).
	Requested []string
	// EnvRefreshTokenHash identifies the NCMCP_REFRESH_TOKEN the login came
	// from (see EnvRefreshTokenHash).
	EnvRefreshTokenHash string
	// Grant is the account's store.Grant*.
	Grant string
	// KeyFile is the private key file of a private_key_jwt client.
	KeyFile string
	// AssertionFile is the file a workload's JWT is read again from to
	// renew the tokens (store.Account.AssertionFile).
	AssertionFile string
}

// Result is a stored login.
type Result struct {
	Server string
	// Subject is the account's key.
	Subject    string
	Identity   *oauth.Identity
	Token      *oauth2.Token
	Scopes     []string
	Saved      store.Saved
	ClientID   string
	Generation int
	Grant      string
	// AssertionFile and Assertion are, for a workload identity login, the
	// file its JWT is read again from (empty: it came on stdin) and the
	// JWT's claims (nil: not known).
	AssertionFile string
	Assertion     *oauth.Assertion
}

// IdentityError reports an ID token or identity answer that does not hold
// for the login; nothing was stored.
type IdentityError struct{ Err error }

func (e *IdentityError) Error() string { return e.Err.Error() }
func (e *IdentityError) Unwrap() error { return e.Err }

// Complete establishes who a login's tokens belong to, unless the record
// says so already (a login without a browser has no nonce to check), and
// stores the login.
func (f *Flow) Complete(ctx context.Context, disc *discovery.Result, rec *Record) (*Result, error) {
	if rec.Identity == nil {
		id, err := Identifier(disc, rec.Client.ID).Identify(ctx, f.HTTP, rec.Token, "")
		if err != nil {
			return nil, &IdentityError{Err: err}
		}
		rec.Identity = id
	}
	return f.save(ctx, disc, rec)
}

// save stores a login: secrets first, then the config, under the store
// lock. On failure nothing stays stored.
func (f *Flow) save(ctx context.Context, disc *discovery.Result, rec *Record) (*Result, error) {
	tok, id, client := rec.Token, rec.Identity, rec.Client
	tok.Expiry = oauth.Expiry(tok)
	res := &Result{Server: disc.ServerURL, Identity: id, Token: tok, Scopes: oauth.Scopes(tok), ClientID: client.ID, Generation: disc.Generation, Grant: rec.Grant, AssertionFile: rec.AssertionFile}
	if res.Scopes == nil && len(rec.Requested) > 0 {
		res.Scopes = slices.Clone(rec.Requested)
	}
	res.Subject = id.Subject
	if res.Subject == "" {
		res.Subject = store.UnknownSubject(client.ID)
	}
	tokens := store.Tokens{AccessToken: tok.AccessToken, TokenType: tok.Type(), RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if client.DPoP != nil {
		// Kept whatever the token type: a public client's refresh token
		// is bound to the key too (RFC 9449 section 5).
		k, err := client.DPoP.Marshal()
		if err != nil {
			return nil, err
		}
		tokens.DPoPKey = k
	}
	saved, err := f.Store.SaveLogin(ctx, &store.Login{
		Server: clients.ServerMeta(disc),
		Account: store.Account{
			Subject: res.Subject, Username: id.Username, Email: id.Email, Name: id.Name,
			ClientID: client.ID, Scopes: res.Scopes, AccessTokenExpiry: tok.Expiry,
			HasRefreshToken: tok.RefreshToken != "", LoggedInAt: f.now().UTC(), EnvRefreshTokenHash: rec.EnvRefreshTokenHash,
			Identity: string(id.Source), IdentityOverTLS: id.OverTLS, Grant: rec.Grant,
			AssertionFile: rec.AssertionFile,
		},
		Tokens:       tokens,
		Client:       store.Client{ID: client.ID, AuthMethod: client.AuthMethod, KeyFile: rec.KeyFile},
		ClientSecret: client.Secret,
	})
	if err != nil {
		return nil, err
	}
	res.Saved = *saved
	return res, nil
}

// withDPoP gives the client a new DPoP key (RFC 9449) where the
// authorization server offers DPoP with an algorithm ncmcp signs with
// (ES256 unless it lists only others): its token requests then carry
// proofs, and the login stores the key with the tokens.
func withDPoP(disc *discovery.Result, c oauth.Client) (oauth.Client, error) {
	alg := oauth.DPoPAlg(disc.Provider.DPoPSigningAlgValuesSupported)
	if alg == "" || c.DPoP != nil {
		return c, nil
	}
	k, err := oauth.NewDPoPKey(alg)
	if err != nil {
		return c, err
	}
	c.DPoP = k
	return c, nil
}

// Identifier establishes identities for logins at the discovered server.
func Identifier(disc *discovery.Result, clientID string) *oauth.Identifier {
	p := disc.Provider
	return &oauth.Identifier{Issuer: p.Issuer, JWKSURI: p.JWKSURI, ClientID: clientID, Algs: p.IDTokenSigningAlgValuesSupported,
		UserinfoEndpoint: p.UserinfoEndpoint, TokenEndpoint: p.TokenEndpoint}
}

// ErrScopesFixed reports scopes asked of a generation-1 server, whose
// configuration decides them.
var ErrScopesFixed = errors.New("a generation-1 server does not take scopes from the client")

// Scopes returns the scopes of an authorization request: none for a
// generation-1 server (its configuration decides them), else the scopes
// the MCP authorization specification selects (challenged, the server's
// challenge, its metadata's scopes_supported) and the extra ones asked
// for, in the authorization server's spelling (each respelling noticed).
func (f *Flow) Scopes(disc *discovery.Result, challenged, extra []string) ([]string, error) {
	if disc.Generation == discovery.Generation1 {
		if len(extra) > 0 {
			return nil, ErrScopesFixed
		}
		return nil, nil
	}
	scopes := disc.Scopes(challenged)
	if len(extra) > 0 {
		matched, notes := oauth.MatchScopes(extra, disc.Provider.ScopesSupported)
		for _, n := range notes {
			f.notice("note: asking for %s, as the server spells it", n)
		}
		for _, s := range matched {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	return scopes, nil
}
