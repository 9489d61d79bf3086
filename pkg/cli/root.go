// Package cli is ncmcp's command tree. Each command maps its flags and
// environment to the inputs of the use cases below it (login, clients,
// session, revoke, provision, credential, doctor), their outputs to text
// or JSON, and their typed errors to the documented exit codes and hints.
// It makes no token, registration or keyring call itself. The words are
// those of docs/glossary.md.
package cli

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/httpclient"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
	"github.com/spf13/cobra"
)

// Deps are the parts of the outside world the commands use. Zero fields get
// the real thing.
type Deps struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
	// Keyring is the OS keyring (store.OSKeyring when nil).
	Keyring store.Keyring
	// Transport is the HTTP transport (a default one when nil).
	Transport http.RoundTripper
	// OpenURL opens a URL in a browser (NCMCP_BROWSER/BROWSER or the
	// platform's launcher when nil).
	OpenURL func(url string) error
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// StderrIsTerminal tells whether stderr is a terminal (progress
	// displays); nil means it is not.
	StderrIsTerminal func() bool
	// StdinIsTerminal tells whether stdin is a terminal, where ncmcp may
	// ask the user a question; nil means it is not.
	StdinIsTerminal func() bool

	// WatchSignals makes SIGINT, SIGTERM and SIGHUP cancel Run's context
	// (sigctx.Context.Watch); nil when the context needs no signals. Run
	// calls it before every command but 'ncmcp token', which calls it only
	// before it talks to the network: os/signal's threads cost a cached
	// token about 0.3 ms.
	WatchSignals func()

	Version, Commit, Date string

	// rawStderr is Stderr before Run made it drop control characters, for
	// ncmcp's own progress display; rawStdout is Stdout before, for the
	// protocol of 'ncmcp proxy'.
	rawStderr, rawStdout io.Writer
}

