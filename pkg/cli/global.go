package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/httpclient"
	"github.com/ncmcp/ncmcp/pkg/opener"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// configDir is NCMCP_CONFIG_DIR, else the OS config directory plus "ncmcp".
func (g *globalOptions) configDir() (string, error) {
	if d := g.deps.Getenv("NCMCP_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if x := g.deps.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "ncmcp"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", failure(fmt.Errorf("find the config directory: %w", err), "set NCMCP_CONFIG_DIR")
	}
	return filepath.Join(d, "ncmcp"), nil
}

// store opens the store with the --storage policy and keyring timeout.
func (g *globalOptions) store() (*store.Store, error) {
	dir, err := g.configDir()
	if err != nil {
		return nil, err
	}
	mode, _ := store.ParseMode(g.Storage)
	timeout := store.DefaultKeyringTimeout
	if v := g.deps.Getenv("NCMCP_KEYRING_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, usageErrorf("set it to a duration such as 3s", "invalid NCMCP_KEYRING_TIMEOUT %q", v)
		}
		timeout = d
	}
	return store.New(dir, mode, g.deps.Keyring, timeout), nil
}

// discover runs discovery for serverURL with the global overrides and
// prints its warnings.
func (g *globalOptions) discover(ctx context.Context, hc *http.Client, serverURL string) (*discovery.Result, error) {
	res, err := discovery.DiscoverWith(ctx, hc, serverURL, discovery.Options{Issuer: g.Issuer, PublicIssuer: g.PublicIssuer, Generation: g.Generation})
	var (
		nm *discovery.NotMCPError
		ph *httpclient.PlainHTTPError
	)
	switch {
	case errors.As(err, &nm):
		return nil, notMCPFailure(serverURL, err)
	case errors.As(err, &ph):
		return nil, failure(fmt.Errorf("discover %s: %w", serverURL, err), "give the server's https URL")
	case err != nil:
		return nil, failure(fmt.Errorf("discover %s: %w", serverURL, err), "check that --server is the MCP server's base URL and that it is reachable; 'ncmcp doctor' checks each step")
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(g.deps.Stderr, "warning: %s\n", w)
	}
	return res, nil
}

// loadConfig opens the store and reads the config.
func (g *globalOptions) loadConfig() (*store.Store, *store.Config, error) {
	st, err := g.store()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := store.LoadConfig(st.Dir)
	if err != nil {
		return nil, nil, failure(err, "")
	}
	return st, cfg, nil
}

// httpClient returns the HTTP client, tracing when --debug is on.
func (g *globalOptions) httpClient() *http.Client {
	if g.hc == nil {
		// Without a CA file New cannot fail; with one, resolveEnv built it.
		g.hc, _ = httpclient.New(g.httpOptions())
	}
	return g.hc
}

func (g *globalOptions) httpOptions() httpclient.Options {
	o := httpclient.Options{Transport: g.deps.Transport, CACertFile: g.CACert}
	if g.Debug {
		o.Debug = g.deps.Stderr
	}
	return o
}

// openURL opens a URL with the injected opener or the environment's browser.
func (g *globalOptions) openURL(u string) error {
	if g.deps.OpenURL != nil {
		if err := opener.CheckURL(u); err != nil {
			return err
		}
		return g.deps.OpenURL(u)
	}
	o := opener.Opener{Getenv: g.deps.Getenv}
	if g.Debug {
		o.Output = g.deps.Stderr
	}
	return o.Open(u)
}
