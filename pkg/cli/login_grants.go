package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/registration"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// readStdinValue reads one secret value (a token, a client secret) from
// stdin: one line without blanks.
func readStdinValue(r io.Reader, what, example string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return "", failure(fmt.Errorf("read the %s from stdin: %w", what, err), "")
	}
	v := strings.TrimSpace(string(b))
	if v == "" || strings.ContainsAny(v, " \n\t\r") {
		return "", usageErrorf("pipe exactly one "+what+": "+example, "no %s on stdin", what)
	}
	return v, nil
}

// ccClient builds the client of a client-credentials login from the flags:
// --client-id with NCMCP_CLIENT_SECRET, --secret-stdin or --private-key.
func ccClient(opts *LoginOptions, disc *discovery.Result) (oauth.Client, string, error) {
	g := opts.g
	if g.ClientID == "" {
		return oauth.Client{}, "", usageErrorf("pass --client-id (or set NCMCP_CLIENT_ID) with the client's id", "--client-credentials needs a client id")
	}
	c := oauth.Client{ID: g.ClientID, AuthMethods: disc.Provider.TokenEndpointAuthMethodsSupported, Issuer: disc.Provider.Issuer}
	if opts.PrivateKey != "" {
		path, err := filepath.Abs(opts.PrivateKey)
		if err != nil {
			return c, "", failure(err, "")
		}
		k, err := readKeyFile(path)
		if err != nil {
			return c, "", err
		}
		c.Key, c.AuthMethod = k, "private_key_jwt"
		return c, path, nil
	}
	c.Secret = g.deps.Getenv("NCMCP_CLIENT_SECRET")
	if opts.SecretStdin {
		s, err := readStdinValue(g.deps.Stdin, "client secret", "printf %s \"$SECRET\" | ncmcp login --client-credentials --secret-stdin")
		if err != nil {
			return c, "", err
		}
		c.Secret = s
	}
	if c.Secret == "" {
		return c, "", usageErrorf("set NCMCP_CLIENT_SECRET, pipe it with --secret-stdin, or use --private-key FILE", "--client-credentials needs the client's secret or key")
	}
	return c, "", nil
}

// readKeyFile reads the key of --private-key.
func readKeyFile(path string) (*oauth.SigningKey, error) {
	k, err := credential.ReadKeyFile(path)
	var kf *credential.KeyFileError
	switch {
	case errors.As(err, &kf) && kf.Exposed:
		return nil, usageErrorf("chmod 600 "+path, "%v", err)
	case err != nil:
		return nil, usageErrorf("pass the PEM file of the client's private key (PKCS #8, EC or RSA)", "--private-key %v", err)
	}
	return k, nil
}

// loginClientCredentials logs the client itself in (RFC 6749 section 4.4)
// and stores its tokens and credentials, so that 'ncmcp token' gets new
// ones the same way.
func loginClientCredentials(ctx context.Context, opts *LoginOptions, st *store.Store, hc *http.Client, disc *discovery.Result) error {
	g := opts.g
	c, keyFile, err := ccClient(opts, disc)
	if err != nil {
		return err
	}
	scopes, err := loginScopes(g, disc, nil, opts.Scopes)
	if err != nil {
		return err
	}
	tok, err := oauth.ClientCredentials(ctx, hc, disc.Provider.TokenEndpoint, c, scopes, resourceIndicator(disc))
	if err != nil {
		return tokenRefusal(err, "the authorization server refused the client's credentials: check --client-id and the secret or key, and that the client may use the client_credentials grant")
	}
	rec := newLoginRecord(c, nil, tok, scopes)
	rec.grant, rec.keyFile = store.GrantClientCredentials, keyFile
	return storeLogin(ctx, g, st, hc, disc, rec)
}

