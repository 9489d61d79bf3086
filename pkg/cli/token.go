package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/registration"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
)

// TokenOptions are the inputs of 'ncmcp token'.
type TokenOptions struct {
	g *globalOptions

	MinTTL time.Duration
	JSON   bool
}

// lockWait bounds how long 'token' waits for another process's refresh.
const lockWait = 60 * time.Second

func newTokenCmd(g *globalOptions, runF func(context.Context, *TokenOptions) error) *cobra.Command {
	opts := &TokenOptions{g: g}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a valid access token (and nothing else) on stdout",
		Long: `Print the access token of the selected account on stdout, refreshing it
first at the IdP when it expires within --min-ttl. A rotated refresh token is
stored before the access token is printed. Only this command prints a secret.

In CI, NCMCP_REFRESH_TOKEN with NCMCP_CLIENT_ID and NCMCP_SERVER (and
NCMCP_CLIENT_SECRET for a confidential client) work without a stored login:
the refresh happens in memory. If the IdP rotates refresh tokens, the new one
is kept only with --storage file (or NCMCP_STORAGE=file), and later runs with
the same NCMCP_REFRESH_TOKEN then use what was stored.`,
		Example: `  curl -H "Authorization: Bearer $(ncmcp token)" https://mcp.example.com/mcp`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.MinTTL < 0 {
				return usageErrorf("use a duration such as 60s or 10m", "invalid --min-ttl %s", opts.MinTTL)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runToken(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.MinTTL, "min-ttl", 60*time.Second, "refresh first when the access token expires within this duration")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON with the token, its expiry and scopes")
	return cmd
}

// validFor reports whether t is still valid minTTL from now. An unknown
// expiry counts as valid: the IdP did not say.
func validFor(t *store.Tokens, now time.Time, minTTL time.Duration) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.Sub(now) > minTTL)
}

func runToken(ctx context.Context, opts *TokenOptions) error {
	g := opts.g
	st, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if rt := g.deps.Getenv("NCMCP_REFRESH_TOKEN"); rt != "" {
		return tokenFromEnv(ctx, opts, st, cfg, rt)
	}
	srv, acct, err := g.selectAccount(cfg)
	if err != nil {
		return err
	}
	return printStoredToken(ctx, opts, st, srv, acct)
}

// printStoredToken prints an account's access token, refreshing it first when
// it expires within --min-ttl.
func printStoredToken(ctx context.Context, opts *TokenOptions, st *store.Store, srv *store.Server, acct *store.Account) error {
	tok, err := readTokens(st, srv, acct)
	if err != nil {
		return err
	}
	scopes := acct.Scopes
	if !validFor(tok, opts.g.deps.Now(), opts.MinTTL) {
		if tok, scopes, err = refreshLocked(ctx, opts.g, st, srv.URL, acct.Subject, opts.MinTTL, ""); err != nil {
			return handleClientGone(ctx, opts.g, st, err)
		}
	}
	return printToken(opts, tok.AccessToken, tok.TokenType, tok.Expiry, scopes)
}

// TokenJSON is the output of 'ncmcp token --json'.
type TokenJSON struct {
	AccessToken string     `json:"access_token"`
	TokenType   string     `json:"token_type"`
	ExpiresAt   *time.Time `json:"expires_at"`
	Scopes      []string   `json:"scopes"`
}

func printToken(opts *TokenOptions, access, typ string, expiry time.Time, scopes []string) error {
	out := opts.g.deps.Stdout
	if !opts.JSON {
		_, err := fmt.Fprintln(out, access)
		return err
	}
	j := TokenJSON{AccessToken: access, TokenType: typ, Scopes: scopes}
	if j.TokenType == "" {
		j.TokenType = "Bearer"
	}
	if j.Scopes == nil {
		j.Scopes = []string{}
	}
	if !expiry.IsZero() {
		e := expiry.UTC()
		j.ExpiresAt = &e
	}
	return json.NewEncoder(out).Encode(j)
}

