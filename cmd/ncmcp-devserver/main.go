// Command ncmcp-devserver runs the bundled development server: an OpenID
// Provider and a stand-in for the Nextcloud MCP server (generation 1, or
// generation 2 with --generation 2), both on loopback, for trying ncmcp out
// and for scripted tests.
//
// It prints the MCP server URL on stdout once it is ready (one line), and
// everything else on stderr. It runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage reports a bad command line; flag has already printed the details.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := start(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "ncmcp-devserver: %v\n", err)
		}
		return 2
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "ncmcp-devserver: shutting down")
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "ncmcp-devserver: %v\n", err)
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func start(args []string, stdout, stderr io.Writer) (*devserver.Server, error) {
	fs := flag.NewFlagSet("ncmcp-devserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultClients := strings.Join(devserver.DefaultAllowedClients, ",")
	if env := os.Getenv("ALLOWED_MCP_CLIENTS"); env != "" {
		defaultClients = env
	}
	var (
		addr         = fs.String("addr", "127.0.0.1:8765", "MCP server stand-in listen address (loopback only)")
		idpAddr      = fs.String("idp-addr", "127.0.0.1:8766", "OpenID Provider listen address (loopback only)")
		autoApprove  = fs.Bool("auto-approve", false, "complete every login at once as "+devserver.DefaultUser.Username+", without a login page")
		autoDeny     = fs.Bool("auto-deny", false, "answer every login at once with access_denied (the user refuses)")
		clients      = fs.String("allowed-clients", defaultClients, "comma-separated client ids the server accepts (default from ALLOWED_MCP_CLIENTS)")
		scopes       = fs.String("scopes", devserver.DefaultScopes, "server-configured scopes asked for at the IdP after \"openid profile email\"")
		pkce         = fs.String("pkce", devserver.PKCEReject, "how the IdP treats a code_verifier for a code issued without a challenge: reject, ignore or require")
		forwardNonce = fs.Bool("forward-nonce", false, "forward the client's nonce to the IdP (the generation-1 server does not)")
		accessTTL    = fs.Duration("access-token-ttl", time.Hour, "access token lifetime")
		generation   = fs.Int("generation", 1, "server generation to emulate: 1 (pass-through) or 2 (the server is its own authorization server)")
		codeTTL      = fs.Duration("code-ttl", devserver.DefaultCodeTTL, "generation 2: lifetime of the server's authorization codes")
		regLimit     = fs.Int("register-rate-limit", devserver.DefaultRegisterRateLimit, "generation 2: registrations per minute and address at /oauth/register")
		noOffline    = fs.Bool("no-offline-access", false, "run without offline access: no Flow 2 tools, no /oauth/authorize-nextcloud")
		provisionURL = fs.String("provision-url", "", "fault: return this string as provision_nextcloud_access's authorization_url")
		noReg        = fs.Bool("no-registration", false, "turn the IdP's dynamic client registration (/register) off")
		noRevoke     = fs.Bool("no-revocation", false, "turn the IdP's token revocation (RFC 7009) off")
		regFault     = fs.String("registration-fault", "", "fault of the IdP's /register: refuse, ratelimit or malformed")
		secretTTL    = fs.Duration("registered-secret-ttl", 0, "lifetime of the secrets of clients registered at the IdP (0: never expire)")
		quiet        = fs.Bool("quiet", false, "do not log requests")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ncmcp-devserver [flags]\n\nRuns a development stand-in for the Nextcloud MCP server and its identity provider on loopback.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *generation != 1 && *generation != 2 {
		return nil, fmt.Errorf("unknown generation %d (want 1 or 2)", *generation)
	}
	opts := devserver.Options{
		Addr:                *addr,
		IdPAddr:             *idpAddr,
		AutoApprove:         *autoApprove,
		AutoDeny:            *autoDeny,
		AllowedClients:      splitList(*clients),
		Scopes:              *scopes,
		PKCE:                *pkce,
		ForwardNonce:        *forwardNonce,
		AccessTokenTTL:      *accessTTL,
		NoOfflineAccess:     *noOffline,
		ProvisionURL:        *provisionURL,
		NoRegistration:      *noReg,
		NoRevocation:        *noRevoke,
		RegistrationFault:   *regFault,
		RegisteredSecretTTL: *secretTTL,
		Generation:          *generation,
		CodeTTL:             *codeTTL,
		RegisterRateLimit:   *regLimit,
	}
	if len(opts.AllowedClients) == 0 {
		return nil, errors.New("--allowed-clients is empty")
	}
	if !*quiet {
		opts.Logf = log.New(stderr, "ncmcp-devserver: ", log.LstdFlags).Printf
	}
	srv, err := devserver.Start(opts)
	if err != nil {
		return nil, err
	}
	o := srv.Options()
	fmt.Fprintln(stderr, "ncmcp-devserver: DEVELOPMENT SERVER, loopback only, not for production")
	fmt.Fprintf(stderr, "  MCP server (generation %d): %s (MCP endpoint %s)\n", o.Generation, srv.URL(), srv.ResourceURL())
	if o.Generation == 2 {
		fmt.Fprintf(stderr, "  authorization server:      %s (/oauth/authorize, /oauth/token, /oauth/register; codes live %s, %d registrations per minute)\n",
			srv.URL(), o.CodeTTL, o.RegisterRateLimit)
	}
	fmt.Fprintf(stderr, "  IdP issuer:                %s\n", srv.IssuerURL())
	fmt.Fprintf(stderr, "  allowed MCP clients:       %s\n", strings.Join(o.AllowedClients, ", "))
	fmt.Fprintf(stderr, "  scopes asked for at IdP:   %s\n", strings.Join(srv.IdPScopes(), " "))
	fmt.Fprintf(stderr, "  PKCE mode: %s, forward nonce: %t, auto-approve: %t, access tokens: %s\n", o.PKCE, o.ForwardNonce, o.AutoApprove, o.AccessTokenTTL)
	if o.NoOfflineAccess {
		fmt.Fprintln(stderr, "  offline access (Flow 2):   off")
	} else {
		fmt.Fprintf(stderr, "  offline access (Flow 2):   tools %s, %s, %s\n", devserver.ToolProvision, devserver.ToolCheckStatus, devserver.ToolRevoke)
	}
	if o.ProvisionURL != "" {
		fmt.Fprintln(stderr, "  FAULT: provision_nextcloud_access returns a fixed authorization_url")
	}
	if o.NoRegistration {
		fmt.Fprintln(stderr, "  IdP client registration:   off")
	} else {
		fmt.Fprintf(stderr, "  IdP client registration:   %s/register (RFC 7591/7592)\n", srv.IssuerURL())
	}
	if o.RegistrationFault != "" {
		fmt.Fprintf(stderr, "  FAULT: IdP registration answers %q\n", o.RegistrationFault)
	}
	if o.NoRevocation {
		fmt.Fprintln(stderr, "  IdP token revocation:      off")
	}
	fmt.Fprintln(stderr, "  test users (username / password):")
	for _, u := range []devserver.User{devserver.DefaultUser, devserver.SecondUser} {
		fmt.Fprintf(stderr, "    %s / %s  (sub %s, %s)\n", u.Username, u.Password, u.Subject, u.Email)
	}
	fmt.Fprintln(stderr, "  IdP clients:")
	fmt.Fprintf(stderr, "    %s, %s: public, redirect http://127.0.0.1:ANY/callback or http://localhost:ANY/callback\n", devserver.PublicClientID, devserver.ClaudeDesktopClientID)
	fmt.Fprintf(stderr, "    %s: confidential, secret %s, same redirects\n", devserver.ConfidentialClientID, devserver.ConfidentialClientSecret)
	fmt.Fprintf(stderr, "    %s: the server's own client, redirect %s/oauth/callback\n", devserver.ServerClientID, srv.URL())
	fmt.Fprintln(stdout, srv.URL())
	return srv, nil
}
