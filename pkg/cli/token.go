package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ncmcp/ncmcp/pkg/clients"
	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
	"github.com/spf13/cobra"
)

// TokenOptions are the inputs of 'ncmcp token'.
type TokenOptions struct {
	g *globalOptions

	MinTTL time.Duration
	JSON   bool
	// Headers prints the HTTP headers of a request with the token, as JSON
	// (Claude Code's headersHelper).
	Headers bool
}

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
the same NCMCP_REFRESH_TOKEN then use what was stored.

--headers prints {"Authorization":"Bearer ..."} instead, for MCP clients that
run a command for their request headers (Claude Code's headersHelper); it
takes the server from CLAUDE_CODE_MCP_SERVER_URL when --server is not given.

A token bound to a DPoP key (where the authorization server offers DPoP,
RFC 9449) is of no use without a proof signed with that key for each
request: 'token' and --headers refuse it (exit 2), --json prints it with
"dpop_bound": true and the key's thumbprint (jkt). 'ncmcp tools' and
'ncmcp proxy' sign their requests themselves.`,
		Example: `  curl -H "Authorization: Bearer $(ncmcp token)" https://mcp.example.com/mcp
  ncmcp token --headers     # {"Authorization":"Bearer ..."}`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.MinTTL < 0 {
				return usageErrorf("use a duration such as 60s or 10m", "invalid --min-ttl %s", opts.MinTTL)
			}
			if opts.JSON && opts.Headers {
				return usageErrorf("use one of them", "--json and --headers are two outputs")
			}
			if u := g.deps.Getenv("CLAUDE_CODE_MCP_SERVER_URL"); opts.Headers && u != "" && !cmd.Flags().Changed("server") {
				norm, err := discovery.NormalizeServerURL(u)
				if err != nil {
					return usageErrorf("pass --server", "invalid CLAUDE_CODE_MCP_SERVER_URL %q: %v", u, err)
				}
				// The environment's refresh token is for NCMCP_SERVER
				// alone: never sent to a server another variable names.
				if g.deps.Getenv("NCMCP_REFRESH_TOKEN") != "" {
					ci, _ := discovery.NormalizeServerURL(g.deps.Getenv("NCMCP_SERVER"))
					if ci == "" || (norm != ci && norm != ci+"/mcp") {
						return failure(fmt.Errorf("CLAUDE_CODE_MCP_SERVER_URL names %s, but NCMCP_REFRESH_TOKEN is for NCMCP_SERVER (%q): refusing to use it there", termsafe.String(norm), termsafe.String(ci)),
							"set CLAUDE_CODE_MCP_SERVER_URL to NCMCP_SERVER's server, or pass --server")
					}
					norm = ci
				}
				g.Server = norm
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runToken(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.MinTTL, "min-ttl", 60*time.Second, "refresh first when the access token expires within this duration")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON with the token, its expiry and scopes")
	cmd.Flags().BoolVar(&opts.Headers, "headers", false, "print the request headers as JSON, {\"Authorization\":\"Bearer ...\"} (server from CLAUDE_CODE_MCP_SERVER_URL)")
	return cmd
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
	src := opts.g.source(st, srv.URL, acct.Subject)
	tok, err := src.Stored(srv, acct)
	if err != nil {
		return credentialError(err)
	}
	if err := refuseBound(opts, tok.TokenType, srv.URL); err != nil {
		return err // before a renewal, which would bind the new token too
	}
	scopes := acct.Scopes
	if !credential.Valid(tok, opts.g.deps.Now(), opts.MinTTL) {
		// A refresh must not be cut short between the IdP's answer and
		// the storing of a rotated refresh token: signals cancel it.
		opts.g.deps.watchSignals()
		fresh, err := src.Refresh(ctx, opts.MinTTL, "")
		if err != nil {
			return handleClientGone(ctx, opts.g, st, credentialError(err))
		}
		tok, scopes = &fresh.Tokens, fresh.Scopes
	}
	return printToken(opts, tok, scopes, srv.URL)
}