// loginWithIDToken trades the user's ID token of their identity provider
// for an identity assertion (RFC 8693 token exchange), for the discovered
// authorization server and the MCP server, and redeems it there (RFC 7523)
// as --client-id.
func loginWithIDToken(ctx context.Context, opts *LoginOptions, st *store.Store, hc *http.Client, disc *discovery.Result) error {
	g := opts.g
	if g.ClientID == "" {
		return usageErrorf("pass --client-id (or set NCMCP_CLIENT_ID) with the client the authorization server knows", "--id-token-stdin needs a client id")
	}
	idToken, err := readStdinValue(g.deps.Stdin, "ID token", "ncmcp login --id-token-stdin --idp-token-endpoint URL < id_token")
	if err != nil {
		return err
	}
	c := oauth.Client{ID: g.ClientID, Secret: g.deps.Getenv("NCMCP_CLIENT_SECRET"), AuthMethods: disc.Provider.TokenEndpointAuthMethodsSupported, Issuer: disc.Provider.Issuer}
	resource := resourceIndicator(disc)
	if resource == "" {
		resource = disc.Endpoint
	}
	jag, err := oauth.ExchangeIDToken(ctx, hc, opts.IdPTokenEndpoint, opts.IdPClientID, idToken, disc.Provider.Issuer, resource)
	if err != nil {
		return tokenRefusal(err, "your identity provider refused the ID token: it may have expired, or the provider does not allow access to this server")
	}
	tok, err := oauth.JWTBearer(ctx, hc, disc.Provider.TokenEndpoint, c, jag, opts.Scopes)
	if err != nil {
		return tokenRefusal(err, "the authorization server refused the identity assertion: check --client-id and NCMCP_CLIENT_SECRET")
	}
	rec := newLoginRecord(c, nil, tok, opts.Scopes)
	rec.grant = store.GrantJWTBearer
	return storeLogin(ctx, g, st, hc, disc, rec)
}

// tokenRefusal maps a token endpoint's error: a refusal needs new
// credentials, anything else may pass.
func tokenRefusal(err error, refusedHint string) error {
	var te *oauth.TokenError
	if errors.As(err, &te) && te.Refused() {
		return authNeeded(err, refusedHint)
	}
	return failure(err, "try again when the authorization server answers properly")
}

// loginWithRefreshToken stores a refresh token read from stdin: it is used
// once at the token endpoint, which proves it and yields an access token and
// the identity (ID token, else userinfo).
func loginWithRefreshToken(ctx context.Context, g *globalOptions, st *store.Store, hc *http.Client, disc *discovery.Result, client oauth.Client) error {
	d := g.deps
	rt, err := readStdinValue(d.Stdin, "refresh token", "ncmcp login --with-refresh-token < token.txt")
	if err != nil {
		return err
	}
	tok, err := oauth.Refresh(ctx, hc, disc.Provider.TokenEndpoint, client, rt, resourceIndicator(disc))
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) && te.Refused() {
			if registration.UnknownClient(te.Code, te.Description) {
				return authNeeded(fmt.Errorf("the IdP refused the refresh token: %w", err), "the IdP does not know client "+client.ID+": pass the client the refresh token was issued to with --client-id")
			}
			return authNeeded(fmt.Errorf("the IdP refused the refresh token: %w", err), "get a new refresh token (ncmcp login on a machine with a browser, then copy it), and check --client-id: refresh tokens are bound to their client")
		}
		return failure(err, "")
	}
	return storeLogin(ctx, g, st, hc, disc, newLoginRecord(client, nil, tok, nil))
}

// storeLogin establishes who the tokens of a login without a browser
// belong to (there is no nonce to check), stores the login and prints its
// summary.
func storeLogin(ctx context.Context, g *globalOptions, st *store.Store, hc *http.Client, disc *discovery.Result, rec *loginRecord) error {
	id, err := identifier(disc, rec.client.ID).Identify(ctx, hc, rec.tok, "")
	if err != nil {
		return failure(err, "")
	}
	rec.id = id
	res, err := saveLogin(ctx, g, st, disc, rec)
	if err != nil {
		return err
	}
	printLoginSummary(g.deps.Stderr, g.deps.Now(), disc.ServerURL, res)
	return nil
}
