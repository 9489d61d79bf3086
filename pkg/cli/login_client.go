package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// loginClient picks the OAuth client of a browser login: --client-id, else
// the client ID metadata document URL of --client-metadata-url where the
// authorization server takes one, else the account's or the server's
// stored client, else one registered now when the authorization server
// offers registration. The secret comes from NCMCP_CLIENT_SECRET or
// storage. It also returns the loopback port the client's registration
// fixes (0: any).
func loginClient(ctx context.Context, g *globalOptions, st *store.Store, known *store.Server, disc *discovery.Result) (oauth.Client, int, error) {
	c := oauth.Client{ID: g.ClientID, AuthMethods: disc.Provider.TokenEndpointAuthMethodsSupported, Issuer: disc.Provider.Issuer}
	if c.ID == "" && g.ClientMetadataURL != "" && disc.Provider.ClientIDMetadataDocumentSupported {
		// The document names no secret: the client is public.
		return oauth.Client{ID: g.ClientMetadataURL, AuthMethod: "none", Issuer: disc.Provider.Issuer}, 0, nil
	}
	if c.ID == "" && known != nil {
		if a := known.FindAccount(g.Account); a != nil && a.ClientID != "" && known.Client(a.ClientID) != nil && !known.Client(a.ClientID).MetadataDocument {
			c.ID = a.ClientID
		} else if n := len(known.Clients); n > 0 && !known.Clients[n-1].MetadataDocument {
			c.ID = known.Clients[n-1].ID
		}
	}
	if c.ID == "" {
		if disc.Provider.RegistrationEndpoint == "" {
			hint := "pass --client-id ID (or set NCMCP_CLIENT_ID) with a client the server allows, or record one with 'ncmcp clients add ID'; 'ncmcp clients register' needs a server or IdP that offers registration, and this one does not"
			if disc.Provider.ClientIDMetadataDocumentSupported {
				hint = "pass --client-metadata-url with the https URL of your client ID metadata document (the authorization server takes those), or --client-id ID"
			}
			return c, 0, usageErrorf(hint, "no OAuth client is known for %s", disc.ServerURL)
		}
		fmt.Fprintf(g.deps.Stderr, "No client is stored for %s: registering one at %s.\n", disc.ServerURL, disc.Provider.RegistrationEndpoint)
		reg, err := registerClient(ctx, g, st, disc, 0)
		if err != nil {
			return c, 0, err
		}
		if known == nil {
			known = &store.Server{URL: disc.ServerURL}
		}
		known.PutClient(*reg)
		c.ID = reg.ID
	}
	c.Secret = g.deps.Getenv("NCMCP_CLIENT_SECRET")
	port := 0
	if known != nil {
		if sc := known.Client(c.ID); sc != nil {
			port = sc.RedirectPort
			c.AuthMethod = sc.AuthMethod
			if !sc.SecretExpiresAt.IsZero() && !g.deps.Now().Before(sc.SecretExpiresAt) {
				return c, 0, failure(fmt.Errorf("the secret of client %s expired at %s", c.ID, sc.SecretExpiresAt.Local().Format(time.RFC3339)),
					"register a new client: 'ncmcp clients remove "+c.ID+"' then 'ncmcp clients register'")
			}
			if c.Secret == "" && sc.Confidential {
				s, err := readClientSecret(st, disc.ServerURL, sc)
				if err != nil {
					return c, 0, err
				}
				c.Secret = s
			}
		}
	}
	return c, port, nil
}

func readClientSecret(st *store.Store, serverURL string, c *store.Client) (string, error) {
	s, err := st.ClientSecret(serverURL, c)
	return s, credentialError(err)
}
