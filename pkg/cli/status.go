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
	"github.com/ncmcp/ncmcp/pkg/serverinfo"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

// StatusOptions are the inputs of 'ncmcp status'.
type StatusOptions struct {
	g *globalOptions

	JSON bool
	// Offline skips asking the servers about their own tokens.
	Offline bool
}

func newStatusCmd(g *globalOptions, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{g: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the servers and accounts ncmcp is logged in to",
		Long: `Show, per server and account: user and how that identity was established,
client, scopes, access-token expiry, whether a refresh token is stored, and
where; and, asking each server (unless --offline), its version and auth mode,
and whether it holds its own access for the account (an app password from
Login Flow v2, or a refresh token from Flow 2): "unknown" when it cannot be
asked. Exits 4 when not logged in. With --server, only that server.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON on stdout")
	cmd.Flags().BoolVar(&opts.Offline, "offline", false, "do not ask the servers anything (version, their own access for the account)")
	return cmd
}

// StatusJSON is the output of 'ncmcp status --json'.
type StatusJSON struct {
	DefaultServer string         `json:"default_server,omitempty"`
	Servers       []ServerStatus `json:"servers"`
}

// ServerStatus describes one server in StatusJSON.
type ServerStatus struct {
	URL        string `json:"url"`
	Generation int    `json:"generation"`
	Issuer     string `json:"issuer"`
	// Version and AuthMode are the server's own (GET /api/v1/status, servers
	// v0.65 on); empty when it has none or was not asked (--offline).
	Version  string `json:"version,omitempty"`
	AuthMode string `json:"auth_mode,omitempty"`
	// PageOrigin is the origin (Nextcloud's) whose provisioning pages
	// ncmcp opens for this server without asking; empty for none.
	PageOrigin string          `json:"page_origin,omitempty"`
	Accounts   []AccountStatus `json:"accounts"`
}

// AccountStatus describes one account in StatusJSON.
type AccountStatus struct {
	Subject  string `json:"sub"`
	Username string `json:"username,omitempty"`
	Email    string `json:"email,omitempty"`
	// Name is the account's display name (user name, e-mail or subject).
	Name string `json:"name"`
	// Identity says how the account's identity was established:
	// verified_id_token, userinfo, token_response or unknown.
	Identity string `json:"identity"`
	// IdentityOverTLS is set when it was read from an https answer.
	IdentityOverTLS    bool       `json:"identity_over_tls"`
	Active             bool       `json:"active"`
	ClientID           string     `json:"client_id"`
	Scopes             []string   `json:"scopes"`
	AccessTokenExpiry  *time.Time `json:"access_token_expiry"`
	AccessTokenExpired bool       `json:"access_token_expired"`
	HasRefreshToken    bool       `json:"has_refresh_token"`
	Storage            string     `json:"storage"`
	// ServerSide is the server's own access for this account.
	ServerSide ServerSideStatus `json:"server_side"`
}

// ServerSideStatus says whether the server holds its own access for the
// account: State is "provisioned", "not_provisioned", "not_offered" (the
// server runs without offline access) or "unknown" (with Reason).
type ServerSideStatus struct {
	State string `json:"state"`
	// Kind is flow2 (a refresh token) or login-flow-v2 (an app password).
	Kind          string     `json:"kind,omitempty"`
	ProvisionedAt *time.Time `json:"provisioned_at,omitempty"`
	ClientID      string     `json:"client_id,omitempty"`
	Scopes        []string   `json:"scopes,omitempty"`
	// FlowType is Kind, under its earlier name.
	FlowType string `json:"flow_type,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	g, d := opts.g, opts.g.deps
	st, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	out := StatusJSON{DefaultServer: cfg.DefaultServer, Servers: []ServerStatus{}}
	now := d.Now()
	n := 0
	for _, u := range g.selectedServers(cfg) {
		srv := cfg.Servers[u]
		ss := ServerStatus{URL: u, Generation: srv.Generation, Issuer: srv.Issuer, PageOrigin: srv.PageOrigin, Accounts: []AccountStatus{}}
		if !opts.Offline {
			ictx, cancel := context.WithTimeout(ctx, statusAskTimeout)
			if info, err := serverinfo.Get(ictx, g.httpClient(), u); err == nil {
				ss.Version, ss.AuthMode = info.Version, info.AuthMode
			}
			cancel()
		}
		for _, id := range srv.AccountIDs() {
			a := srv.Accounts[id]
			if !g.matches(a) {
				continue
			}
			as := AccountStatus{Subject: a.Subject, Username: a.Username, Email: a.Email, Name: a.DisplayName(),
				Identity: a.Identity, IdentityOverTLS: a.IdentityOverTLS, Active: srv.ActiveAccount == a.Subject,
				ClientID: a.ClientID, Scopes: a.Scopes, HasRefreshToken: a.HasRefreshToken, Storage: a.Storage}
			if as.Scopes == nil {
				as.Scopes = []string{}
			}
			if !a.AccessTokenExpiry.IsZero() {
				t := a.AccessTokenExpiry
				as.AccessTokenExpiry = &t
				as.AccessTokenExpired = !now.Before(t)
			}
			as.ServerSide = ServerSideStatus{State: "unknown", Reason: "not asked (--offline)"}
			if !opts.Offline {
				as.ServerSide = serverSideStatus(ctx, g, st, srv, a)
			}
			ss.Accounts = append(ss.Accounts, as)
			n++
		}
		out.Servers = append(out.Servers, ss)
	}
	if opts.JSON {
		if err := printJSON(d.Stdout, out); err != nil {
			return err
		}
	} else {
		printStatus(d.Stderr, now, out)
	}
	if n == 0 {
		where := "any server"
		if g.Server != "" {
			where = g.Server
		}
		return authNeeded(errors.New("not logged in to "+where), "run 'ncmcp login --server URL'")
	}
	return nil
}

func printStatus(w io.Writer, now time.Time, s StatusJSON) {
	for _, srv := range s.Servers {
		def := ""
		if srv.URL == s.DefaultServer {
			def = " (default)"
		}
		fmt.Fprintf(w, "%s%s\n  generation %d, issuer %s\n", srv.URL, def, srv.Generation, srv.Issuer)
		if srv.Version != "" {
			fmt.Fprintf(w, "  server version %s, auth mode %s\n", oneLine(srv.Version), oneLine(srv.AuthMode))
		}
		if srv.PageOrigin != "" {
			fmt.Fprintf(w, "  opens provisioning pages on %s without asking\n", srv.PageOrigin)
		}
		for _, a := range srv.Accounts {
			mark := " "
			if a.Active {
				mark = "*"
			}
			if a.Identity == string(oauth.IdentityUnknown) {
				fmt.Fprintf(w, "  %s %s\n", mark, a.Name)
			} else {
				fmt.Fprintf(w, "  %s %s (sub %s)\n", mark, a.Name, a.Subject)
			}
			fmt.Fprintf(w, "      identity:      %s\n", oauth.DescribeSource(oauth.IdentitySource(a.Identity), a.IdentityOverTLS))
			fmt.Fprintf(w, "      client:        %s\n", a.ClientID)
			scopes := strings.Join(a.Scopes, " ")
			if scopes == "" {
				scopes = "not reported by the IdP"
			}
			fmt.Fprintf(w, "      scopes:        %s\n", scopes)
			fmt.Fprintf(w, "      access token:  %s\n", describeExpiry(now, a.AccessTokenExpiry))
			rt := "no (log in again when the access token expires)"
			if a.HasRefreshToken {
				rt = "yes"
			}
			fmt.Fprintf(w, "      refresh token: %s\n", rt)
			fmt.Fprintf(w, "      storage:       %s\n", a.Storage)
			fmt.Fprintf(w, "      server-side:   %s\n", describeServerSide(a.ServerSide))
		}
	}
}

func describeExpiry(now time.Time, t *time.Time) string {
	switch {
	case t == nil:
		return "expiry unknown"
	case now.Before(*t):
		return fmt.Sprintf("valid for %s (until %s)", t.Sub(now).Round(time.Second), t.Local().Format(time.RFC3339))
	default:
		return fmt.Sprintf("expired %s ago", now.Sub(*t).Round(time.Second))
	}
}

// statusAskTimeout bounds how long status waits for each server.
const statusAskTimeout = 10 * time.Second

// serverSideStatus asks the server whether it holds an offline token for
// the account; any failure is "unknown" with the reason, never an error.
func serverSideStatus(ctx context.Context, g *globalOptions, st *store.Store, srv *store.Server, a *store.Account) ServerSideStatus {
	ctx, cancel := context.WithTimeout(ctx, statusAskTimeout)
	defer cancel()
	unknown := func(err error) ServerSideStatus {
		return ServerSideStatus{State: "unknown", Reason: oneLine(err.Error())}
	}
	sess, err := connectMCP(ctx, g, st, srv, a, loginPolicy{}, nil)
	if err != nil {
		return unknown(err)
	}
	defer sess.Close()
	tools, err := sess.Tools(ctx)
	if err != nil {
		return unknown(err)
	}
	ts, err := provision.Detect(tools)
	if err != nil {
		return ServerSideStatus{State: "not_offered", Reason: "the server runs without offline access"}
	}
	s, err := ts.Status(ctx, sess, a.Subject)
	if err != nil {
		return unknown(err)
	}
	if !s.Provisioned {
		return ServerSideStatus{State: "not_provisioned"}
	}
	return ServerSideStatus{State: "provisioned", Kind: s.Kind, ProvisionedAt: s.ProvisionedAt, ClientID: s.ClientID, Scopes: s.Scopes, FlowType: s.Kind}
}

func describeServerSide(s ServerSideStatus) string {
	switch s.State {
	case "provisioned":
		out := "provisioned"
		if kind, known := credentialKind(s.Kind); known {
			out += ", " + kind
		}
		if s.ProvisionedAt != nil {
			out += ", since " + s.ProvisionedAt.Local().Format(time.RFC3339)
		}
		if len(s.Scopes) > 0 {
			out += ", scopes " + strings.Join(s.Scopes, " ")
		}
		return oneLine(out)
	case "not_provisioned":
		return "not provisioned ('ncmcp provision' gives the server its own access)"
	case "not_offered":
		return "not offered: " + s.Reason
	}
	return "unknown: " + oneLine(s.Reason)
}
