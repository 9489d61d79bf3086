package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/revoke"
	"github.com/ncmcp/ncmcp/pkg/store"

	"github.com/spf13/cobra"
)

// LogoutOptions are the inputs of 'ncmcp logout'.
type LogoutOptions struct {
	g *globalOptions

	// Revoke also revokes the tokens at the authorization server (RFC 7009).
	Revoke bool
	// ServerSide first has the server end its own credential for the
	// account (an app password or a Flow 2 refresh token).
	ServerSide bool
}

func newLogoutCmd(g *globalOptions, runF func(context.Context, *LogoutOptions) error) *cobra.Command {
	opts := &LogoutOptions{g: g}
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Forget the selected account's tokens",
		Long: `Remove the selected account (--server, --account; default: the active one)
and its tokens from storage, and say what became of each credential:

  - the refresh and access tokens: without --revoke they are not revoked
    and stay valid until they expire; with --revoke they are revoked first
    (RFC 7009), where the authorization server has a revocation endpoint
    (generation-2 servers and Nextcloud's oidc app have none);
  - the server's own credential for the account (an app password or a
    Flow 2 refresh token, from 'ncmcp provision'), which ncmcp asks the
    server about: it stays unless --server-side ends it. Ending it needs
    the account's token, so it is done first.

'ncmcp logout --server-side --revoke' ends both. When something asked for
was not revoked, ncmcp lists what was and what was not, and exits 1. When
the server could not end its credential, or the IdP could not be reached,
the account stays stored so that the logout can be tried again.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLogout(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Revoke, "revoke", false, "also revoke the tokens at the authorization server (RFC 7009)")
	cmd.Flags().BoolVar(&opts.ServerSide, "server-side", false, "first have the server end its own credential for the account (app password or Flow 2 token)")
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
	r := &revoke.Revoker{Store: st, HTTP: g.httpClient(),
		Source: func(serverURL, subject string) *credential.Source { return g.source(st, serverURL, subject) },
		ServerSide: func(ctx context.Context, srv *store.Server, a *store.Account) (string, error) {
			return revokeServerSide(ctx, g, st, srv, a)
		},
		ServerStatus: func(ctx context.Context, srv *store.Server, a *store.Account) revoke.ServerCredential {
			return serverCredential(serverSideStatus(ctx, g, st, srv, a))
		},
	}
	rep := r.Logout(ctx, srv, acct, revoke.LogoutOptions{Revoke: opts.Revoke, ServerSide: opts.ServerSide})
	printLogout(d.Stderr, d.Now(), rep)
	if rep.Removed {
		forgetPageOrigin(ctx, g, st, srv.URL)
	}
	return logoutResult(d.Stderr, rep)
}

// serverCredential maps what 'ncmcp status' reports of the server's own
// access to the revoke package's terms.
func serverCredential(s ServerSideStatus) revoke.ServerCredential {
	c := revoke.ServerCredential{Kind: s.Kind, Since: s.ProvisionedAt, Reason: s.Reason}
	switch s.State {
	case "provisioned":
		c.State = revoke.Held
	case "not_provisioned":
		c.State = revoke.NotHeld
	case "not_offered":
		c.State = revoke.NotOffered
	default:
		c.State = revoke.Unknown
	}
	return c
}

// serverCredentialName names the server's own credential: "the
// server's app password (...)".
func serverCredentialName(c revoke.ServerCredential) string {
	switch c.Kind {
	case provision.KindLoginFlow:
		return "the server's app password (Nextcloud Login Flow v2)"
	case provision.KindFlow2:
		return "the server's refresh token (Flow 2)"
	case "":
		return "the server's own credential"
	}
	return "the server's own credential (" + oneLine(c.Kind) + ")"
}

// serverCredentialNoun is serverCredentialName with an indefinite
// article: "an app password (...)".
func serverCredentialNoun(c revoke.ServerCredential) string {
	switch c.Kind {
	case provision.KindLoginFlow:
		return "an app password (Nextcloud Login Flow v2)"
	case provision.KindFlow2:
		return "a refresh token (Flow 2)"
	case "":
		return "a credential of its own"
	}
	return "a credential of its own (" + oneLine(c.Kind) + ")"
}

// logoutLabelWidth aligns the lines of printLogout.
const logoutLabelWidth = 25

// printLogout says, one line per credential, what became of it.
func printLogout(w io.Writer, now time.Time, rep *revoke.LogoutReport) {
	acct, srv := rep.Account, rep.Server
	name := acct.DisplayName()
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-*s %s\n", logoutLabelWidth, label+":", oneLine(fmt.Sprintf(format, args...)))
	}
	fmt.Fprintln(w, oneLine(fmt.Sprintf("Logging out %s from %s:", name, srv.URL)))
	line("server's own credential", "%s", describeServerSideFate(rep, name))
	for _, tk := range []struct {
		label string
		c     revoke.Credential
	}{{"refresh token", rep.RefreshToken}, {"access token", rep.AccessToken}} {
		line(tk.label, "%s", describeTokenFate(rep, tk.c, tk.label == "access token", now))
	}
	switch {
	case rep.Removed:
		line("stored account", "removed, with its tokens, from the %s storage", acct.Storage)
	case rep.RemoveErr != nil:
		line("stored account", "NOT removed: %s", credentialError(rep.RemoveErr).Error())
	default:
		line("stored account", "kept, with its tokens, so that the logout can be tried again")
	}
	if rep.ClientErr != nil {
		fmt.Fprintf(w, "  note: the client's credentials could not be read (%s); the tokens were revoked as a public client's\n", oneLine(rep.ClientErr.Error()))
	}
	if rep.Held.State == revoke.Held && rep.ServerSide.Fate == revoke.NotAsked {
		what := serverCredentialName(rep.Held)
		how := "'ncmcp logout --server-side' ends it"
		if rep.Removed {
			how = fmt.Sprintf("to end it, log in again ('ncmcp login --server %s') and run 'ncmcp logout --server-side'", srv.URL)
		}
		if rep.Held.Kind == provision.KindLoginFlow {
			how += ", or delete the app password in Nextcloud (Settings > Security > Devices & sessions)"
		}
		fmt.Fprintln(w, oneLine(fmt.Sprintf("The %s for %s stays valid: the server keeps using it; %s.", strings.TrimPrefix(what, "the "), name, how)))
	}
}

// describeServerSideFate says what became of the server's own credential.
func describeServerSideFate(rep *revoke.LogoutReport, name string) string {
	held := rep.Held
	what := serverCredentialNoun(held)
	since := ""
	if held.Since != nil {
		since = " (provisioned " + held.Since.Local().Format(time.RFC3339) + ")"
	}
	switch c := rep.ServerSide; c.Fate {
	case revoke.Ended:
		out := "ended by the server"
		if held.State == revoke.Held {
			out += ": it held " + what + since
		}
		if c.Answer != "" {
			out += fmt.Sprintf(" (its answer: %s)", c.Answer)
		}
		return out
	case revoke.Failed:
		out := "NOT ended"
		if held.State == revoke.Held {
			out += " (the server holds " + what + since + ")"
		}
		return out + ": " + c.Err.Error()
	}
	switch held.State {
	case revoke.Held:
		return "STAYS (not asked: --server-side): the server holds " + what + " for " + name + since + ", per its status tool"
	case revoke.NotHeld:
		return "none: the server holds no credential of its own for " + name + ", per its status tool"
	case revoke.NotOffered:
		return "none: " + held.Reason
	}
	return "unknown: the server could not be asked (" + held.Reason + "); if it holds one, it stays"
}

// describeTokenFate says what became of one of the account's tokens.
func describeTokenFate(rep *revoke.LogoutReport, c revoke.Credential, access bool, now time.Time) string {
	valid := "it stays valid until it expires"
	if t := rep.Account.AccessTokenExpiry; access && !t.IsZero() {
		if now.Before(t) {
			valid += " (" + t.Local().Format(time.RFC3339) + ")"
		} else {
			valid = "it has expired already"
		}
	}
	switch c.Fate {
	case revoke.Ended:
		return "revoked at " + c.Endpoint
	case revoke.Absent:
		return "none stored"
	case revoke.NoEndpoint:
		out := "NOT revoked: " + noEndpointWhere(rep.Server) + " has no revocation endpoint"
		if rep.Removed {
			out += "; removed locally only"
		}
		return out + "; " + valid
	case revoke.Failed:
		return "NOT revoked: " + credentialError(c.Err).Error()
	case revoke.Untried:
		return "NOT revoked: not tried, since the server's own credential was not ended (ending it needs the tokens)"
	}
	return "not revoked (not asked: --revoke); " + valid
}

// noEndpointWhere names the authorization server that lacks a revocation
// endpoint.
func noEndpointWhere(srv *store.Server) string {
	if srv.Generation == 2 {
		return "the server (generation 2, its own authorization server, relaying the IdP's tokens)"
	}
	return "the IdP (" + srv.Issuer + ")"
}

// logoutResult returns nil when everything asked was done, else an error
// (exit 1) that lists what was and what was not revoked; either way it
// ends with a summary line.
func logoutResult(w io.Writer, rep *revoke.LogoutReport) error {
	name := rep.Account.DisplayName()
	var revoked, stayed []string
	// stays names each way a credential can stay valid.
	add := func(label string, c revoke.Credential, stays map[revoke.Fate]string) {
		if c.Fate == revoke.Ended {
			revoked = append(revoked, label)
		} else if why, ok := stays[c.Fate]; ok {
			stayed = append(stayed, label+" ("+why+")")
		}
	}
	if rep.Held.State == revoke.Held || rep.ServerSide.Fate == revoke.Ended || rep.ServerSide.Fate == revoke.Failed {
		add(serverCredentialName(rep.Held), rep.ServerSide, map[revoke.Fate]string{revoke.NotAsked: "not asked", revoke.Failed: "not ended"})
	}
	tokenStays := map[revoke.Fate]string{revoke.NotAsked: "not asked", revoke.NoEndpoint: "no revocation endpoint",
		revoke.Failed: "still stored", revoke.Untried: "still stored"}
	add("the refresh token", rep.RefreshToken, tokenStays)
	add("the access token", rep.AccessToken, tokenStays)
	list := func(xs []string) string {
		if len(xs) == 0 {
			return "nothing"
		}
		return strings.Join(xs, ", ")
	}
	summary := fmt.Sprintf("revoked: %s; NOT revoked, still valid: %s", list(revoked), list(stayed))
	if rep.Complete() {
		fmt.Fprintln(w, oneLine(fmt.Sprintf("Logged out %s from %s (%s).", name, rep.Server.URL, summary)))
		return nil
	}
	msg := fmt.Sprintf("%s was not logged out from %s: %s", name, rep.Server.URL, summary)
	if rep.Removed {
		msg = fmt.Sprintf("%s was logged out from %s, but not everything was revoked: %s", name, rep.Server.URL, summary)
	}
	return failure(errors.New(msg), logoutHint(rep))
}

// logoutHint says what to do about the first thing that stopped a logout.
func logoutHint(rep *revoke.LogoutReport) string {
	retry := "ncmcp logout"
	if rep.Asked.ServerSide {
		retry += " --server-side"
	}
	if rep.Asked.Revoke {
		retry += " --revoke"
	}
	var e *Error
	switch {
	case rep.ServerSide.Fate == revoke.Failed:
		hint := "check that the server is reachable"
		var still *revoke.StillHeldError
		switch {
		case errors.As(rep.ServerSide.Err, &still):
			hint = "the server's " + provision.ToolRevoke + " did not remove it: its admin can, and its logs say why"
		case errors.As(toolFailure(rep.ServerSide.Err, rep.Server.URL), &e) && e.Hint != "":
			hint = e.Hint
		}
		return strings.TrimSuffix(hint, ".") + "; then run '" + retry + "' again (nothing else was done), or leave out --server-side to keep the server's credential"
	case rep.RefreshToken.Fate == revoke.Failed || rep.AccessToken.Fate == revoke.Failed:
		c := rep.RefreshToken
		if c.Fate != revoke.Failed {
			c = rep.AccessToken
		}
		if errors.As(credentialError(c.Err), &e) && e.Hint != "" {
			return e.Hint + "; then run '" + retry + "' again"
		}
		return "run '" + retry + "' again when the IdP is reachable, or 'ncmcp logout' to only forget the tokens here"
	case rep.RemoveErr != nil:
		return "unlock the OS keyring and run '" + retry + "' again"
	}
	return noEndpointWhere(rep.Server) + " offers no revocation endpoint, so nothing can revoke those tokens before they expire; ncmcp no longer holds them"
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