// seedOf identifies a refresh token given in the environment without
// storing it.
func seedOf(rt string) string {
	sum := sha256.Sum256([]byte(rt))
	return hex.EncodeToString(sum[:])
}

// tokenFromEnv serves NCMCP_REFRESH_TOKEN: from storage when an earlier run
// with --storage file kept what this token turned into, else by a refresh
// in memory.
func tokenFromEnv(ctx context.Context, opts *TokenOptions, st *store.Store, cfg *store.Config, rt string) error {
	g, d := opts.g, opts.g.deps
	if g.Server == "" {
		return usageErrorf("set NCMCP_SERVER (or --server) to the MCP server's URL", "NCMCP_REFRESH_TOKEN needs a server")
	}
	if g.ClientID == "" {
		return usageErrorf("set NCMCP_CLIENT_ID (or --client-id) to the client the refresh token was issued to", "NCMCP_REFRESH_TOKEN needs a client id")
	}
	seed := seedOf(rt)
	if srv := cfg.Servers[g.Server]; srv != nil {
		for _, id := range srv.AccountIDs() {
			if a := srv.Accounts[id]; a.Seed == seed {
				return printStoredToken(ctx, opts, st, srv, a)
			}
		}
	}
	hc := g.httpClient()
	disc, err := g.discover(ctx, hc, g.Server)
	if err != nil {
		return err
	}
	client := oauth.Client{ID: g.ClientID, Secret: d.Getenv("NCMCP_CLIENT_SECRET"), AuthMethods: disc.Provider.TokenEndpointAuthMethodsSupported, Issuer: disc.Provider.Issuer}
	tok, err := oauth.Refresh(ctx, hc, disc.Provider.TokenEndpoint, client, rt, resourceIndicator(disc))
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) && te.Refused() {
			return authNeeded(fmt.Errorf("the IdP refused NCMCP_REFRESH_TOKEN: %w", err), "the token is expired, revoked or already used (IdPs that rotate refresh tokens accept each one once): put a fresh one in the CI secret, and use --storage file to keep rotated tokens between runs")
		}
		return failure(err, "")
	}
	if st.Mode == store.ModeFile {
		id, err := identifier(disc, client.ID).Identify(ctx, hc, tok, "")
		if err != nil {
			return failure(fmt.Errorf("keep the rotated refresh token: %w", err), "")
		}
		rec := newLoginRecord(client, id, tok, nil)
		rec.seed = seed
		if _, err := saveLogin(ctx, g, st, disc, rec); err != nil {
			return err
		}
		fmt.Fprintf(d.Stderr, "Stored the tokens of %s in %s; later runs with the same NCMCP_REFRESH_TOKEN use them.\n", id.Display(), store.SecretsPath(st.Dir))
	} else if tok.RefreshToken != rt {
		fmt.Fprintln(d.Stderr, "warning: the IdP rotated the refresh token and the new one was not stored, so NCMCP_REFRESH_TOKEN may not work again; use --storage file (NCMCP_STORAGE=file) to keep it")
	}
	return printToken(opts, tok.AccessToken, tok.Type(), tok.Expiry, oauth.Scopes(tok))
}

func readTokens(st *store.Store, srv *store.Server, acct *store.Account) (*store.Tokens, error) {
	tok, err := st.GetTokens(acct.Storage, srv.URL, acct.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, authNeeded(fmt.Errorf("the tokens of %s on %s are missing from the %s storage", acct.Subject, srv.URL, acct.Storage),
			"log in again: 'ncmcp login --server "+srv.URL+"'")
	}
	var ke *store.KeyringError
	if errors.As(err, &ke) {
		return nil, failure(err, "unlock the OS keyring (or check that its Secret Service runs); 'ncmcp login --storage file' keeps tokens in an owner-only file instead")
	}
	if err != nil {
		return nil, failure(err, "")
	}
	return tok, nil
}