// TokenJSON is the output of 'ncmcp token --json'.
type TokenJSON struct {
	AccessToken string     `json:"access_token"`
	TokenType   string     `json:"token_type"`
	ExpiresAt   *time.Time `json:"expires_at"`
	Scopes      []string   `json:"scopes"`
	// DPoPBound is set for a token bound to the account's DPoP key (RFC
	// 9449), usable only with proofs signed by that key; JKT is the key's
	// JWK SHA-256 thumbprint, which the token's cnf claim names.
	DPoPBound bool   `json:"dpop_bound"`
	JKT       string `json:"jkt,omitempty"`
}

// refuseBound refuses to print a DPoP-bound token but as JSON: whoever
// reads it from 'ncmcp token' or --headers sends it as a bearer token,
// which the server refuses without a proof signed by the account's key.
func refuseBound(opts *TokenOptions, tokenType, serverURL string) error {
	if opts.JSON || !oauth.IsDPoP(tokenType) {
		return nil
	}
	what := "ncmcp token"
	if opts.Headers {
		what += " --headers"
	}
	return usageErrorf("'ncmcp tools' and 'ncmcp proxy' sign a proof for each request; 'ncmcp token --json' shows the token and its binding",
		"the access token for %s is DPoP-bound (RFC 9449): it works only with a proof signed by ncmcp's key for each request, so '%s' cannot give it as a bearer token", serverURL, what)
}

func printToken(opts *TokenOptions, tok *store.Tokens, scopes []string, serverURL string) error {
	if err := refuseBound(opts, tok.TokenType, serverURL); err != nil {
		return err
	}
	out := opts.g.deps.Stdout
	access := tok.AccessToken
	if opts.Headers {
		return json.NewEncoder(out).Encode(map[string]string{"Authorization": "Bearer " + access})
	}
	if !opts.JSON {
		_, err := fmt.Fprintln(out, access)
		return err
	}
	j := TokenJSON{AccessToken: access, TokenType: tok.TokenType, Scopes: scopes, DPoPBound: oauth.IsDPoP(tok.TokenType)}
	if j.DPoPBound {
		j.TokenType = oauth.TokenTypeDPoP
		k, err := credential.DPoPKey(tok)
		if err != nil {
			return failure(err, "log in again: 'ncmcp login --server "+serverURL+"'")
		}
		if k == nil {
			return failure(fmt.Errorf("the access token for %s is DPoP-bound, and its key is not stored", serverURL), "log in again: 'ncmcp login --server "+serverURL+"'")
		}
		j.JKT = k.Thumbprint()
	}
	if j.TokenType == "" {
		j.TokenType = "Bearer"
	}
	if j.Scopes == nil {
		j.Scopes = []string{}
	}
	if !tok.Expiry.IsZero() {
		e := tok.Expiry.UTC()
		j.ExpiresAt = &e
	}
	return json.NewEncoder(out).Encode(j)
}

