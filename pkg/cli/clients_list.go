package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/clients"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

// ClientJSON is one row of 'ncmcp clients list --json'.
type ClientJSON struct {
	Server          string     `json:"server"`
	ClientID        string     `json:"client_id"`
	Type            string     `json:"type"`
	Source          string     `json:"source"`
	RedirectPort    int        `json:"redirect_port,omitempty"`
	SecretExpiresAt *time.Time `json:"client_secret_expires_at,omitempty"`
	RegistrationURI string     `json:"registration_client_uri,omitempty"`
	Accounts        []string   `json:"accounts"`
}

// ClientsListOptions are the inputs of 'ncmcp clients list'.
type ClientsListOptions struct {
	g    *globalOptions
	JSON bool
}

func newClientsListCmd(g *globalOptions, runF func(context.Context, *ClientsListOptions) error) *cobra.Command {
	opts := &ClientsListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the stored OAuth clients",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runClientsList(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON on stdout")
	return cmd
}

func runClientsList(_ context.Context, opts *ClientsListOptions) error {
	g, d := opts.g, opts.g.deps
	_, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	rows := []ClientJSON{}
	for _, u := range g.selectedServers(cfg) {
		srv := cfg.Servers[u]
		for _, c := range srv.Clients {
			row := ClientJSON{Server: u, ClientID: c.ID, Type: "public", Source: "added", RedirectPort: c.RedirectPort, RegistrationURI: c.RegistrationURI, Accounts: []string{}}
			if c.Confidential {
				row.Type = "confidential"
			}
			if c.Registered {
				row.Source = "registered"
			}
			if !c.SecretExpiresAt.IsZero() {
				t := c.SecretExpiresAt
				row.SecretExpiresAt = &t
			}
			for _, id := range srv.AccountIDs() {
				if a := srv.Accounts[id]; a.ClientID == c.ID {
					row.Accounts = append(row.Accounts, a.DisplayName())
				}
			}
			rows = append(rows, row)
		}
	}
	if opts.JSON {
		return printJSON(d.Stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(d.Stderr, "No clients stored: 'ncmcp clients register' or 'ncmcp clients add CLIENT_ID'.")
		return nil
	}
	for _, r := range rows {
		port := "any port"
		if r.RedirectPort != 0 {
			port = fmt.Sprintf("port %d", r.RedirectPort)
		}
		fmt.Fprintf(d.Stdout, "%s\t%s\t%s, %s, %s", r.Server, r.ClientID, r.Type, r.Source, port)
		if r.SecretExpiresAt != nil {
			fmt.Fprintf(d.Stdout, ", secret expires %s", r.SecretExpiresAt.Local().Format(time.RFC3339))
		}
		if len(r.Accounts) > 0 {
			fmt.Fprintf(d.Stdout, ", used by %s", strings.Join(r.Accounts, " "))
		}
		fmt.Fprintln(d.Stdout)
	}
	return nil
}

// ClientsRemoveOptions are the inputs of 'ncmcp clients remove'.
type ClientsRemoveOptions struct {
	g         *globalOptions
	ClientID  string
	LocalOnly bool
}

func newClientsRemoveCmd(g *globalOptions, runF func(context.Context, *ClientsRemoveOptions) error) *cobra.Command {
	opts := &ClientsRemoveOptions{g: g}
	cmd := &cobra.Command{
		Use:   "remove CLIENT_ID",
		Short: "Delete a registration (RFC 7592) and forget the client",
		Long: `Delete the client's registration at its registration_client_uri when ncmcp
holds a registration access token (RFC 7592), then forget the client and its
secrets. When the deletion fails nothing is forgotten; --local-only skips it.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ClientID = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runClientsRemove(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.LocalOnly, "local-only", false, "only forget the client here; leave the registration at the server or IdP")
	return cmd
}

func runClientsRemove(ctx context.Context, opts *ClientsRemoveOptions) error {
	g, d := opts.g, opts.g.deps
	st, serverURL, err := g.setupServer()
	if err != nil {
		return err
	}
	res, err := g.clients(st).Remove(ctx, serverURL, opts.ClientID, opts.LocalOnly)
	var (
		ns *clients.NotStoredError
		de *clients.DeleteError
		sk *store.SecretError
	)
	switch {
	case errors.As(err, &ns):
		return usageErrorf("'ncmcp clients list' shows the stored clients", "%v", err)
	case errors.As(err, &de):
		return failure(err, "try again when the server answers, or forget it here only with --local-only")
	case errors.As(err, &sk):
		return failure(err, "unlock the keyring, or use --local-only")
	case err != nil:
		return failure(err, "unlock the keyring and try again")
	}
	deleted, users := res.Deleted, res.Users
	if deleted {
		fmt.Fprintf(d.Stderr, "Deleted the registration of %s and forgot the client.\n", opts.ClientID)
	} else {
		fmt.Fprintf(d.Stderr, "Forgot client %s (its registration, if any, was left alone).\n", opts.ClientID)
	}
	if len(users) > 0 {
		fmt.Fprintf(d.Stderr, "warning: %s logged in with this client; refreshing their tokens will fail: log in again with another client.\n", strings.Join(users, ", "))
	}
	return nil
}