func (d *Deps) fill() {
	if d.Stdin == nil {
		d.Stdin = os.Stdin
	}
	if d.Stdout == nil {
		d.Stdout = os.Stdout
	}
	if d.Stderr == nil {
		d.Stderr = os.Stderr
	}
	if d.Getenv == nil {
		d.Getenv = os.Getenv
	}
	if d.Keyring == nil {
		d.Keyring = store.OSKeyring{}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Version == "" {
		d.Version = "dev"
	}
}

// globalOptions are the persistent flags and their environment variables.
type globalOptions struct {
	deps *Deps

	Server   string
	Account  string
	ClientID string
	// ClientMetadataURL is the https URL of ncmcp's client ID metadata
	// document, used as client id where the authorization server takes one.
	ClientMetadataURL string
	Storage           string
	Debug             bool

	// CACert names extra trusted CA certificates (PEM).
	CACert string
	hc     *http.Client

	// Discovery overrides for servers behind proxies.
	Issuer       string
	PublicIssuer string
	Generation   int
}

// Run executes ncmcp with args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, deps Deps) int {
	deps.fill()
	// Server text (error descriptions, tool messages, names in tokens)
	// reaches the terminal without its control characters, whatever path
	// it takes to stdout or stderr.
	deps.rawStderr, deps.rawStdout = deps.Stderr, deps.Stdout
	deps.Stdout = termsafe.Writer{W: deps.Stdout}
	deps.Stderr = termsafe.Writer{W: deps.Stderr}
	root, name := newRootCmdFor(&deps, args)
	if name != "token" {
		deps.watchSignals()
	}
	root.SetArgs(args)
	root.SetIn(deps.Stdin)
	root.SetOut(deps.Stdout)
	root.SetErr(deps.Stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && !isCodedError(err) && isCobraUsageError(err) {
		err = &Error{Code: ExitUsage, Err: err, Hint: "run 'ncmcp --help' for usage"}
	}
	return report(deps.Stderr, err)
}

func isCodedError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// isCobraUsageError recognises the errors cobra itself returns for unknown
// commands and bad arguments.
func isCobraUsageError(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag") || strings.Contains(s, "arg(s)")
}

// watchSignals starts the signal handling of Run's context (see
// Deps.WatchSignals).
func (d *Deps) watchSignals() {
	if d.WatchSignals != nil {
		d.WatchSignals()
	}
}

// subcommands are ncmcp's commands, by name.
var subcommands = []struct {
	name string
	new  func(*globalOptions) *cobra.Command
}{
	{"login", func(g *globalOptions) *cobra.Command { return newLoginCmd(g, nil) }},
	{"token", func(g *globalOptions) *cobra.Command { return newTokenCmd(g, nil) }},
	{"status", func(g *globalOptions) *cobra.Command { return newStatusCmd(g, nil) }},
	{"logout", func(g *globalOptions) *cobra.Command { return newLogoutCmd(g, nil) }},
	{"provision", func(g *globalOptions) *cobra.Command { return newProvisionCmd(g, nil) }},
	{"tools", func(g *globalOptions) *cobra.Command { return newToolsCmd(g, nil, nil) }},
	{"proxy", func(g *globalOptions) *cobra.Command { return newProxyCmd(g, nil) }},
	{"setup", func(g *globalOptions) *cobra.Command { return newSetupCmd(g, nil) }},
	{"clients", newClientsCmd},
	{"tokens", newTokensCmd},
	{"config", newConfigCmd},
	{"doctor", func(g *globalOptions) *cobra.Command { return newDoctorCmd(g, nil) }},
	{"version", newVersionCmd},
}

// newRootCmd returns the whole command tree.
func newRootCmd(deps *Deps) *cobra.Command {
	root, _ := newRootCmdFor(deps, nil)
	return root
}

// newRootCmdFor returns the command tree that runs args: when they name
// one of ncmcp's commands, the root with that command alone (cobra would
// pick no other, and building all of them costs a cached 'ncmcp token'
// about 0.1 ms), else the whole tree, for help, completion and cobra's
// errors.
// name is the command built alone, or "".
func newRootCmdFor(deps *Deps, args []string) (root *cobra.Command, name string) {
	g := &globalOptions{deps: deps}
	root = newBareRoot(g)
	name = commandName(root, args)
	for _, c := range subcommands {
		if c.name == name {
			root.AddCommand(c.new(g))
			// cobra adds its 'completion' command to a root with
			// subcommands; it is not the one that runs.
			root.CompletionOptions.DisableDefaultCmd = true
			return root, name
		}
	}
	for _, c := range subcommands {
		root.AddCommand(c.new(g))
	}
	return root, ""
}

// commandName returns the first argument that is neither a flag nor a
// flag's value, as cobra's Command.Find reads args for root (its
// stripFlags: "--" ends the search, and a flag root does not define is
// taken to have a value), or "".
func commandName(root *cobra.Command, args []string) string {
	flags := root.LocalFlags()
	longHasValue := func(name string) bool { f := flags.Lookup(name); return f == nil || f.NoOptDefVal == "" }
	shortHasValue := func(name string) bool { f := flags.ShorthandLookup(name); return f == nil || f.NoOptDefVal == "" }
	for len(args) > 0 {
		s := args[0]
		args = args[1:]
		switch {
		case s == "--":
			return ""
		case strings.HasPrefix(s, "--") && !strings.Contains(s, "=") && longHasValue(s[2:]),
			strings.HasPrefix(s, "-") && !strings.Contains(s, "=") && len(s) == 2 && shortHasValue(s[1:]):
			if len(args) <= 1 {
				return ""
			}
			args = args[1:]
		case s != "" && !strings.HasPrefix(s, "-"):
			return s
		}
	}
	return ""
}

// newBareRoot returns the root command with the global flags and no subcommands.
func newBareRoot(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "ncmcp",
		Short: "Connect people and CI pipelines to a Nextcloud MCP server",
		Long: `ncmcp logs you in to a Nextcloud MCP server with OAuth (PKCE, loopback
redirect), keeps the tokens in the OS keyring, and prints a fresh access
token for scripts:

    ncmcp login --server https://mcp.example.com
    curl -H "Authorization: Bearer $(ncmcp token)" https://mcp.example.com/mcp`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.resolveEnv(cmd)
		},
	}
	// --version, which people type, says what 'ncmcp version' says. The
	// line is made when asked for: reading the build information is no
	// work for every command.
	d := g.deps
	root.Version = d.Version
	cobra.AddTemplateFunc("ncmcpVersionLine", func() string { return versionLine(d.Version, d.Commit, d.Date) })
	root.SetVersionTemplate("{{ncmcpVersionLine}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &Error{Code: ExitUsage, Err: err, Hint: "run 'ncmcp --help' for usage"}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.Server, "server", "", "MCP server base URL (env NCMCP_SERVER)")
	pf.StringVar(&g.Account, "account", "", "account on that server, by subject or username (env NCMCP_ACCOUNT)")
	pf.StringVar(&g.ClientID, "client-id", "", "OAuth client id; NCMCP_CLIENT_SECRET holds a confidential client's secret (env NCMCP_CLIENT_ID)")
	pf.StringVar(&g.ClientMetadataURL, "client-metadata-url", "", "https URL of a client ID metadata document to use as client id where the authorization server takes one (env NCMCP_CLIENT_METADATA_URL)")
	pf.StringVar(&g.Storage, "storage", "", "where secrets go: auto, keyring or file (env NCMCP_STORAGE; default auto)")
	pf.BoolVar(&g.Debug, "debug", false, "trace HTTP requests on stderr, secrets redacted (env NCMCP_DEBUG=1)")
	pf.StringVar(&g.CACert, "cacert", "", "PEM file of CA certificates to trust besides the system's, for servers with a private CA (env NCMCP_CACERT; SSL_CERT_FILE replaces the system's)")
	pf.StringVar(&g.Issuer, "issuer", "", "use this authorization server instead of the one the server's metadata names (env NCMCP_ISSUER)")
	pf.StringVar(&g.PublicIssuer, "public-issuer", "", "reach the IdP's endpoints at this http(s)://host[:port] when its metadata names an internal host (env NCMCP_PUBLIC_ISSUER)")
	pf.IntVar(&g.Generation, "generation", 0, "server generation, 1 or 2, instead of detecting it (env NCMCP_GENERATION)")
	_ = root.RegisterFlagCompletionFunc("server", g.completeServers)
	_ = root.RegisterFlagCompletionFunc("account", g.completeAccounts)
	_ = root.RegisterFlagCompletionFunc("storage", cobra.FixedCompletions([]string{"auto", "keyring", "file"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("generation", cobra.FixedCompletions([]string{"1", "2"}, cobra.ShellCompDirectiveNoFileComp))

	return root
}

// resolveEnv fills unset flags from their environment variables and checks them.
func (g *globalOptions) resolveEnv(cmd *cobra.Command) error {
	env := g.deps.Getenv
	fill := func(name string, dst *string, envName string) {
		if !cmd.Flags().Changed(name) {
			*dst = env(envName)
		}
	}
	fill("server", &g.Server, "NCMCP_SERVER")
	fill("account", &g.Account, "NCMCP_ACCOUNT")
	fill("client-id", &g.ClientID, "NCMCP_CLIENT_ID")
	fill("client-metadata-url", &g.ClientMetadataURL, "NCMCP_CLIENT_METADATA_URL")
	fill("storage", &g.Storage, "NCMCP_STORAGE")
	fill("issuer", &g.Issuer, "NCMCP_ISSUER")
	fill("cacert", &g.CACert, "NCMCP_CACERT")
	fill("public-issuer", &g.PublicIssuer, "NCMCP_PUBLIC_ISSUER")
	if !cmd.Flags().Changed("generation") {
		if v := env("NCMCP_GENERATION"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return usageErrorf("set it to 1 or 2", "invalid NCMCP_GENERATION %q", v)
			}
			g.Generation = n
		}
	}
	if g.CACert != "" {
		var err error
		if g.hc, err = httpclient.New(g.httpOptions()); err != nil {
			return usageErrorf("pass a readable PEM file of CA certificates", "--cacert: %v", err)
		}
	}
	if g.ClientMetadataURL != "" {
		if u, err := url.Parse(g.ClientMetadataURL); err != nil || u.Scheme != "https" || u.Host == "" || u.Path == "" || u.Path == "/" || u.Fragment != "" {
			return usageErrorf("pass the https URL, with a path, where your client ID metadata document is published", "invalid --client-metadata-url %q", g.ClientMetadataURL)
		}
	}
	if g.Generation != 0 && g.Generation != 1 && g.Generation != 2 {
		return usageErrorf("use --generation 1 or 2 (or leave it out to detect it)", "invalid generation %d", g.Generation)
	}
	if !cmd.Flags().Changed("debug") {
		g.Debug = envBool(env("NCMCP_DEBUG"))
	}
	if _, err := store.ParseMode(g.Storage); err != nil {
		return usageErrorf("use --storage auto, keyring or file", "%v", err)
	}
	if g.Server != "" {
		u, err := discovery.NormalizeServerURL(g.Server)
		if err != nil {
			return usageErrorf("pass the MCP server's base URL, e.g. --server https://mcp.example.com", "%v", err)
		}
		g.Server = u
	}
	return nil
}

func envBool(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// usageArgs wraps a cobra positional-argument check so its error exits 2.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &Error{Code: ExitUsage, Err: err, Hint: "run '" + cmd.CommandPath() + " --help' for usage"}
		}
		return nil
	}
}