// refreshLocked refreshes an account's tokens under the store lock. It
// re-reads config and tokens after taking the lock, so that of several
// processes only the first refreshes and the others use its result. A
// stored access token equal to refused (one the server refused) counts as
// expired.
func refreshLocked(ctx context.Context, g *globalOptions, st *store.Store, serverURL, subject string, minTTL time.Duration, refused string) (*store.Tokens, []string, error) {
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	unlock, err := st.Lock(lctx)
	if err != nil {
		return nil, nil, failure(err, "")
	}
	defer unlock()

	cfg, err := store.LoadConfig(st.Dir)
	if err != nil {
		return nil, nil, failure(err, "")
	}
	srv := cfg.Servers[serverURL]
	var acct *store.Account
	if srv != nil {
		acct = srv.Accounts[subject]
	}
	if acct == nil {
		return nil, nil, authNeeded(fmt.Errorf("%s was logged out of %s meanwhile", subject, serverURL), "run 'ncmcp login --server "+serverURL+"'")
	}
	tok, err := readTokens(st, srv, acct)
	if err != nil {
		return nil, nil, err
	}
	now := g.deps.Now()
	if validFor(tok, now, minTTL) && (refused == "" || tok.AccessToken != refused) {
		return tok, acct.Scopes, nil // another process refreshed while we waited
	}
	client, err := storedClient(g, st, srv, acct.ClientID)
	if err != nil {
		return nil, nil, err
	}
	var fresh *oauth2.Token
	switch {
	case tok.RefreshToken != "":
		fresh, err = oauth.Refresh(ctx, g.httpClient(), srv.TokenEndpoint, client, tok.RefreshToken, srv.Resource)
	case acct.Grant == store.GrantClientCredentials:
		fresh, err = oauth.ClientCredentials(ctx, g.httpClient(), srv.TokenEndpoint, client, acct.Scopes, srv.Resource)
	default:
		return nil, nil, authNeeded(fmt.Errorf("the access token of %s expires at %s and there is no refresh token", acct.Subject, tok.Expiry.Local().Format(time.RFC3339)),
			"log in again with 'ncmcp login'; for tokens that renew, the server admin must allow offline_access")
	}
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) && te.Refused() {
			if registration.UnknownClient(te.Code, te.Description) {
				return nil, nil, &clientGoneError{server: srv.URL, clientID: acct.ClientID, err: err}
			}
			if acct.Grant == store.GrantClientCredentials {
				return nil, nil, authNeeded(fmt.Errorf("the authorization server refused the client's credentials: %w", err), "the client's secret or key may have changed: log in again with 'ncmcp login --client-credentials'")
			}
			return nil, nil, authNeeded(fmt.Errorf("the IdP refused the refresh token: %w", err), refreshRefusedHint(srv, acct))
		}
		return nil, nil, failure(err, "try again when the IdP is reachable; the stored tokens are unchanged")
	}
	next := &store.Tokens{AccessToken: fresh.AccessToken, TokenType: fresh.Type(), RefreshToken: fresh.RefreshToken, Expiry: oauth.Expiry(fresh)}
	if next.RefreshToken == "" {
		next.RefreshToken = tok.RefreshToken
	}
	if err := st.PutTokensIn(acct.Storage, srv.URL, acct.Subject, next); err != nil {
		// The IdP may have rotated the refresh token: the new one is lost.
		return nil, nil, failure(fmt.Errorf("store the refreshed tokens: %w", err), "if the IdP rotates refresh tokens, log in again once storage works")
	}
	acct.AccessTokenExpiry = next.Expiry
	acct.HasRefreshToken = next.RefreshToken != ""
	if s := oauth.Scopes(fresh); s != nil {
		acct.Scopes = s
	}
	if err := store.SaveConfig(st.Dir, cfg); err != nil {
		fmt.Fprintf(g.deps.Stderr, "warning: could not update the config after refreshing: %v\n", err)
	}
	return next, acct.Scopes, nil
}

