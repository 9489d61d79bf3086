package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/proxy"
	"github.com/ncmcp/ncmcp/pkg/rotlog"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
	"github.com/spf13/cobra"
)

// ProxyOptions are the inputs of 'ncmcp proxy'.
type ProxyOptions struct {
	g         *globalOptions
	NoLogin   bool
	NoBrowser bool
	// LogFile receives the proxy's messages besides stderr; "" picks
	// proxy.log in the config directory when stderr is not a terminal.
	LogFile string
	// IdleTimeout ends an answer of the server from which no byte came for
	// this long.
	IdleTimeout time.Duration
}

func newProxyCmd(g *globalOptions, runF func(context.Context, *ProxyOptions) error) *cobra.Command {
	opts := &ProxyOptions{g: g}
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Serve the server's MCP endpoint on stdin and stdout, with your login",
		Long: `Run as a stdio MCP server for an MCP client (Claude Desktop, Cursor, VS Code,
...) and forward every message to the selected server's MCP endpoint
(Streamable HTTP) with the account's access token: requests, responses and
notifications both ways, the server's own requests (elicitation, sampling,
roots), cancellation and progress, and the server's standalone stream.

The token is refreshed before it expires and when the server refuses it;
several proxies share one refresh. When the server loses the session (a
restart), a new one is begun with the client's own initialize. Not logged
in: the first request starts a browser login, one for all the proxies
that start at once (--no-login fails the request instead).

stdout carries only the protocol. Progress and errors go to stderr and,
when stderr is not a terminal (an MCP client reading it), also to
proxy.log in the config directory (--log-file).

Every request the client sends gets one answer: an answer of the server
that is not JSON, or from which no byte came for --idle-timeout, becomes a
JSON-RPC error, and a request the client cancels is aborted at the server.
At most 16 requests are under way at the server (the rest wait, in
order), and all messages in flight share 64 MiB. A token the server
refuses is renewed; one that cannot be renewed is used until it expires,
then a browser login follows (unless --no-login); a client the
authorization server forgot is registered again, once. The log file
rotates at 1 MiB, keeping one old file.
The standalone stream backs off, up to 30 s, while the server fails. The
proxy stops within about 2 s when stdin closes or at SIGTERM, SIGINT or
SIGHUP (and Windows' Ctrl-C and console close): requests still under way
are answered with an error, and the server's session is ended. 'ncmcp
setup CLIENT' writes the entry that runs it.`,
		Example: `  ncmcp proxy --server https://mcp.example.com
  {"mcpServers": {"nextcloud": {"command": "ncmcp", "args": ["proxy", "--server", "https://mcp.example.com"]}}}`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("no-browser") {
				opts.NoBrowser = envBool(g.deps.Getenv("NCMCP_NO_BROWSER"))
			}
			if opts.IdleTimeout <= 0 {
				return usageErrorf("use a positive duration such as 10m", "invalid --idle-timeout %s", opts.IdleTimeout)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runProxy(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.NoLogin, "no-login", false, "answer requests with an error instead of logging in when no token is accepted")
	f.BoolVar(&opts.NoBrowser, "no-browser", false, "print the login URL instead of opening a browser (env NCMCP_NO_BROWSER=1)")
	f.DurationVar(&opts.IdleTimeout, "idle-timeout", proxy.DefaultIdleTimeout, "answer a request with an error when no byte of the server's answer came for this long")
	f.StringVar(&opts.LogFile, "log-file", "", "also write the proxy's messages to this file (default: proxy.log in the config directory when stderr is not a terminal)")
	return cmd
}

func runProxy(ctx context.Context, opts *ProxyOptions) error {
	g, d := opts.g, opts.g.deps
	// The config directory is checked (owner, permissions) before the log
	// file is made in it.
	st, srv, acct, err := g.mcpTarget()
	if err != nil {
		return err
	}
	logf, closeLog, err := proxyLog(opts)
	if err != nil {
		return err
	}
	defer closeLog()
	creds := newCredentials(g, st, srv, acct, loginPolicy{Allowed: !opts.NoLogin, NoBrowser: opts.NoBrowser, AtExpiry: true})
	creds.Notice = func(m string) { logf(m) }
	if _, err := url.Parse(srv.MCPEndpoint()); err != nil {
		return usageErrorf("check --server", "the MCP endpoint %q: %v", srv.MCPEndpoint(), err)
	}
	authorize := func(next http.RoundTripper) http.RoundTripper {
		at, _ := mcpclient.NewAuthTransport(next, srv.MCPEndpoint(), creds) // the endpoint parses: checked above
		return at
	}
	out := d.rawStdout
	if out == nil {
		out = d.Stdout
	}
	p := proxy.New(proxy.Options{
		Endpoint: srv.MCPEndpoint(), HTTP: g.httpClient(), Authorize: authorize, In: d.Stdin, Out: out, Log: logf, IdleTimeout: opts.IdleTimeout,
		Explain: func(err error) error { return refusalReason(err, srv.URL) },
	})
	logf(fmt.Sprintf("version %s: forwarding stdio to %s", binaryVersion(d.Version, d.Commit, d.Date).Version, srv.MCPEndpoint()))
	return p.Run(ctx)
}

// refusalReason is why a refused request got no new token, with what to do.
func refusalReason(err error, serverURL string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(sessionError(err, serverURL), &e) && e.Hint != "" {
		return fmt.Errorf("%v (%s)", err, e.Hint)
	}
	return err
}

// proxyLog returns the proxy's logger: stderr, and the log file when one
// applies. Lines are made safe for a terminal.
func proxyLog(opts *ProxyOptions) (func(string), func(), error) {
	d := opts.g.deps
	path := opts.LogFile
	if path == "" && (d.StderrIsTerminal == nil || !d.StderrIsTerminal()) {
		dir, err := opts.g.configDir()
		if err != nil {
			return nil, nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, failure(fmt.Errorf("create %s: %w", dir, err), "set NCMCP_CONFIG_DIR, or pass --log-file")
		}
		path = filepath.Join(dir, "proxy.log")
	}
	var file io.WriteCloser
	if path != "" {
		// Proxies run for days, several at once: the log rotates by size
		// while they write, keeping one old file.
		f, err := rotlog.Open(path, proxyLogSize)
		if err != nil {
			return nil, nil, failure(fmt.Errorf("open the log file: %w", err), "pass a writable --log-file")
		}
		file = f
	}
	var mu sync.Mutex
	pid := os.Getpid()
	logf := func(m string) {
		line := termsafe.Lines(m)
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(d.Stderr, "ncmcp proxy: %s\n", line)
		if file != nil {
			fmt.Fprintf(file, "%s [%d] %s\n", time.Now().UTC().Format(time.RFC3339), pid, line)
		}
	}
	return logf, func() {
		if file != nil {
			_ = file.Close()
		}
	}, nil
}

// proxyLogSize is the size at which the proxy's log file rotates.
const proxyLogSize = 1 << 20
