package cli

import (
	"errors"
	"fmt"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// source returns the credential source of an account, with the client
// secret of NCMCP_CLIENT_SECRET, the clock and warnings on stderr.
func (g *globalOptions) source(st *store.Store, serverURL, subject string) *credential.Source {
	return &credential.Source{
		Store: st, HTTP: g.httpClient(), Server: serverURL, Subject: subject,
		ClientSecret: g.clientSecret(), Now: g.deps.Now,
		Warn: func(m string) { fmt.Fprintf(g.deps.Stderr, "warning: %s\n", m) },
	}
}

// clientSecret is NCMCP_CLIENT_SECRET: the secret of --client-id, which
// wins over a stored one.
func (g *globalOptions) clientSecret() string { return g.deps.Getenv("NCMCP_CLIENT_SECRET") }

// namedClient is the client --client-id names, with NCMCP_CLIENT_SECRET,
// authenticating as the discovered authorization server allows.
func (g *globalOptions) namedClient(disc *discovery.Result) oauth.Client {
	return oauth.Client{ID: g.ClientID, Secret: g.clientSecret(), AuthMethods: disc.Provider.TokenEndpointAuthMethodsSupported, Issuer: disc.Provider.Issuer}
}

// credentialError maps the credential source's errors to exit codes and
// hints. A credential.ClientGoneError stays as it is, for handleClientGone.
func credentialError(err error) error {
	if mapped, ok := mapCredentialError(err); ok || err == nil {
		return mapped
	}
	return failure(err, "")
}

// mapCredentialError maps the errors credentialError knows; ok is false
// for others.
func mapCredentialError(err error) (mapped error, ok bool) {
	var (
		e  *Error
		lr *credential.LoginRequiredError
		cg *credential.ClientGoneError
		se *credential.StoreError
		ke *store.KeyringError
		sk *store.SecretError
		kf *credential.KeyFileError
		te *oauth.TokenError
	)
	switch {
	case err == nil:
		return nil, false
	case errors.As(err, &e), errors.As(err, &cg):
		return err, true
	case errors.As(err, &lr):
		return authNeeded(err, loginRequiredHint(lr)), true
	case errors.As(err, &se):
		return failure(err, "if the IdP rotates refresh tokens, log in again once storage works"), true
	case errors.As(err, &sk):
		return failure(err, "set NCMCP_CLIENT_SECRET, or unlock the keyring"), true
	case errors.As(err, &ke):
		return failure(err, "unlock the OS keyring (or check that its Secret Service runs); 'ncmcp login --storage file' keeps tokens in an owner-only file instead"), true
	case errors.As(err, &kf) && kf.Exposed:
		return failure(err, "chmod 600 "+kf.Path), true
	case errors.As(err, &kf):
		return failure(err, "the client's private key file is gone or unusable: log in again with 'ncmcp login --client-credentials --private-key FILE'"), true
	case errors.As(err, &te):
		return failure(err, "try again when the IdP is reachable; the stored tokens are unchanged"), true
	}
	return nil, false
}

// loginRequiredHint says what to do when only a new login helps. A
// generation-2 server logs every user in through its one client at the IdP,
// and IdPs such as Dex keep one refresh token per user and client: any
// later login of the same user through the server ends the one ncmcp holds.
func loginRequiredHint(e *credential.LoginRequiredError) string {
	login := "log in again: 'ncmcp login --server " + e.Server + "'"
	switch e.Reason {
	case credential.LoggedOut:
		return "run 'ncmcp login --server " + e.Server + "'"
	case credential.TokensMissing:
		return login
	case credential.NoRefreshToken:
		return "log in again with 'ncmcp login'; for tokens that renew, the server admin must allow offline_access"
	case credential.CredentialsRefused:
		return "the client's secret or key may have changed: log in again with 'ncmcp login --client-credentials'"
	}
	if e.Generation != discovery.Generation2 || e.Account == nil {
		return login
	}
	return "this server's IdP may keep one refresh token per user: a later login of " + e.Account.DisplayName() +
		" through the server (another 'ncmcp login', an MCP client's login, a login left unfinished, or Flow 2 provisioning) ends the earlier one; otherwise it expired or was revoked. " + login
}
