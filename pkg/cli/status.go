package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

// StatusOptions are the inputs of 'ncmcp status'.
type StatusOptions struct {
	g *globalOptions

	JSON bool
}

func newStatusCmd(g *globalOptions, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{g: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the servers and accounts ncmcp is logged in to",
		Long: `Show, per server and account: user, client, scopes, access-token expiry,
whether a refresh token is stored, and where. Reads no secret. Exits 4 when
not logged in. With --server, only that server.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON on stdout")
	return cmd
}

// StatusJSON is the output of 'ncmcp status --json'.
type StatusJSON struct {
	DefaultServer string         `json:"default_server,omitempty"`
	Servers       []ServerStatus `json:"servers"`
}

// ServerStatus describes one server in StatusJSON.
type ServerStatus struct {
	URL        string          `json:"url"`
	Generation int             `json:"generation"`
	Issuer     string          `json:"issuer"`
	Accounts   []AccountStatus `json:"accounts"`
}

// AccountStatus describes one account in StatusJSON.
type AccountStatus struct {
	Subject            string     `json:"sub"`
	Username           string     `json:"username,omitempty"`
	Email              string     `json:"email,omitempty"`
	Active             bool       `json:"active"`
	ClientID           string     `json:"client_id"`
	Scopes             []string   `json:"scopes"`
	AccessTokenExpiry  *time.Time `json:"access_token_expiry"`
	AccessTokenExpired bool       `json:"access_token_expired"`
	HasRefreshToken    bool       `json:"has_refresh_token"`
	Storage            string     `json:"storage"`
}

func runStatus(_ context.Context, opts *StatusOptions) error {
	g, d := opts.g, opts.g.deps
	st, err := g.store()
	if err != nil {
		return err
	}
	cfg, err := store.LoadConfig(st.Dir)
	if err != nil {
		return failure(err, "")
	}
	out := StatusJSON{DefaultServer: cfg.DefaultServer, Servers: []ServerStatus{}}
	now := d.Now()
	n := 0
	for _, u := range cfg.ServerURLs() {
		if g.Server != "" && u != g.Server {
			continue
		}
		srv := cfg.Servers[u]
		ss := ServerStatus{URL: u, Generation: srv.Generation, Issuer: srv.Issuer, Accounts: []AccountStatus{}}
		for _, id := range srv.AccountIDs() {
			a := srv.Accounts[id]
			if g.Account != "" && a.Subject != g.Account && a.Username != g.Account && a.Email != g.Account {
				continue
			}
			as := AccountStatus{Subject: a.Subject, Username: a.Username, Email: a.Email, Active: srv.ActiveAccount == a.Subject,
				ClientID: a.ClientID, Scopes: a.Scopes, HasRefreshToken: a.HasRefreshToken, Storage: a.Storage}
			if as.Scopes == nil {
				as.Scopes = []string{}
			}
			if !a.AccessTokenExpiry.IsZero() {
				t := a.AccessTokenExpiry
				as.AccessTokenExpiry = &t
				as.AccessTokenExpired = !now.Before(t)
			}
			ss.Accounts = append(ss.Accounts, as)
			n++
		}
		out.Servers = append(out.Servers, ss)
	}
	if opts.JSON {
		enc := json.NewEncoder(d.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
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
		for _, a := range srv.Accounts {
			mark := " "
			if a.Active {
				mark = "*"
			}
			name := a.Username
			if name == "" {
				name = a.Subject
			}
			fmt.Fprintf(w, "  %s %s (sub %s)\n", mark, name, a.Subject)
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
