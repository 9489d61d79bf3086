package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// selectServer picks the server: --server, else the default, else the only
// one configured. It returns the URL and its config (nil when not configured).
func (g *globalOptions) selectServer(cfg *store.Config) (string, *store.Server, error) {
	if g.Server != "" {
		if cfg.Servers[g.Server] == nil {
			// --server may name the MCP endpoint of a configured server.
			if parent, ok := strings.CutSuffix(g.Server, "/mcp"); ok && cfg.Servers[parent] != nil {
				g.Server = parent
			}
		}
		return g.Server, cfg.Servers[g.Server], nil
	}
	if cfg.DefaultServer != "" {
		return cfg.DefaultServer, cfg.Servers[cfg.DefaultServer], nil
	}
	switch urls := cfg.ServerURLs(); len(urls) {
	case 0:
		return "", nil, authNeeded(errors.New("not logged in to any server"), "run 'ncmcp login --server URL'")
	case 1:
		return urls[0], cfg.Servers[urls[0]], nil
	default:
		return "", nil, usageErrorf("pass --server (or set NCMCP_SERVER) to one of: "+strings.Join(urls, ", "), "several servers are configured and none is the default")
	}
}

// selectedServers returns the configured servers that --server selects:
// all of them without it.
func (g *globalOptions) selectedServers(cfg *store.Config) []string {
	if g.Server != "" {
		if u, _, _ := g.selectServer(cfg); cfg.Servers[u] != nil {
			return []string{u}
		}
		return nil
	}
	return cfg.ServerURLs()
}

// matches reports whether the account is selected by --account: all of
// them without it.
func (g *globalOptions) matches(a *store.Account) bool {
	return g.Account == "" || a.Is(g.Account)
}

// selectAccount resolves the server and account for commands that need a login.
func (g *globalOptions) selectAccount(cfg *store.Config) (*store.Server, *store.Account, error) {
	url, srv, err := g.selectServer(cfg)
	if err != nil {
		return nil, nil, err
	}
	if srv == nil || len(srv.Accounts) == 0 {
		return nil, nil, authNeeded(fmt.Errorf("not logged in to %s", url), "run 'ncmcp login --server "+url+"'")
	}
	acct := srv.FindAccount(g.Account)
	if acct == nil {
		if g.Account != "" {
			return nil, nil, authNeeded(fmt.Errorf("no account %q on %s", g.Account, url), "run 'ncmcp status' to see the accounts, or log in with 'ncmcp login --server "+url+"'")
		}
		return nil, nil, usageErrorf("pass --account with one of: "+strings.Join(srv.AccountIDs(), ", "), "several accounts on %s and none is active", url)
	}
	return srv, acct, nil
}

// setupServer opens the store and returns the server of a command that
// may run before the first login (see serverForSetup).
func (g *globalOptions) setupServer() (*store.Store, string, error) {
	st, cfg, err := g.loadConfig()
	if err != nil {
		return nil, "", err
	}
	u, err := serverForSetup(g, cfg)
	return st, u, err
}

// serverForSetup returns the server URL for commands that may run before
// the first login: --server, else the default or only configured one.
func serverForSetup(g *globalOptions, cfg *store.Config) (string, error) {
	u, _, err := g.selectServer(cfg)
	var e *Error
	if errors.As(err, &e) && e.Code == ExitAuth {
		return "", usageErrorf("pass --server URL (or set NCMCP_SERVER)", "no server given")
	}
	return u, err
}

// mcpTarget selects the server and account of a command that talks MCP
// and may log in on the way: the account is nil when there is none yet,
// and a server not logged in to is named by --server, its MCP endpoint or
// a Nextcloud MCP server's base URL.
func (g *globalOptions) mcpTarget() (*store.Store, *store.Server, *store.Account, error) {
	st, cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	u, srv, err := g.selectServer(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if srv == nil {
		endpoint := u
		if !strings.HasSuffix(endpoint, "/mcp") {
			endpoint += "/mcp"
		}
		return st, &store.Server{URL: discovery.ServerKey(endpoint), Endpoint: endpoint}, nil, nil
	}
	acct := srv.FindAccount(g.Account)
	if acct == nil && g.Account != "" {
		return nil, nil, nil, authNeeded(fmt.Errorf("no account %q on %s", g.Account, u), "run 'ncmcp status' to see the accounts")
	}
	return st, srv, acct, nil
}
