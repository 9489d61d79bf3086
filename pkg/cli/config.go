package cli

import (
	"context"
	"fmt"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

// configKeys are the settings 'ncmcp config' reads and writes.
var configKeys = []string{"default-server", "active-account", "page-origin"}

func newConfigCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change settings: default-server, active-account, page-origin",
		Long: `Settings kept in the config file:

  default-server   the server used when --server is not given
  active-account   the account used on a server when --account is not
                   given (per server: --server selects which)
  page-origin      the origin (your Nextcloud, such as
                   https://cloud.example.com) whose provisioning pages
                   'ncmcp provision' opens for a server without asking
                   (per server; set by a yes or --open there)`,
		Args: usageArgs(cobra.NoArgs),
	}
	set := &cobra.Command{
		Use:       "set KEY VALUE",
		Short:     "Change a setting",
		Example:   "  ncmcp config set default-server https://mcp.example.com\n  ncmcp config set active-account bob --server https://mcp.example.com",
		Args:      usageArgs(cobra.ExactArgs(2)),
		ValidArgs: configKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigSet(cmd.Context(), g, args[0], args[1])
		},
	}
	get := &cobra.Command{
		Use:       "get KEY",
		Short:     "Print a setting",
		Args:      usageArgs(cobra.ExactArgs(1)),
		ValidArgs: configKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigGet(g, args[0])
		},
	}
	unset := &cobra.Command{
		Use:       "unset KEY",
		Short:     "Forget a setting: page-origin",
		Example:   "  ncmcp config unset page-origin --server https://mcp.example.com",
		Args:      usageArgs(cobra.ExactArgs(1)),
		ValidArgs: []string{"page-origin"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigUnset(cmd.Context(), g, args[0])
		},
	}
	cmd.AddCommand(set, get, unset)
	return cmd
}

func runConfigUnset(ctx context.Context, g *globalOptions, key string) error {
	if key != "page-origin" {
		return usageErrorf("keys: page-origin", "%q cannot be unset", key)
	}
	st, err := g.store()
	if err != nil {
		return err
	}
	var url string
	err = st.Update(ctx, func(cfg *store.Config) error {
		u, srv, err := g.configuredServer(cfg)
		if err != nil {
			return err
		}
		url, srv.PageOrigin = u, ""
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.deps.Stderr, "ncmcp will ask before opening pages off %s again.\n", url)
	return nil
}

func runConfigSet(ctx context.Context, g *globalOptions, key, value string) error {
	st, err := g.store()
	if err != nil {
		return err
	}
	var msg string
	err = st.Update(ctx, func(cfg *store.Config) error {
		switch key {
		case "default-server":
			u, err := discovery.NormalizeServerURL(value)
			if err != nil {
				return usageErrorf("pass the MCP server's base URL", "%v", err)
			}
			if cfg.Servers[u] == nil {
				return usageErrorf("log in to it first ('ncmcp login --server "+u+"'), or choose one of: "+fmt.Sprint(cfg.ServerURLs()), "%s is not configured", u)
			}
			cfg.DefaultServer = u
			msg = "Default server: " + u
		case "active-account":
			url, srv, err := g.configuredServer(cfg)
			if err != nil {
				return err
			}
			a := srv.FindAccount(value)
			if a == nil {
				return usageErrorf("'ncmcp status' lists the accounts", "no account %q on %s", value, url)
			}
			srv.ActiveAccount = a.Subject
			msg = fmt.Sprintf("Active account on %s: %s (sub %s)", url, a.DisplayName(), a.Subject)
		case "page-origin":
			url, srv, err := g.configuredServer(cfg)
			if err != nil {
				return err
			}
			o, err := provision.ParseOrigin(value)
			if err != nil {
				return usageErrorf("pass your Nextcloud's origin, such as https://cloud.example.com", "%v", err)
			}
			srv.PageOrigin = o
			msg = fmt.Sprintf("ncmcp will open provisioning pages on %s for %s without asking", o, url)
		default:
			return usageErrorf("keys: default-server, active-account, page-origin", "unknown setting %q", key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(g.deps.Stderr, msg)
	return nil
}

func runConfigGet(g *globalOptions, key string) error {
	_, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	switch key {
	case "default-server":
		fmt.Fprintln(g.deps.Stdout, cfg.DefaultServer)
	case "active-account":
		_, srv, err := g.selectServer(cfg)
		if err != nil {
			return err
		}
		if srv != nil {
			fmt.Fprintln(g.deps.Stdout, srv.ActiveAccount)
		}
	case "page-origin":
		_, srv, err := g.selectServer(cfg)
		if err != nil {
			return err
		}
		if srv != nil && srv.PageOrigin != "" {
			fmt.Fprintln(g.deps.Stdout, srv.PageOrigin)
		}
	default:
		return usageErrorf("keys: default-server, active-account, page-origin", "unknown setting %q", key)
	}
	return nil
}

// configuredServer selects the server of a setting: one ncmcp is logged
// in to.
func (g *globalOptions) configuredServer(cfg *store.Config) (string, *store.Server, error) {
	u, srv, err := g.selectServer(cfg)
	if err != nil {
		return "", nil, err
	}
	if srv == nil {
		return "", nil, authNeeded(fmt.Errorf("not logged in to %s", u), "run 'ncmcp login --server "+u+"'")
	}
	return u, srv, nil
}
