package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
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

// printTokenRows prints the rows, tab-separated, under a header; an empty
// field shows as "-", and an app password (Login Flow v2) says so where a
// refresh token would be.
func printTokenRows(w io.Writer, now time.Time, rows []TokenRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "SERVER\tACCOUNT\tKIND\tCLIENT\tSCOPES\tEXPIRY\tRENEWAL\tSTORAGE")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return termsafe.String(s)
	}
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
		switch {
		case r.Kind == provision.KindLoginFlow:
			rt = "app password"
		case r.HasRefreshToken:
			rt = "refresh token"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Server, dash(name), r.Kind, dash(r.ClientID), dash(strings.Join(r.Scopes, " ")), dash(when), rt, r.Storage)
	}
}
