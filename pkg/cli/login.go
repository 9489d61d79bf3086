package cli

import (
	"context"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/store"

	"github.com/spf13/cobra"
)

// LoginOptions are the inputs of 'ncmcp login'.
type LoginOptions struct {
	g *globalOptions

	NoBrowser bool
	Timeout   time.Duration
	Port      int
	// Paste also reads the redirected URL (or the code) from stdin, for a
	// browser on another machine that cannot reach the loopback listener.
	Paste bool
	// WithRefreshToken reads a refresh token from stdin and stores it
	// instead of running a browser flow.
	WithRefreshToken bool
	// Scopes are scopes to ask for besides those the server names (a
	// generation-1 server decides the IdP scopes itself).
	Scopes []string

	// ClientCredentials logs the client itself in (RFC 6749 section 4.4),
	// with its secret (NCMCP_CLIENT_SECRET or SecretStdin) or PrivateKey.
	ClientCredentials bool
	SecretStdin       bool
	// PrivateKey is a PEM file: the client authenticates with
	// private_key_jwt.
	PrivateKey string

	// IDTokenStdin reads the user's ID token from their identity provider
	// on stdin and trades it at IdPTokenEndpoint for an identity assertion
	// that the authorization server takes instead of a browser login
	// (enterprise-managed authorization).
	IDTokenStdin     bool
	IdPTokenEndpoint string
	IdPClientID      string

	// JWTBearerFile is a file holding the workload's own JWT ("-": stdin),
	// exchanged at the authorization server for access (workload identity
	// federation, RFC 7523), and read again at each renewal.
	JWTBearerFile string
}

