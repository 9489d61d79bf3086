package cli

import (
	"context"
	"fmt"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

// configKeys are the settings 'ncmcp config' reads and writes.
var configKeys = []string{"default-server", "active-account"}

func newConfigCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change settings: default-server, active-account",
		Long: `Settings kept in the config file:

  default-server   the server used when --server is not given
  active-account   the account used on a server when --account is not
                   given (per server: --server selects which)`,
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
	cmd.AddCommand(set, get)
	return cmd
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
			url, srv, err := g.selectServer(cfg)
			if err != nil {
				return err
			}
			if srv == nil {
				return authNeeded(fmt.Errorf("not logged in to %s", url), "run 'ncmcp login --server "+url+"'")
			}
			a := srv.FindAccount(value)
			if a == nil {
				return usageErrorf("'ncmcp status' lists the accounts", "no account %q on %s", value, url)
			}
			srv.ActiveAccount = a.Subject
			msg = fmt.Sprintf("Active account on %s: %s (sub %s)", url, a.DisplayName(), a.Subject)
		default:
			return usageErrorf("keys: default-server, active-account", "unknown setting %q", key)
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
	default:
		return usageErrorf("keys: default-server, active-account", "unknown setting %q", key)
	}
	return nil
}
