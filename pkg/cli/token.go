package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

// TokenOptions are the inputs of 'ncmcp token'.
type TokenOptions struct {
	g *globalOptions

	MinTTL time.Duration
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
stored before the access token is printed. Only this command prints a secret.`,
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
	return cmd
}

// validFor reports whether t is still valid minTTL from now. An unknown
// expiry counts as valid: the IdP did not say.
func validFor(t *store.Tokens, now time.Time, minTTL time.Duration) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.Sub(now) > minTTL)
}

func runToken(ctx context.Context, opts *TokenOptions) error {
	g, d := opts.g, opts.g.deps
	st, err := g.store()
	if err != nil {
		return err
	}
	cfg, err := store.LoadConfig(st.Dir)
	if err != nil {
		return failure(err, "")
	}
	srv, acct, err := g.selectAccount(cfg)
	if err != nil {
		return err
	}
	tok, err := readTokens(st, srv, acct)
	if err != nil {
		return err
	}
	if !validFor(tok, d.Now(), opts.MinTTL) {
		if tok, err = refreshLocked(ctx, g, st, srv.URL, acct.Subject, opts.MinTTL); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(d.Stdout, tok.AccessToken)
	return err
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
// processes only the first refreshes and the others use its result.
func refreshLocked(ctx context.Context, g *globalOptions, st *store.Store, serverURL, subject string, minTTL time.Duration) (*store.Tokens, error) {
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	unlock, err := st.Lock(lctx)
	if err != nil {
		return nil, failure(err, "")
	}
	defer unlock()

	cfg, err := store.LoadConfig(st.Dir)
	if err != nil {
		return nil, failure(err, "")
	}
	srv := cfg.Servers[serverURL]
	var acct *store.Account
	if srv != nil {
		acct = srv.Accounts[subject]
	}
	if acct == nil {
		return nil, authNeeded(fmt.Errorf("%s was logged out of %s meanwhile", subject, serverURL), "run 'ncmcp login --server "+serverURL+"'")
	}
	tok, err := readTokens(st, srv, acct)
	if err != nil {
		return nil, err
	}
	now := g.deps.Now()
	if validFor(tok, now, minTTL) {
		return tok, nil // another process refreshed while we waited
	}
	if tok.RefreshToken == "" {
		return nil, authNeeded(fmt.Errorf("the access token of %s expires at %s and there is no refresh token", acct.Subject, tok.Expiry.Local().Format(time.RFC3339)),
			"log in again with 'ncmcp login'; for tokens that renew, the server admin must allow offline_access")
	}
	client := oauth.Client{ID: acct.ClientID, Secret: g.deps.Getenv("NCMCP_CLIENT_SECRET"), AuthMethods: srv.TokenAuthMethods}
	if client.Secret == "" {
		if c := srv.Client(acct.ClientID); c != nil && c.Confidential {
			if client.Secret, err = readClientSecret(st, srv.URL, c); err != nil {
				return nil, err
			}
		}
	}
	fresh, err := oauth.Refresh(ctx, g.httpClient(), srv.TokenEndpoint, client, tok.RefreshToken)
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) && te.Refused() {
			return nil, authNeeded(fmt.Errorf("the IdP refused the refresh token: %w", err), "log in again: 'ncmcp login --server "+srv.URL+"'")
		}
		return nil, failure(err, "try again when the IdP is reachable; the stored tokens are unchanged")
	}
	next := &store.Tokens{AccessToken: fresh.AccessToken, TokenType: fresh.Type(), RefreshToken: fresh.RefreshToken, Expiry: fresh.Expiry}
	if next.RefreshToken == "" {
		next.RefreshToken = tok.RefreshToken
	}
	if err := st.PutTokensIn(acct.Storage, srv.URL, acct.Subject, next); err != nil {
		// The IdP may have rotated the refresh token: the new one is lost.
		return nil, failure(fmt.Errorf("store the refreshed tokens: %w", err), "if the IdP rotates refresh tokens, log in again once storage works")
	}
	acct.AccessTokenExpiry = next.Expiry
	acct.HasRefreshToken = next.RefreshToken != ""
	if s := oauth.Scopes(fresh); s != nil {
		acct.Scopes = s
	}
	if err := store.SaveConfig(st.Dir, cfg); err != nil {
		fmt.Fprintf(g.deps.Stderr, "warning: could not update the config after refreshing: %v\n", err)
	}
	return next, nil
}
