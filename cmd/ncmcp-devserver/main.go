// Command ncmcp-devserver runs the bundled development server: an OpenID
// Provider and a stand-in for the Nextcloud MCP server (generation 1), both
// on loopback, for trying ncmcp out and for scripted tests.
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
		generation   = fs.Int("generation", 1, "server generation to emulate (only 1 is implemented)")
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
	switch *generation {
	case 1:
	case 2:
		return nil, errors.New("generation 2 is not implemented yet")
	default:
		return nil, fmt.Errorf("unknown generation %d (1 is implemented)", *generation)
	}
	opts := devserver.Options{
		Addr:           *addr,
		IdPAddr:        *idpAddr,
		AutoApprove:    *autoApprove,
		AutoDeny:       *autoDeny,
		AllowedClients: splitList(*clients),
		Scopes:         *scopes,
		PKCE:           *pkce,
		ForwardNonce:   *forwardNonce,
		AccessTokenTTL: *accessTTL,
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
	fmt.Fprintf(stderr, "  MCP server (generation 1): %s (MCP endpoint %s)\n", srv.URL(), srv.ResourceURL())
	fmt.Fprintf(stderr, "  IdP issuer:                %s\n", srv.IssuerURL())
	fmt.Fprintf(stderr, "  allowed MCP clients:       %s\n", strings.Join(o.AllowedClients, ", "))
	fmt.Fprintf(stderr, "  scopes asked for at IdP:   %s\n", strings.Join(srv.IdPScopes(), " "))
	fmt.Fprintf(stderr, "  PKCE mode: %s, forward nonce: %t, auto-approve: %t, access tokens: %s\n", o.PKCE, o.ForwardNonce, o.AutoApprove, o.AccessTokenTTL)
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
