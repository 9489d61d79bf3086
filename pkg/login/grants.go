package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ncmcp/ncmcp/pkg/clients"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
	"golang.org/x/oauth2"
)

// Party names who answered a token request.
type Party int

const (
	// AuthorizationServer is the server's authorization server.
	AuthorizationServer Party = iota
	// IdentityProvider is the user's own identity provider, in an ID token
	// exchange.
	IdentityProvider
)

// GrantError reports a token request of a login without a browser that
// failed; Err is usually an *oauth.TokenError.
type GrantError struct {
	Party Party
	Err   error
}

func (e *GrantError) Error() string { return e.Err.Error() }
func (e *GrantError) Unwrap() error { return e.Err }

// ClientCredentials logs the client itself in (RFC 6749 section 4.4) and
// stores its tokens and credentials (a secret, or the path of its private
// key file), so that the credential source gets new tokens the same way.
func (f *Flow) ClientCredentials(ctx context.Context, disc *discovery.Result, c oauth.Client, scopes []string, keyFile string) (*Result, error) {
	c, err := withDPoP(disc, c)
	if err != nil {
		return nil, err
	}
	tok, err := oauth.ClientCredentials(ctx, f.HTTP, disc.Provider.TokenEndpoint, c, scopes, disc.ResourceIndicator())
	if err != nil {
		return nil, &GrantError{Party: AuthorizationServer, Err: err}
	}
	return f.Complete(ctx, disc, &Record{Client: c, Token: tok, Requested: scopes, Grant: store.GrantClientCredentials, KeyFile: keyFile})
}

// IDToken trades the user's ID token of their identity provider for an
// identity assertion (RFC 8693 token exchange at idpTokenEndpoint) for the
// discovered authorization server and the MCP server, redeems it there
// (RFC 7523) as client c, and stores the login.
func (f *Flow) IDToken(ctx context.Context, disc *discovery.Result, c oauth.Client, idToken, idpTokenEndpoint, idpClientID string, scopes []string) (*Result, error) {
	resource := disc.ResourceIndicator()
	if resource == "" {
		resource = disc.Endpoint
	}
	jag, err := oauth.ExchangeIDToken(ctx, f.HTTP, idpTokenEndpoint, idpClientID, idToken, disc.Provider.Issuer, resource)
	if err != nil {
		return nil, &GrantError{Party: IdentityProvider, Err: err}
	}
	if c, err = withDPoP(disc, c); err != nil {
		return nil, err
	}
	tok, err := oauth.JWTBearer(ctx, f.HTTP, disc.Provider.TokenEndpoint, c, jag, scopes)
	if err != nil {
		return nil, &GrantError{Party: AuthorizationServer, Err: err}
	}
	return f.Complete(ctx, disc, &Record{Client: c, Token: tok, Requested: scopes, Grant: store.GrantJWTBearer})
}

// WorkloadJWT is a workload's own JWT, to log in with.
type WorkloadJWT struct {
	// Assertion is the JWT.
	Assertion string
	// File is the absolute path it was read from, and is read again from
	// to renew the tokens; empty when it came on stdin.
	File string
	// Claims are the JWT's claims, for Result.Assertion; nil: not known.
	Claims *oauth.Assertion
}

// Workload logs a workload in with its own JWT (workload identity
// federation, RFC 7523): the JWT is exchanged once at the discovered
// authorization server, as client c (which may have no id: the grant needs
// no client; keyFile is its private key file, if any), and the login is
// stored with the JWT's file, from which the credential source reads it
// again to renew the tokens. The JWT itself is never stored.
func (f *Flow) Workload(ctx context.Context, disc *discovery.Result, c oauth.Client, keyFile string, jwt WorkloadJWT, scopes []string) (*Result, error) {
	c, err := withDPoP(disc, c)
	if err != nil {
		return nil, err
	}
	tok, err := oauth.WorkloadJWTBearer(ctx, f.HTTP, disc.Provider.TokenEndpoint, c, jwt.Assertion, scopes, disc.ResourceIndicator())
	if err != nil {
		return nil, &GrantError{Party: AuthorizationServer, Err: err}
	}
	// The account records where the JWT is read again; a login without a
	// client keeps no client (store.SaveLogin).
	res, err := f.Complete(ctx, disc, &Record{Client: c, Token: tok, Requested: scopes, Grant: store.GrantWorkloadIdentity, KeyFile: keyFile, AssertionFile: jwt.File})
	if err != nil {
		return nil, err
	}
	res.Assertion = jwt.Claims
	return res, nil
}

// RefreshToken stores a refresh token given by the user: it is used once
// at the token endpoint, which proves it and yields an access token and
// the identity.
func (f *Flow) RefreshToken(ctx context.Context, disc *discovery.Result, c oauth.Client, rt string) (*Result, error) {
	c, err := withDPoP(disc, c)
	if err != nil {
		return nil, err
	}
	tok, err := oauth.Refresh(ctx, f.HTTP, disc.Provider.TokenEndpoint, c, rt, disc.ResourceIndicator())
	if err != nil {
		return nil, &GrantError{Party: AuthorizationServer, Err: err}
	}
	return f.Complete(ctx, disc, &Record{Client: c, Token: tok})
}

// EnvRefreshTokenHash identifies a refresh token given in the environment
// (NCMCP_REFRESH_TOKEN) without storing it: its SHA-256, in hex.
func EnvRefreshTokenHash(rt string) string {
	sum := sha256.Sum256([]byte(rt))
	return hex.EncodeToString(sum[:])
}

