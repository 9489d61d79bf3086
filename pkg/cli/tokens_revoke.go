package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/revoke"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

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

// revokeAccount revokes one account's tokens and reports each step on
// stderr. It removes the account from storage only when every revocation
// that was attempted succeeded (or there was nothing to revoke at), and
// returns whether it did.
func revokeAccount(ctx context.Context, g *globalOptions, st *store.Store, cfg *store.Config, t target, serverSide bool) bool {
	w := g.deps.Stderr
	srv := cfg.Servers[t.server]
	acct := srv.Accounts[t.sub]
	r := &revoke.Revoker{Store: st, HTTP: g.httpClient(),
		Source: func(serverURL, subject string) *credential.Source { return g.source(st, serverURL, subject) },
		ServerSide: func(ctx context.Context, srv *store.Server, a *store.Account) (string, error) {
			return revokeServerSide(ctx, g, st, srv, a)
		},
	}
	rep := r.Account(ctx, srv, acct, serverSide)
	name := fmt.Sprintf("%s on %s", acct.DisplayName(), t.server)
	localOnly := false
	for _, s := range rep.Steps {
		msg := ""
		if s.Err != nil {
			msg = oneLine(credentialError(s.Err).Error())
		}
		switch {
		case s.Kind == revoke.StepServerSide && s.Err != nil:
			fmt.Fprintf(w, "%s: the server's own access NOT revoked: %s\n", name, msg)
		case s.Kind == revoke.StepServerSide:
			fmt.Fprintf(w, "%s: the server's own access revoked by the server (%s)\n", name, oneLine(s.Answer))
		case s.Kind == revoke.StepRead:
			fmt.Fprintf(w, "%s: tokens could not be read: %s\n", name, msg)
		case s.Kind == revoke.StepClient:
			fmt.Fprintf(w, "%s: the client's credentials could not be read (%s); revoking as a public client\n", name, msg)
		case s.Kind == revoke.StepRemove && s.Err != nil:
			fmt.Fprintf(w, "%s: could not be removed from storage: %s\n", name, msg)
		case s.Kind == revoke.StepRemove:
			fmt.Fprintf(w, "%s: removed from storage (%s)\n", name, acct.Storage)
		case s.LocalOnly:
			if !localOnly {
				fmt.Fprintf(w, "%s: the IdP has no revocation endpoint: tokens removed locally only (they stay valid at the IdP until they expire)\n", name)
			}
			localOnly = true
		case s.Err != nil:
			fmt.Fprintf(w, "%s: %s NOT revoked: %s\n", name, s.Kind, msg)
		default:
			fmt.Fprintf(w, "%s: %s revoked at %s\n", name, s.Kind, s.Endpoint)
		}
	}
	if !rep.Removed && !slices.ContainsFunc(rep.Steps, func(s revoke.Step) bool { return s.Kind == revoke.StepRead || s.Kind == revoke.StepRemove }) {
		fmt.Fprintf(w, "%s: kept in storage, since not everything could be revoked\n", name)
	}
	return rep.Removed
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
