package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

func newTokensCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "List and revoke stored tokens",
		Args:  usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newTokensListCmd(g, nil), newTokensRevokeCmd(g, nil))
	return cmd
}

// TokenRow is one row of 'ncmcp tokens list --json'. It never holds a secret.
type TokenRow struct {
	Server   string `json:"server"`
	Subject  string `json:"sub"`
	Username string `json:"username,omitempty"`
	// Kind is "flow1" (ncmcp's own login), "flow2-server-side" (the
	// server's offline refresh token for the account) or "login-flow-v2"
	// (the server's Nextcloud app password for the account).
	Kind              string     `json:"kind"`
	ClientID          string     `json:"client_id,omitempty"`
	Scopes            []string   `json:"scopes"`
	AccessTokenExpiry *time.Time `json:"access_token_expiry,omitempty"`
	ProvisionedAt     *time.Time `json:"provisioned_at,omitempty"`
	HasRefreshToken   bool       `json:"has_refresh_token"`
	// Storage is "keyring" or "file" for flow1, "server" for flow2.
	Storage string `json:"storage"`
}

// TokensListOptions are the inputs of 'ncmcp tokens list'.
type TokensListOptions struct {
	g       *globalOptions
	JSON    bool
	Offline bool
}

func newTokensListCmd(g *globalOptions, runF func(context.Context, *TokensListOptions) error) *cobra.Command {
	opts := &TokensListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every stored token (never the secret itself)",
		Long: `One row per token: the tokens of each account's login (kind flow1), and
what each server holds for the account when it can be asked (not with
--offline): an app password from Login Flow v2 (login-flow-v2) or a refresh
token from Flow 2 (flow2-server-side). --server and --account narrow the
list.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runTokensList(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON on stdout")
	cmd.Flags().BoolVar(&opts.Offline, "offline", false, "do not ask the servers about their own tokens")
	return cmd
}

func runTokensList(ctx context.Context, opts *TokensListOptions) error {
	g, d := opts.g, opts.g.deps
	st, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	rows := []TokenRow{}
	for _, u := range g.selectedServers(cfg) {
		srv := cfg.Servers[u]
		for _, id := range srv.AccountIDs() {
			a := srv.Accounts[id]
			if !g.matches(a) {
				continue
			}
			row := TokenRow{Server: u, Subject: a.Subject, Username: a.Username, Kind: "flow1", ClientID: a.ClientID, Scopes: a.Scopes, HasRefreshToken: a.HasRefreshToken, Storage: a.Storage}
			if row.Scopes == nil {
				row.Scopes = []string{}
			}
			if !a.AccessTokenExpiry.IsZero() {
				t := a.AccessTokenExpiry
				row.AccessTokenExpiry = &t
			}
			rows = append(rows, row)
			if opts.Offline {
				continue
			}
			ss := serverSideStatus(ctx, g, st, srv, a)
			switch ss.State {
			case "provisioned":
				kind := "flow2-server-side"
				if ss.Kind == provision.KindLoginFlow {
					kind = provision.KindLoginFlow
				}
				row := TokenRow{Server: u, Subject: a.Subject, Username: a.Username, Kind: kind, ClientID: ss.ClientID, Scopes: ss.Scopes, ProvisionedAt: ss.ProvisionedAt, HasRefreshToken: ss.Kind == provision.KindFlow2, Storage: "server"}
				if row.Scopes == nil {
					row.Scopes = []string{}
				}
				rows = append(rows, row)
			case "unknown":
				fmt.Fprintf(d.Stderr, "note: could not ask %s about its own token for %s: %s\n", u, a.DisplayName(), ss.Reason)
			}
		}
	}
	if opts.JSON {
		return printJSON(d.Stdout, rows)
	}
	printTokenRows(d.Stdout, d.Now(), rows)
	return nil
}

func printTokenRows(w io.Writer, now time.Time, rows []TokenRow) {
	for _, r := range rows {
		name := r.Username
		if name == "" {
			name = r.Subject
		}
		when := ""
		switch {
		case r.AccessTokenExpiry != nil:
			when = "access " + describeExpiry(now, r.AccessTokenExpiry)
		case r.ProvisionedAt != nil:
			when = "provisioned " + r.ProvisionedAt.Local().Format(time.RFC3339)
		}
		rt := "no refresh token"
		if r.HasRefreshToken {
			rt = "refresh token"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\tclient %s\t%s\t%s\t%s\t%s\n", r.Server, name, r.Kind, r.ClientID, strings.Join(r.Scopes, " "), when, rt, r.Storage)
	}
}

// TokensRevokeOptions are the inputs of 'ncmcp tokens revoke'.
type TokensRevokeOptions struct {
	g          *globalOptions
	All        bool
	ServerSide bool
}

func newTokensRevokeCmd(g *globalOptions, runF func(context.Context, *TokensRevokeOptions) error) *cobra.Command {
	opts := &TokensRevokeOptions{g: g}
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke tokens at the IdP (RFC 7009) and remove them from storage",
		Long: `Revoke the selected account's tokens (--server, --account; --all for every
account, on --server only if given): the refresh and access tokens at the
IdP's revocation endpoint where it has one, then removal from storage. With
--server-side, the server's own access for the account (an app password or a
Flow 2 refresh token) is revoked too (MCP tool revoke_nextcloud_access). One line per token says what was done
where. A token that could not be revoked because the IdP was unreachable
stays stored, so that revoking can be tried again.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runTokensRevoke(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every account (on --server, if given)")
	cmd.Flags().BoolVar(&opts.ServerSide, "server-side", false, "also revoke the server's own access (app password or Flow 2 token) for each account")
	return cmd
}

