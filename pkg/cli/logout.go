package cli

import (
	"context"
	"fmt"
	"github.com/ncmcp/ncmcp/pkg/store"

	"github.com/spf13/cobra"
)

// LogoutOptions are the inputs of 'ncmcp logout'.
type LogoutOptions struct {
	g *globalOptions

	// Revoke also revokes the tokens at the IdP (RFC 7009).
	Revoke bool
}

func newLogoutCmd(g *globalOptions, runF func(context.Context, *LogoutOptions) error) *cobra.Command {
	opts := &LogoutOptions{g: g}
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Forget the selected account's tokens",
		Long: `Remove the selected account (--server, --account; default: the active one)
and its tokens from storage. Without --revoke the tokens are not revoked at
the IdP: they stay valid there until they expire. With --revoke they are
revoked first (RFC 7009, where the IdP offers it), as 'ncmcp tokens revoke'
does.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLogout(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Revoke, "revoke", false, "also revoke the tokens at the IdP")
	return cmd
}

func runLogout(ctx context.Context, opts *LogoutOptions) error {
	g, d := opts.g, opts.g.deps
	st, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	srv, acct, err := g.selectAccount(cfg)
	if err != nil {
		return err
	}
	if opts.Revoke {
		if !revokeAccount(ctx, g, st, cfg, target{srv.URL, acct.Subject}, false) {
			return failure(fmt.Errorf("%s was not logged out: the tokens could not be revoked", acct.DisplayName()), "run 'ncmcp logout --revoke' again when the IdP is reachable, or 'ncmcp logout' to only forget them here")
		}
		forgetPageOrigin(ctx, g, st, srv.URL)
		return nil
	}
	gone, err := st.RemoveAccount(ctx, srv.URL, acct.Subject)
	if err != nil {
		return failure(err, "unlock the OS keyring and try again; nothing was changed")
	}
	if gone == nil {
		gone = acct // logged out meanwhile by another process
	}
	name := gone.DisplayName()
	fmt.Fprintf(d.Stderr, "Logged out %s from %s; its tokens were removed from the %s storage (not revoked at the IdP).\n", name, srv.URL, gone.Storage)
	forgetPageOrigin(ctx, g, st, srv.URL)
	return nil
}

// forgetPageOrigin forgets the page origin approved for a server once its
// last account has logged out.
func forgetPageOrigin(ctx context.Context, g *globalOptions, st *store.Store, serverURL string) {
	var origin string
	err := st.Update(ctx, func(cfg *store.Config) error {
		if srv := cfg.Servers[serverURL]; srv != nil && len(srv.Accounts) == 0 {
			origin, srv.PageOrigin = srv.PageOrigin, ""
		}
		return nil
	})
	switch {
	case err != nil:
		fmt.Fprintf(g.deps.Stderr, "warning: could not forget the approved page origin of %s: %s\n", serverURL, oneLine(err.Error()))
	case origin != "":
		fmt.Fprintf(g.deps.Stderr, "ncmcp will ask again before opening pages on %s for %s.\n", origin, serverURL)
	}
}
