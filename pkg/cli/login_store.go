package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
	"golang.org/x/oauth2"
)

// loginRecord is what a login stores.
type loginRecord struct {
	client oauth.Client
	id     *oauth.Identity
	tok    *oauth2.Token
	// requested are the scopes the request asked for: a token response
	// without a scope parameter grants exactly those (RFC 6749 section 5.1).
	requested []string
	// seed identifies the NCMCP_REFRESH_TOKEN the login came from.
	seed string
	// grant is the account's store.Grant*.
	grant string
	// keyFile is the private key file of a private_key_jwt client.
	keyFile string
}

func newLoginRecord(c oauth.Client, id *oauth.Identity, tok *oauth2.Token, requested []string) *loginRecord {
	return &loginRecord{client: c, id: id, tok: tok, requested: requested}
}

// loginResult is what a completed login stored.
type loginResult struct {
	// subject is the account's key.
	subject    string
	id         *oauth.Identity
	tok        *oauth2.Token
	scopes     []string
	backend    string
	fellBack   error
	clientID   string
	generation int
	grant      string
}

// saveLogin stores a login: secrets first, then the config, under the store
// lock. On failure nothing stays stored.
func saveLogin(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result, rec *loginRecord) (*loginResult, error) {
	tok, id, client := rec.tok, rec.id, rec.client
	tok.Expiry = oauth.Expiry(tok)
	res := &loginResult{id: id, tok: tok, scopes: oauth.Scopes(tok), clientID: client.ID, generation: disc.Generation, grant: rec.grant}
	if res.scopes == nil && len(rec.requested) > 0 {
		res.scopes = slices.Clone(rec.requested)
	}
	subject := id.Subject
	if subject == "" {
		subject = store.UnknownSubject(client.ID)
	}
	res.subject = subject
	secrets := &store.Tokens{AccessToken: tok.AccessToken, TokenType: tok.Type(), RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}

	unlock, err := st.Lock(ctx)
	if err != nil {
		return nil, failure(err, "")
	}
	defer unlock()
	cfg, err := store.LoadConfig(st.Dir)
	if err != nil {
		return nil, failure(err, "")
	}
	backend, fellBack, err := st.PutTokens(disc.ServerURL, subject, secrets)
	if err != nil {
		return nil, failure(fmt.Errorf("store the tokens: %w; nothing was stored", err), storageHint(st.Mode))
	}
	res.backend, res.fellBack = backend, fellBack
	var clientSecretBackend string
	if client.Secret != "" {
		b, _, err := st.Put(store.ClientSecretKey(disc.ServerURL, client.ID), client.Secret)
		if err != nil {
			_ = deleteTokens(st, backend, disc.ServerURL, subject)
			return nil, failure(fmt.Errorf("store the client secret: %w; nothing was stored", err), storageHint(st.Mode))
		}
		clientSecretBackend = b
	}

	srv := serverEntry(cfg, disc)
	if srv.Accounts == nil {
		srv.Accounts = map[string]*store.Account{}
	}
	if old := srv.Accounts[subject]; old != nil && old.Storage != backend {
		_ = deleteTokens(st, old.Storage, disc.ServerURL, subject)
	}
	srv.Accounts[subject] = &store.Account{
		Subject: subject, Username: id.Username, Email: id.Email, Name: id.Name,
		ClientID: client.ID, Scopes: res.scopes, AccessTokenExpiry: tok.Expiry,
		HasRefreshToken: tok.RefreshToken != "", Storage: backend, LoggedInAt: g.deps.Now().UTC(), EnvRefreshTokenHash: rec.seed,
		Identity: string(id.Source), IdentityOverTLS: id.OverTLS, Grant: rec.grant,
	}
	srv.ActiveAccount = subject
	c := store.Client{ID: client.ID}
	if prev := srv.Client(c.ID); prev != nil {
		c = *prev
	}
	if clientSecretBackend != "" {
		c.Confidential, c.SecretStorage = true, clientSecretBackend
	}
	if client.AuthMethod != "" {
		c.AuthMethod = client.AuthMethod
	}
	if rec.keyFile != "" {
		c.KeyFile = rec.keyFile
	}
	srv.PutClient(c)
	if err := store.SaveConfig(st.Dir, cfg); err != nil {
		_ = deleteTokens(st, backend, disc.ServerURL, subject)
		return nil, failure(fmt.Errorf("save the config: %w; nothing was stored", err), "")
	}
	return res, nil
}