type target struct{ server, sub string }

func runTokensRevoke(ctx context.Context, opts *TokensRevokeOptions) error {
	g := opts.g
	st, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	var targets []target
	if opts.All {
		for _, u := range g.selectedServers(cfg) {
			for _, id := range cfg.Servers[u].AccountIDs() {
				if g.matches(cfg.Servers[u].Accounts[id]) {
					targets = append(targets, target{u, id})
				}
			}
		}
		if len(targets) == 0 {
			return authNeeded(errors.New("no stored tokens to revoke"), "")
		}
	} else {
		srv, acct, err := g.selectAccount(cfg)
		if err != nil {
			return err
		}
		targets = append(targets, target{srv.URL, acct.Subject})
	}
	var failed int
	for _, t := range targets {
		if !revokeAccount(ctx, g, st, cfg, t, opts.ServerSide) {
			failed++
		}
	}
	if failed > 0 {
		return failure(fmt.Errorf("%d of %d accounts could not be revoked completely; see the lines above", failed, len(targets)), "what was not revoked is still stored: run the command again when the IdP or server is reachable")
	}
	return nil
}

// revokeAccount revokes one account's tokens and reports each on stderr. It
// removes the account from storage only when every revocation that was
// attempted succeeded (or there was nothing to revoke at), and returns
// whether it did.
func revokeAccount(ctx context.Context, g *globalOptions, st *store.Store, cfg *store.Config, t target, serverSide bool) bool {
	w := g.deps.Stderr
	srv := cfg.Servers[t.server]
	acct := srv.Accounts[t.sub]
	name := fmt.Sprintf("%s on %s", acct.DisplayName(), t.server)
	ok := true

	if serverSide {
		if msg, err := revokeServerSide(ctx, g, st, srv, acct); err != nil {
			fmt.Fprintf(w, "%s: the server's own access NOT revoked: %s\n", name, oneLine(err.Error()))
			ok = false
		} else {
			fmt.Fprintf(w, "%s: the server's own access revoked by the server (%s)\n", name, oneLine(msg))
		}
	}

	src := g.source(st, srv.URL, acct.Subject)
	tok, err := src.Stored(srv, acct)
	if err != nil {
		err = credentialError(err)
	}
	if err != nil {
		fmt.Fprintf(w, "%s: tokens could not be read: %s\n", name, oneLine(err.Error()))
		return false
	}
	client, err := src.Client(srv, acct.ClientID)
	if err != nil {
		fmt.Fprintf(w, "%s: the client's credentials could not be read (%s); revoking as a public client\n", name, oneLine(err.Error()))
		client = oauth.Client{ID: acct.ClientID}
	}
	hc := g.httpClient()
	remote := true
	for _, part := range []struct{ hint, value, label string }{
		{"refresh_token", tok.RefreshToken, "refresh token"},
		{"access_token", tok.AccessToken, "access token"},
	} {
		if part.value == "" {
			continue
		}
		err := oauth.Revoke(ctx, hc, srv.RevocationEndpoint, client, part.value, part.hint)
		switch {
		case err == nil:
			fmt.Fprintf(w, "%s: %s revoked at %s\n", name, part.label, srv.RevocationEndpoint)
		case errors.Is(err, oauth.ErrNoRevocation):
			if remote {
				fmt.Fprintf(w, "%s: the IdP has no revocation endpoint: tokens removed locally only (they stay valid at the IdP until they expire)\n", name)
			}
			remote = false
		default:
			fmt.Fprintf(w, "%s: %s NOT revoked: %s\n", name, part.label, oneLine(err.Error()))
			ok = false
		}
	}
	if !ok {
		fmt.Fprintf(w, "%s: kept in storage, since not everything could be revoked\n", name)
		return false
	}
	err = st.Update(ctx, func(c *store.Config) error {
		s := c.Servers[t.server]
		if s == nil || s.Accounts[t.sub] == nil {
			return nil
		}
		if err := deleteTokens(st, s.Accounts[t.sub].Storage, t.server, t.sub); err != nil {
			return err
		}
		s.RemoveAccount(t.sub)
		return nil
	})
	if err != nil {
		fmt.Fprintf(w, "%s: could not be removed from storage: %s\n", name, oneLine(err.Error()))
		return false
	}
	fmt.Fprintf(w, "%s: removed from storage (%s)\n", name, acct.Storage)
	return true
}

// revokeServerSide asks the server to delete its own token for the account.
func revokeServerSide(ctx context.Context, g *globalOptions, st *store.Store, srv *store.Server, a *store.Account) (string, error) {
	sess, err := connectMCP(ctx, g, st, srv, a, loginPolicy{}, nil)
	if err != nil {
		return "", err
	}
	defer sess.Close()
	ts, err := provisioningTools(ctx, sess)
	if err != nil {
		return "", err
	}
	return ts.Revoke(ctx, sess, a.Subject)
}