// tokenFromEnv serves NCMCP_REFRESH_TOKEN: from storage when an earlier run
// with --storage file kept what this token turned into, else by a refresh
// in memory.
func tokenFromEnv(ctx context.Context, opts *TokenOptions, st *store.Store, cfg *store.Config, rt string) error {
	g, d := opts.g, opts.g.deps
	d.watchSignals()
	if g.Server == "" {
		return usageErrorf("set NCMCP_SERVER (or --server) to the MCP server's URL", "NCMCP_REFRESH_TOKEN needs a server")
	}
	if g.ClientID == "" {
		return usageErrorf("set NCMCP_CLIENT_ID (or --client-id) to the client the refresh token was issued to", "NCMCP_REFRESH_TOKEN needs a client id")
	}
	hash := login.EnvRefreshTokenHash(rt)
	if srv := cfg.Servers[g.Server]; srv != nil {
		for _, id := range srv.AccountIDs() {
			if a := srv.Accounts[id]; a.EnvRefreshTokenHash == hash {
				return printStoredToken(ctx, opts, st, srv, a)
			}
		}
	}
	disc, err := g.discover(ctx, g.httpClient(), g.Server)
	if err != nil {
		return err
	}
	client := g.namedClient(disc)
	keep := st.Mode == store.ModeFile
	tok, res, err := g.loginFlow(st).EnvRefreshToken(ctx, disc, client, rt, keep)
	var te *oauth.TokenError
	if errors.As(err, &te) && te.Refused() {
		return authNeeded(fmt.Errorf("the IdP refused NCMCP_REFRESH_TOKEN: %w", err), "the token is expired, revoked or already used (IdPs that rotate refresh tokens accept each one once): put a fresh one in the CI secret, and use --storage file to keep rotated tokens between runs")
	}
	if err != nil {
		return grantError(fmt.Errorf("keep the rotated refresh token: %w", err), st, "")
	}
	if res != nil {
		fmt.Fprintf(d.Stderr, "Stored the tokens of %s in %s; later runs with the same NCMCP_REFRESH_TOKEN use them.\n", res.Identity.Display(), store.SecretsPath(st.Dir))
	} else if tok.RefreshToken != rt {
		fmt.Fprintln(d.Stderr, "warning: the IdP rotated the refresh token and the new one was not stored, so NCMCP_REFRESH_TOKEN may not work again; use --storage file (NCMCP_STORAGE=file) to keep it")
	}
	return printToken(opts, &store.Tokens{AccessToken: tok.AccessToken, TokenType: tok.Type(), Expiry: tok.Expiry}, oauth.Scopes(tok), g.Server)
}

// replaceClient registers a client in place of one the server forgot,
// for a session that logs in with it next: nil when it did, else
// handleClientGone's error.
func replaceClient(ctx context.Context, g *globalOptions, st *store.Store, cg *credential.ClientGoneError) error {
	re, err := recoverClient(ctx, g, st, nil, cg)
	if re != nil {
		printRegistered(g.deps.Stderr, re.Registered)
		return nil
	}
	return clientGoneError(cg, err, st)
}

// recoverClient registers a client in place of one the server forgot
// (see clients.Manager.Recover), where ncmcp registered the lost one: the
// replacement, or nil and Recover's error. disc is the server's
// discovery when in hand (nil: Recover discovers the server).
func recoverClient(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result, cg *credential.ClientGoneError) (*clients.ReplacedError, error) {
	m := g.clients(st)
	if disc != nil {
		m.Discover = func(context.Context, string) (*discovery.Result, error) { return disc, nil }
	}
	err := m.Recover(ctx, cg)
	var re *clients.ReplacedError
	if errors.As(err, &re) {
		return re, nil
	}
	return nil, err
}

// handleClientGone turns a credential.ClientGoneError into the error to
// report, after registering a replacement client when the lost one was
// registered dynamically: the old tokens are bound to the old client, so
// the user must log in again either way. Only commands meant to change
// state call it. Call it without holding the store lock.
func handleClientGone(ctx context.Context, g *globalOptions, st *store.Store, err error) error {
	var cg *credential.ClientGoneError
	if !errors.As(err, &cg) {
		return err
	}
	re, err := recoverClient(ctx, g, st, nil, cg)
	if re != nil {
		printRegistered(g.deps.Stderr, re.Registered)
		return authNeeded(re, "log in again: 'ncmcp login --server "+cg.Server+"'")
	}
	return clientGoneError(cg, err, st)
}

// clientGoneError maps what Recover answered for a client the server
// forgot, other than a replacement.
func clientGoneError(cg *credential.ClientGoneError, err error, st *store.Store) error {
	var ue *clients.UnrecoveredError
	switch {
	case errors.As(err, &ue):
		return authNeeded(cg, fmt.Sprintf("the registration of client %s is gone; register a new one ('ncmcp clients register') and log in again", cg.ClientID))
	case errors.Is(err, cg):
		return authNeeded(cg, fmt.Sprintf("the server or IdP does not know client %s: check the client id with its admin, then log in again", cg.ClientID))
	}
	return registrationError(err, st)
}
