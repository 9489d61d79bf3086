package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
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
	if opts.g.ClientID == "" {
		return oauth.Client{}, "", usageErrorf("pass --client-id (or set NCMCP_CLIENT_ID) with the client's id", "--client-credentials needs a client id")
	}
	c, keyFile, err := namedClientAuth(opts, disc, "printf %s \"$SECRET\" | ncmcp login --client-credentials --secret-stdin")
	if err != nil || keyFile != "" {
		return c, keyFile, err
	}
	if c.Secret == "" {
		return c, "", usageErrorf("set NCMCP_CLIENT_SECRET, pipe it with --secret-stdin, or use --private-key FILE", "--client-credentials needs the client's secret or key")
	}
	return c, "", nil
}

// namedClientAuth builds the client --client-id names, authenticated as
// the flags say: with the key of --private-key (whose absolute path it
// returns too), the secret piped with --secret-stdin (secretExample shows
// how), or NCMCP_CLIENT_SECRET.
func namedClientAuth(opts *LoginOptions, disc *discovery.Result, secretExample string) (oauth.Client, string, error) {
	g := opts.g
	c := g.namedClient(disc)
	if opts.PrivateKey != "" {
		c.Secret = ""
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
	if opts.SecretStdin {
		s, err := readStdinValue(g.deps.Stdin, "client secret", secretExample)
		if err != nil {
			return c, "", err
		}
		c.Secret = s
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
func loginClientCredentials(ctx context.Context, opts *LoginOptions, st *store.Store, disc *discovery.Result) (*login.Result, error) {
	c, keyFile, err := ccClient(opts, disc)
	if err != nil {
		return nil, err
	}
	scopes, err := loginScopes(opts.g, st, disc, nil, opts.Scopes)
	if err != nil {
		return nil, err
	}
	res, err := opts.g.loginFlow(st).ClientCredentials(ctx, disc, c, scopes, keyFile)
	return res, grantError(err, st, "the authorization server refused the client's credentials: check --client-id and the secret or key, and that the client may use the client_credentials grant")
}

// loginWithIDToken trades the user's ID token of their identity provider
// for access as --client-id (enterprise-managed authorization).
func loginWithIDToken(ctx context.Context, opts *LoginOptions, st *store.Store, disc *discovery.Result) (*login.Result, error) {
	g := opts.g
	if g.ClientID == "" {
		return nil, usageErrorf("pass --client-id (or set NCMCP_CLIENT_ID) with the client the authorization server knows", "--id-token-stdin needs a client id")
	}
	idToken, err := readStdinValue(g.deps.Stdin, "ID token", "ncmcp login --id-token-stdin --idp-token-endpoint URL < id_token")
	if err != nil {
		return nil, err
	}
	c := g.namedClient(disc)
	res, err := g.loginFlow(st).IDToken(ctx, disc, c, idToken, opts.IdPTokenEndpoint, opts.IdPClientID, opts.Scopes)
	var ge *login.GrantError
	if errors.As(err, &ge) && ge.Party == login.IdentityProvider {
		return nil, grantError(err, st, "your identity provider refused the ID token: it may have expired, or the provider does not allow access to this server")
	}
	return res, grantError(err, st, "the authorization server refused the identity assertion: check --client-id and NCMCP_CLIENT_SECRET")
}

// loginWithRefreshToken stores a refresh token read from stdin, which is
// proven by using it once.
func loginWithRefreshToken(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result, client *login.Client) (*login.Result, error) {
	rt, err := readStdinValue(g.deps.Stdin, "refresh token", "ncmcp login --with-refresh-token < token.txt")
	if err != nil {
		return nil, err
	}
	res, err := g.loginFlow(st).RefreshToken(ctx, disc, client.Client, rt)
	var te *oauth.TokenError
	if errors.As(err, &te) && te.Refused() {
		err = fmt.Errorf("the IdP refused the refresh token: %w", err)
		if registration.UnknownClient(te.Code, te.Description) {
			return nil, authNeeded(err, "the IdP does not know client "+client.ID+": pass the client the refresh token was issued to with --client-id")
		}
		return nil, authNeeded(err, "get a new refresh token (ncmcp login on a machine with a browser, then copy it), and check --client-id: refresh tokens are bound to their client")
	}
	return res, grantError(err, st, "")
}

// grantError maps the errors of a login without a browser: a refusal
// needs new credentials (refusedHint), anything else may pass.
func grantError(err error, st *store.Store, refusedHint string) error {
	var (
		te *oauth.TokenError
		ie *login.IdentityError
		sv *store.SaveError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && te.Refused():
		return authNeeded(err, refusedHint)
	case errors.As(err, &te):
		return failure(err, "try again when the authorization server answers properly")
	case errors.As(err, &ie):
		return failure(err, "the identity in the token response does not hold; nothing was stored")
	case errors.As(err, &sv):
		return failure(err, storageHint(st.Mode))
	}
	return failure(err, "")
}

// workloadJWT reads the workload's JWT of --jwt-bearer-file: from the
// file, whose absolute path is recorded for renewals, or from stdin ("-"),
// with its claims.
func workloadJWT(opts *LoginOptions) (login.WorkloadJWT, error) {
	if opts.JWTBearerFile == "-" {
		v, err := readStdinValue(opts.g.deps.Stdin, "JWT", "ncmcp login --jwt-bearer-file - < token.jwt")
		if err != nil {
			return login.WorkloadJWT{}, err
		}
		a, err := oauth.ParseAssertion(v)
		if err != nil {
			return login.WorkloadJWT{}, usageErrorf("pipe the workload's JWT alone, as the platform issues it", "stdin does not hold a JWT (three base64url parts separated by dots)")
		}
		return login.WorkloadJWT{Assertion: v, Claims: a}, nil
	}
	path, err := filepath.Abs(opts.JWTBearerFile)
	if err != nil {
		return login.WorkloadJWT{}, failure(err, "")
	}
	v, err := credential.ReadAssertionFile(path)
	var fe *credential.AssertionFileError
	switch {
	case errors.As(err, &fe) && (fe.Empty || fe.NotJWT):
		return login.WorkloadJWT{}, usageErrorf("the file must hold the workload's JWT alone, as the platform writes it (a Kubernetes projected service account token, a CI job's OIDC token)", "--jwt-bearer-file: %v", err)
	case err != nil:
		return login.WorkloadJWT{}, usageErrorf("check the path; in CI, write the job's OIDC token to the file first (docs/ci.md)", "--jwt-bearer-file: %v", err)
	}
	a, _ := oauth.ParseAssertion(v) // checked by ReadAssertionFile
	return login.WorkloadJWT{Assertion: v, File: path, Claims: a}, nil
}

// workloadClient builds the client of a workload identity login: none
// (the grant needs no client) unless --client-id names one, which
// authenticates with NCMCP_CLIENT_SECRET, --secret-stdin or --private-key
// when given.
func workloadClient(opts *LoginOptions, disc *discovery.Result) (oauth.Client, string, error) {
	g := opts.g
	if g.ClientID == "" {
		if opts.PrivateKey != "" || opts.SecretStdin {
			return oauth.Client{}, "", usageErrorf("add --client-id with the client's id", "--private-key and --secret-stdin authenticate a client, and no --client-id names one")
		}
		return oauth.Client{AuthMethod: "none", Issuer: disc.Provider.Issuer}, "", nil
	}
	return namedClientAuth(opts, disc, "printf %s \"$SECRET\" | ncmcp login --jwt-bearer-file FILE --client-id ID --secret-stdin")
}

// loginWorkload logs a workload in with its own JWT (workload identity
// federation, RFC 7523). The JWT goes to the authorization server's token
// endpoint only: never to stdout, the debug trace or the config.
func loginWorkload(ctx context.Context, opts *LoginOptions, st *store.Store, disc *discovery.Result) (*login.Result, error) {
	g := opts.g
	c, keyFile, err := workloadClient(opts, disc)
	if err != nil {
		return nil, err
	}
	jwt, err := workloadJWT(opts)
	if err != nil {
		return nil, err
	}
	scopes, err := loginScopes(g, st, disc, nil, opts.Scopes)
	if err != nil {
		return nil, err
	}
	from := "from stdin"
	if jwt.File != "" {
		from = "in " + jwt.File
	}
	res, err := g.loginFlow(st).Workload(ctx, disc, c, keyFile, jwt, scopes)
	var ge *login.GrantError
	if errors.As(err, &ge) {
		err = fmt.Errorf("the authorization server refused the workload's JWT %s: %w", from, ge.Err)
		hint := "check that the JWT's audience (aud) is what the authorization server expects (its issuer, " + disc.Provider.Issuer + ", unless its admin says otherwise), that it has not expired, and that the authorization server trusts the JWT's issuer"
		if claims := jwt.Claims; claims != nil && !claims.Expiry.IsZero() && !g.deps.Now().Before(claims.Expiry) {
			hint = "the JWT expired at " + claims.Expiry.Local().Format(time.RFC3339) + ": give a current one"
		}
		return nil, grantError(err, st, hint)
	}
	if err != nil {
		return nil, grantError(err, st, "")
	}
	return res, nil
}