// serverEntry returns the config entry of the discovered server, created
// or updated from discovery.
func serverEntry(cfg *store.Config, disc *discovery.Result) *store.Server {
	srv := cfg.Servers[disc.ServerURL]
	if srv == nil {
		srv = &store.Server{URL: disc.ServerURL}
		cfg.Servers[disc.ServerURL] = srv
	}
	srv.Generation = disc.Generation
	srv.Issuer = disc.Provider.Issuer
	srv.TokenEndpoint = disc.Provider.TokenEndpoint
	srv.TokenAuthMethods = disc.Provider.TokenEndpointAuthMethodsSupported
	srv.RevocationEndpoint = disc.Provider.RevocationEndpoint
	srv.Endpoint = disc.Endpoint
	srv.Resource = resourceIndicator(disc)
	if cfg.DefaultServer == "" {
		cfg.DefaultServer = disc.ServerURL
	}
	return srv
}

func deleteTokens(st *store.Store, backend, serverURL, subject string) error {
	b, err := st.Backend(backend)
	if err != nil {
		return err
	}
	return b.Delete(store.TokenKey(serverURL, subject))
}

func storageHint(m store.Mode) string {
	if m == store.ModeKeyring {
		return "--storage keyring needs a working, unlocked OS keyring (Secret Service on Linux); unlock it, or use --storage auto or file"
	}
	return "check that the config directory is writable (NCMCP_CONFIG_DIR)"
}

// identifier establishes identities for logins at the discovered server.
func identifier(disc *discovery.Result, clientID string) *oauth.Identifier {
	p := disc.Provider
	return &oauth.Identifier{Issuer: p.Issuer, JWKSURI: p.JWKSURI, ClientID: clientID, Algs: p.IDTokenSigningAlgValuesSupported,
		UserinfoEndpoint: p.UserinfoEndpoint, TokenEndpoint: p.TokenEndpoint}
}

func printLoginSummary(w io.Writer, now time.Time, serverURL string, r *loginResult) {
	if r.fellBack != nil {
		fmt.Fprintf(w, "warning: the OS keyring is not usable (%s); secrets were stored in an owner-only file instead\n", oneLine(r.fellBack.Error()))
	}
	switch {
	case r.grant == store.GrantClientCredentials:
		fmt.Fprintf(w, "Logged in to %s as client %s (client credentials).\n", serverURL, r.clientID)
	case r.id.Source == oauth.IdentityUnknown:
		fmt.Fprintf(w, "Logged in to %s with client %s; the server's tokens do not say who you are.\n", serverURL, r.clientID)
	default:
		fmt.Fprintf(w, "Logged in to %s as %s (sub %s) with client %s.\n", serverURL, r.id.Display(), r.id.Subject, r.clientID)
		fmt.Fprintf(w, "Identity: %s.\n", r.id.Describe())
	}
	if len(r.scopes) > 0 {
		fmt.Fprintf(w, "Scopes: %s\n", strings.Join(r.scopes, " "))
	} else {
		fmt.Fprintln(w, "Scopes: not reported by the IdP")
	}
	if r.tok.Expiry.IsZero() {
		fmt.Fprintln(w, "Access token: lifetime not reported by the IdP")
	} else {
		fmt.Fprintf(w, "Access token: valid for %s (until %s)\n", r.tok.Expiry.Sub(now).Round(time.Second), r.tok.Expiry.Local().Format(time.RFC3339))
	}
	where := "the OS keyring"
	if r.backend == store.BackendFile {
		where = "an owner-only file"
	}
	switch {
	case r.tok.RefreshToken != "":
		fmt.Fprintf(w, "Refresh token: yes; 'ncmcp token' renews the access token. Tokens are in %s.\n", where)
		return
	case r.grant == store.GrantClientCredentials:
		fmt.Fprintf(w, "'ncmcp token' gets a new access token with the client's credentials when this one expires. Tokens are in %s.\n", where)
		return
	}
	fmt.Fprintf(w, "Tokens are in %s.\n", where)
	msg := "warning: the IdP issued no refresh token: 'ncmcp token' stops working when the access token expires, and you will have to log in again."
	switch {
	case r.generation == discovery.Generation1:
		msg += " The server admin must add offline_access to the scopes the server requests (NEXTCLOUD_OIDC_SCOPES) and allow it for client " + r.clientID + " at the IdP."
	case r.generation == discovery.Generation2 && !slices.Contains(r.scopes, "offline_access"):
		msg += " The server does not offer offline_access; its admin must allow it (for the server's own client at the IdP)."
	case r.generation == discovery.Generation2:
		msg += " The server's IdP did not grant offline_access; its admin must allow it for the server's client."
	case !slices.Contains(r.scopes, "offline_access"):
		msg += " The authorization server does not offer offline_access."
	}
	fmt.Fprintln(w, msg)
}