func newLoginCmd(g *globalOptions, runF func(context.Context, *LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{g: g}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to an MCP server in the browser (OAuth Flow 1)",
		Long: `Log in to an MCP server: ncmcp finds the server's authorization server as the
MCP authorization specification says, listens on 127.0.0.1, has the browser
make the authorization request (PKCE S256, state, the resource indicator)
through a one-time page of that listener, receives the code, exchanges it,
and stores the tokens (OS keyring, or an owner-only file: see --storage).

The OAuth client is --client-id (NCMCP_CLIENT_SECRET for its secret), else
the stored one, else the client ID metadata document URL of
--client-metadata-url where the authorization server takes one, else a
client registered now.

The scopes asked for are those of the server's challenge, else those its
metadata lists, plus --scopes; offline_access only where the authorization
server offers it.

Who logged in is established as well as the server allows: a verified ID
token, the userinfo endpoint, claims read from the tokens, or not at all;
'ncmcp status' says which.

Without a browser: --client-credentials logs the client itself in (for CI),
--with-refresh-token stores a refresh token, --id-token-stdin trades an
ID token of your identity provider for access (enterprise-managed
authorization), and --jwt-bearer-file trades the workload's own JWT (a CI
job's OIDC token, a Kubernetes service account token) for access, with no
client needed unless --client-id names one (workload identity federation);
'ncmcp token' reads that file again for each new token.

The authorization URL is always printed on stderr, so it can be opened
elsewhere.`,
		Example: `  ncmcp login --server https://mcp.example.com --client-id test-mcp-client
  ncmcp login --no-browser --timeout 10m
  ncmcp login --paste            # browser on another machine: paste where it ends up
  ncmcp login --with-refresh-token < token.txt
  NCMCP_CLIENT_SECRET=... ncmcp login --client-credentials --client-id ci-bot
  ncmcp login --client-credentials --client-id ci-bot --private-key ci-bot.pem
  ncmcp login --id-token-stdin --idp-token-endpoint https://idp.example.com/token --client-id app < id_token
  ncmcp login --jwt-bearer-file /var/run/secrets/tokens/mcp-token`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("no-browser") {
				opts.NoBrowser = envBool(g.deps.Getenv("NCMCP_NO_BROWSER"))
			}
			if err := opts.check(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLogin(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.NoBrowser, "no-browser", false, "print the URL instead of opening a browser (env NCMCP_NO_BROWSER=1)")
	f.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for the browser login")
	f.IntVar(&opts.Port, "port", 0, "loopback port for the redirect (default: random, or the port the client's registration fixes)")
	f.BoolVar(&opts.Paste, "paste", false, "also accept the URL the browser ends on (or the code) pasted on stdin, for a browser on another machine")
	f.BoolVar(&opts.WithRefreshToken, "with-refresh-token", false, "read a refresh token from stdin and store it, without a browser")
	f.StringSliceVar(&opts.Scopes, "scopes", nil, "scopes to ask for besides those the server names (spelled as its scopes_supported lists them)")
	f.BoolVar(&opts.ClientCredentials, "client-credentials", false, "log the client itself in with its secret (NCMCP_CLIENT_SECRET, --secret-stdin) or --private-key, without a browser: for CI")
	f.BoolVar(&opts.SecretStdin, "secret-stdin", false, "read the client secret from stdin")
	f.StringVar(&opts.PrivateKey, "private-key", "", "PEM private key file the client authenticates with (private_key_jwt), with --client-credentials or --jwt-bearer-file and --client-id")
	f.BoolVar(&opts.IDTokenStdin, "id-token-stdin", false, "read an ID token of your identity provider from stdin and trade it for access (needs --idp-token-endpoint)")
	f.StringVar(&opts.IdPTokenEndpoint, "idp-token-endpoint", "", "your identity provider's token endpoint, for --id-token-stdin")
	f.StringVar(&opts.IdPClientID, "idp-client-id", "", "the client id to name at your identity provider, for --id-token-stdin")
	f.StringVar(&opts.JWTBearerFile, "jwt-bearer-file", "", "file holding the workload's JWT (CI job OIDC token, Kubernetes service account token; - for stdin) to trade for access, read again at each renewal")
	return cmd
}

// check rejects flag combinations that cannot work.
func (o *LoginOptions) check() error {
	if o.Timeout <= 0 {
		return usageErrorf("use a positive duration such as 5m", "invalid --timeout %s", o.Timeout)
	}
	if o.Port < 0 || o.Port > 65535 {
		return usageErrorf("use a port between 1 and 65535, or 0 for a random one", "invalid --port %d", o.Port)
	}
	stdin := 0
	workload := o.JWTBearerFile != ""
	for _, b := range []bool{o.Paste, o.WithRefreshToken, o.SecretStdin, o.IDTokenStdin, o.JWTBearerFile == "-"} {
		if b {
			stdin++
		}
	}
	if stdin > 1 {
		return usageErrorf("use one of --paste, --with-refresh-token, --secret-stdin, --id-token-stdin and --jwt-bearer-file -", "more than one flag reads stdin")
	}
	modes := 0
	for _, b := range []bool{o.ClientCredentials, o.WithRefreshToken, o.IDTokenStdin, workload} {
		if b {
			modes++
		}
	}
	if modes > 1 {
		return usageErrorf("use one of --client-credentials, --with-refresh-token, --id-token-stdin and --jwt-bearer-file", "more than one way to log in")
	}
	if o.PrivateKey != "" && !o.ClientCredentials && !workload {
		return usageErrorf("add --client-credentials or --jwt-bearer-file FILE", "--private-key is for --client-credentials and --jwt-bearer-file")
	}
	if o.PrivateKey != "" && o.SecretStdin {
		return usageErrorf("use one of them", "--private-key and --secret-stdin are two ways to authenticate the client")
	}
	if o.IDTokenStdin != (o.IdPTokenEndpoint != "") {
		return usageErrorf("use --id-token-stdin with --idp-token-endpoint URL", "--id-token-stdin and --idp-token-endpoint go together")
	}
	if (o.ClientCredentials || o.IDTokenStdin || workload) && (o.Paste || o.Port != 0) {
		return usageErrorf("leave out --paste and --port", "no browser takes part in this login")
	}
	if o.SecretStdin && !o.ClientCredentials && !o.IDTokenStdin && !workload {
		return usageErrorf("add --client-credentials or --jwt-bearer-file FILE, or record the secret with 'ncmcp clients add ID --secret-stdin'", "--secret-stdin is for --client-credentials and --jwt-bearer-file")
	}
	return nil
}

func runLogin(ctx context.Context, opts *LoginOptions) error {
	g := opts.g
	st, serverURL, err := g.setupServer()
	if err != nil {
		return err
	}
	disc, err := g.discover(ctx, g.httpClient(), serverURL)
	if err != nil {
		return err
	}
	if err := followAuthorizationServer(ctx, g, st, disc); err != nil {
		return err
	}
	var res *login.Result
	switch {
	case opts.ClientCredentials:
		res, err = loginClientCredentials(ctx, opts, st, disc)
	case opts.IDTokenStdin:
		res, err = loginWithIDToken(ctx, opts, st, disc)
	case opts.JWTBearerFile != "":
		res, err = loginWorkload(ctx, opts, st, disc)
	default:
		res, err = loginInBrowser(ctx, opts, st, disc)
	}
	if err != nil {
		return err
	}
	printLoginSummary(g.deps.Stderr, g.deps.Now(), res)
	return nil
}

// loginInBrowser logs in with the authorization code flow, or stores a
// refresh token given for the same client.
func loginInBrowser(ctx context.Context, opts *LoginOptions, st *store.Store, disc *discovery.Result) (*login.Result, error) {
	g := opts.g
	client, err := loginClient(ctx, g, st, disc)
	if err != nil {
		return nil, err
	}
	if opts.WithRefreshToken {
		return loginWithRefreshToken(ctx, g, st, disc, client)
	}
	scopes, err := loginScopes(g, st, disc, nil, opts.Scopes)
	if err != nil {
		return nil, err
	}
	return loginReplacingForgotten(ctx, g, st, disc, client, func(c *login.Client) (*login.Result, error) {
		port := opts.Port
		if port == 0 {
			port = c.Port
		}
		return browserLogin(ctx, g, st, disc, c.Client, browserOptions{port: port, scopes: scopes, noBrowser: opts.NoBrowser, paste: opts.Paste, timeout: opts.Timeout, extraScopes: len(opts.Scopes) > 0})
	})
}