// refreshRefusedHint explains a refused refresh. A generation-2 server
// logs every user in through its one client at the IdP, and IdPs such as
// Dex keep one refresh token per user and client: any later login of the
// same user through the server ends the one ncmcp holds.
func refreshRefusedHint(srv *store.Server, acct *store.Account) string {
	login := "log in again: 'ncmcp login --server " + srv.URL + "'"
	if srv.Generation != discovery.Generation2 {
		return login
	}
	return "this server's IdP may keep one refresh token per user: a later login of " + acct.DisplayName() +
		" through the server (another 'ncmcp login', an MCP client's login, a login left unfinished, or Flow 2 provisioning) ends the earlier one; otherwise it expired or was revoked. " + login
}

// clientGoneError is a refresh refused because the client is unknown
// ("Unknown client_id", invalid_client): generation-2 servers forget
// dynamic registrations when they restart.
type clientGoneError struct {
	server, clientID string
	err              error
}

func (e *clientGoneError) Error() string {
	return fmt.Sprintf("the refresh was refused because client %s is unknown: %v", e.clientID, e.err)
}

// handleClientGone turns a clientGoneError into the error to report,
// registering a replacement client first when the lost one was registered
// dynamically: the old tokens are bound to the old client, so the user must
// log in again either way. Call it without holding the store lock.
func handleClientGone(ctx context.Context, g *globalOptions, st *store.Store, err error) error {
	var cg *clientGoneError
	if !errors.As(err, &cg) {
		return err
	}
	cfg, lerr := store.LoadConfig(st.Dir)
	if lerr != nil {
		return failure(lerr, "")
	}
	srv := cfg.Servers[cg.server]
	c := srv.Client(cg.clientID)
	if c == nil || !c.Registered {
		return authNeeded(cg, fmt.Sprintf("the server or IdP does not know client %s: check the client id with its admin, then log in again", cg.clientID))
	}
	disc, derr := g.discover(ctx, g.httpClient(), cg.server)
	if derr != nil {
		return authNeeded(cg, fmt.Sprintf("the registration of client %s is gone; register a new one ('ncmcp clients register') and log in again", cg.clientID))
	}
	if uerr := st.Update(ctx, func(cfg *store.Config) error {
		cfg.Servers[cg.server].RemoveClient(cg.clientID)
		return nil
	}); uerr != nil {
		return failure(uerr, "")
	}
	reg, rerr := registerClient(ctx, g, st, disc, 0)
	if rerr != nil {
		return rerr
	}
	return authNeeded(fmt.Errorf("%s no longer knows client %s (servers that keep registrations in memory forget them when they restart); registered client %s in its place", cg.server, cg.clientID, reg.ID),
		"log in again: 'ncmcp login --server "+cg.server+"'")
}

// storedClient returns the OAuth client of an account as stored: its
// secret from NCMCP_CLIENT_SECRET or storage, its private key from its key
// file.
func storedClient(g *globalOptions, st *store.Store, srv *store.Server, id string) (oauth.Client, error) {
	c := oauth.Client{ID: id, Secret: g.deps.Getenv("NCMCP_CLIENT_SECRET"), AuthMethods: srv.TokenAuthMethods, Issuer: srv.Issuer}
	sc := srv.Client(id)
	if sc == nil {
		return c, nil
	}
	c.AuthMethod = sc.AuthMethod
	if sc.KeyFile != "" {
		k, err := readKeyFile(sc.KeyFile)
		if err != nil {
			return c, err
		}
		c.Key = k
	}
	if c.Secret == "" && sc.Confidential {
		s, err := readClientSecret(st, srv.URL, sc)
		if err != nil {
			return c, err
		}
		c.Secret = s
	}
	return c, nil
}
