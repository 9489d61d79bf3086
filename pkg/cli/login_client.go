package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
)

// followAuthorizationServer forgets the stored logins and clients of the
// server when its authorization server changed since (see
// login.FollowAuthorizationServer), and says so; the client --client-id
// names is kept. Every kind of login runs it first.
func followAuthorizationServer(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result) error {
	moved, err := g.loginFlow(st).FollowAuthorizationServer(ctx, disc, g.ClientID)
	var sv *store.SaveError
	switch {
	case errors.As(err, &sv):
		return failure(err, storageHint(st.Mode))
	case err != nil:
		return failure(err, "")
	case moved != nil:
		fmt.Fprintln(g.deps.Stderr, termsafe.String(moved.String()))
		if moved.Leftover != nil {
			fmt.Fprintf(g.deps.Stderr, "warning: some of their secrets could not be deleted (%s); nothing uses them any more\n", oneLine(moved.Leftover.Error()))
		}
	}
	return nil
}

// loginClient picks the OAuth client of a browser login (see login.Pick):
// --client-id with NCMCP_CLIENT_SECRET, --client-metadata-url, the stored
// client, or one registered now. Its callers have run
// followAuthorizationServer: when the server's authorization server
// changed, the client is one of the new authorization server's, or the one
// --client-id names.
func loginClient(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result) (*login.Client, error) {
	flow := g.loginFlow(st)
	c, err := flow.Pick(ctx, disc, login.ClientRequest{ID: g.ClientID, MetadataURL: g.ClientMetadataURL, Account: g.Account, Secret: g.clientSecret()})
	var (
		nc *login.NoClientError
		se *login.SecretExpiredError
		sk *store.SecretError
	)
	switch {
	case errors.As(err, &nc) && nc.MetadataDocuments:
		return nil, usageErrorf("pass --client-metadata-url with the https URL of your client ID metadata document (the authorization server takes those), or --client-id ID", "%v", err)
	case errors.As(err, &nc):
		return nil, usageErrorf("pass --client-id ID (or set NCMCP_CLIENT_ID) with a client the server allows, or record one with 'ncmcp clients add ID'; 'ncmcp clients register' needs a server or IdP that offers registration, and this one does not", "%v", err)
	case errors.As(err, &se):
		return nil, failure(err, "register a new client: 'ncmcp clients remove "+se.ClientID+"' then 'ncmcp clients register'")
	case errors.As(err, &sk):
		return nil, credentialError(err)
	case err != nil:
		return nil, registrationError(err, st)
	}
	if c.Registered != nil {
		printRegistered(g.deps.Stderr, c.Registered)
	}
	return c, nil
}

// loginScopes returns the scopes of an authorization request (see
// login.Flow.Scopes), naming --scopes when they cannot be asked for.
func loginScopes(g *globalOptions, st *store.Store, disc *discovery.Result, challenged, extra []string) ([]string, error) {
	scopes, err := g.loginFlow(st).Scopes(disc, challenged, extra)
	if errors.Is(err, login.ErrScopesFixed) {
		return nil, usageErrorf("leave --scopes out: the server's configuration decides them", "%v", err)
	}
	if err != nil {
		return nil, failure(fmt.Errorf("choose scopes: %w", err), "")
	}
	return scopes, nil
}

// loginReplacingForgotten runs a login with client; when the
// authorization server no longer knows it (invalid_client, "Unknown
// client_id": one that keeps registrations in memory restarted) and ncmcp
// registered it, a new client is registered in its place and the login
// runs once more, with that one.
func loginReplacingForgotten(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result, client *login.Client, run func(*login.Client) (*login.Result, error)) (*login.Result, error) {
	res, err := run(client)
	if !clientForgotten(err) {
		return res, err
	}
	cg := &credential.ClientGoneError{Server: disc.ServerURL, ClientID: client.ID, Err: err}
	re, _ := recoverClient(ctx, g, st, disc, cg)
	if re == nil {
		return res, err // not one ncmcp registered, or none could replace it
	}
	fmt.Fprintf(g.deps.Stderr, "%s: logging in again with it.\n", termsafe.String(re.Error()))
	next, cerr := loginClient(ctx, g, st, disc)
	if cerr != nil {
		return nil, cerr
	}
	return run(next)
}

// clientForgotten tells whether a login failed because the authorization
// server does not know the client: its code exchange was refused so. (An
// authorization request it refuses shows in the browser, never here.)
func clientForgotten(err error) bool {
	var xe *login.ExchangeError
	return errors.As(err, &xe) && xe.UnknownClient
}