// EnvRefreshToken refreshes a refresh token given in the environment, in
// memory. With keep set, the result is stored as a login marked with
// EnvRefreshTokenHash(rt), so that later runs with the same variable use
// the stored, possibly rotated, tokens; the stored login is returned too.
//
// It uses no DPoP key: its tokens are for 'ncmcp token' in CI, which
// prints bearer tokens only.
func (f *Flow) EnvRefreshToken(ctx context.Context, disc *discovery.Result, c oauth.Client, rt string, keep bool) (*oauth2.Token, *Result, error) {
	tok, err := oauth.Refresh(ctx, f.HTTP, disc.Provider.TokenEndpoint, c, rt, disc.ResourceIndicator())
	if err != nil {
		return nil, nil, &GrantError{Party: AuthorizationServer, Err: err}
	}
	tok.Expiry = oauth.Expiry(tok)
	if !keep {
		return tok, nil, nil
	}
	res, err := f.Complete(ctx, disc, &Record{Client: c, Token: tok, EnvRefreshTokenHash: EnvRefreshTokenHash(rt)})
	if err != nil {
		return nil, nil, err
	}
	return tok, res, nil
}

// ClientRequest says which client a browser login should use.
type ClientRequest struct {
	// ID is the client id asked for; empty: pick one.
	ID string
	// MetadataURL is the URL of a client ID metadata document, used as
	// client id where the authorization server takes one.
	MetadataURL string
	// Account names the account whose client is preferred.
	Account string
	// Secret is the client's secret when given from outside storage.
	Secret string
}

// Client is the OAuth client Pick chose.
type Client struct {
	oauth.Client
	// Port is the loopback port the client's registration fixes (0: any).
	Port int
	// Registered is set when Pick registered the client now.
	Registered *clients.Registered
}

// NoClientError reports a server for which no OAuth client is known and
// none can be registered.
type NoClientError struct {
	Server string
	// MetadataDocuments is set when the authorization server takes client
	// ID metadata documents.
	MetadataDocuments bool
}

func (e *NoClientError) Error() string {
	return fmt.Sprintf("no OAuth client is known for %s", e.Server)
}

// SecretExpiredError reports a registered client whose secret expired.
type SecretExpiredError struct {
	ClientID string
	At       time.Time
}

func (e *SecretExpiredError) Error() string {
	return fmt.Sprintf("the secret of client %s expired at %s", e.ClientID, e.At.Local().Format(time.RFC3339))
}

// Pick chooses the OAuth client of a browser login: the requested id, else
// the client ID metadata document URL where the authorization server takes
// one, else the account's or the server's stored client, else one
// registered now when the authorization server offers registration. The
// secret is the requested one or the stored one.
func (f *Flow) Pick(ctx context.Context, disc *discovery.Result, req ClientRequest) (*Client, error) {
	cfg, err := store.LoadConfig(f.Store.Dir)
	if err != nil {
		return nil, err
	}
	known := cfg.Servers[disc.ServerURL]
	out := &Client{Client: oauth.Client{ID: req.ID, AuthMethods: disc.Provider.TokenEndpointAuthMethodsSupported, Issuer: disc.Provider.Issuer}}
	if out.ID == "" && req.MetadataURL != "" && disc.Provider.ClientIDMetadataDocumentSupported {
		// The document names no secret: the client is public.
		out.Client = oauth.Client{ID: req.MetadataURL, AuthMethod: "none", Issuer: disc.Provider.Issuer}
		return out, nil
	}
	if out.ID == "" && known != nil {
		if a := known.FindAccount(req.Account); a != nil && a.ClientID != "" && known.Client(a.ClientID) != nil && !known.Client(a.ClientID).MetadataDocument {
			out.ID = a.ClientID
		} else if n := len(known.Clients); n > 0 && !known.Clients[n-1].MetadataDocument {
			out.ID = known.Clients[n-1].ID
		}
	}
	if out.ID == "" {
		if disc.Provider.RegistrationEndpoint == "" || f.Clients == nil {
			return nil, &NoClientError{Server: disc.ServerURL, MetadataDocuments: disc.Provider.ClientIDMetadataDocumentSupported}
		}
		f.notice("No client is stored for %s: registering one at %s.", disc.ServerURL, disc.Provider.RegistrationEndpoint)
		reg, err := f.Clients.Register(ctx, disc, 0)
		if err != nil {
			return nil, err
		}
		if known == nil {
			known = &store.Server{URL: disc.ServerURL}
		}
		known.PutClient(reg.Client)
		out.ID, out.Registered = reg.Client.ID, reg
	}
	out.Secret = req.Secret
	sc := (*store.Client)(nil)
	if known != nil {
		sc = known.Client(out.ID)
	}
	if sc == nil {
		return out, nil
	}
	out.Port, out.AuthMethod = sc.RedirectPort, sc.AuthMethod
	if !sc.SecretExpiresAt.IsZero() && !f.now().Before(sc.SecretExpiresAt) {
		return nil, &SecretExpiredError{ClientID: out.ID, At: sc.SecretExpiresAt}
	}
	if out.Secret == "" && sc.Confidential {
		if out.Secret, err = f.Store.ClientSecret(disc.ServerURL, sc); err != nil {
			return nil, err
		}
	}
	return out, nil
}
