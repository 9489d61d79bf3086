package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// loginClient picks the OAuth client of a browser login (see login.Pick):
// --client-id with NCMCP_CLIENT_SECRET, --client-metadata-url, the stored
// client, or one registered now.
func loginClient(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result) (*login.Client, error) {
	c, err := g.loginFlow(st).Pick(ctx, disc, login.ClientRequest{ID: g.ClientID, MetadataURL: g.ClientMetadataURL, Account: g.Account, Secret: g.clientSecret()})
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
