// Command ncmcp-devserver runs the bundled development server: an OpenID
// Provider shaped like Dex, a stand-in for the Nextcloud MCP server
// (generation 2, as v0.181.0, by default; generation 1, as v0.31.0, with
// --generation 1) and, for generation 2, a stand-in for Nextcloud's Login
// Flow v2 on an origin of its own, all on loopback, for trying ncmcp out
// and for scripted tests. By default the MCP server listens on port 8765,
// the IdP on the next port and Nextcloud on the one after; --addr
// 127.0.0.1:0 gives every listener a free port.
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
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
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

// nextAddr returns addr with its port plus n, or port 0 where addr's is 0
// (or not a number).
func nextAddr(addr string, n int) string {
	host, port, err := net.SplitHostPort(addr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p == 0 {
		return net.JoinHostPort(host, "0")
	}
	return net.JoinHostPort(host, strconv.Itoa(p+n))
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

// devServer is the running dev server with its periodic restarts
// (--restart-every), which Close stops first.
type devServer struct {
	*devserver.Server
	stopRestarts func()
}

// Close stops the restarts, then the server.
func (d *devServer) Close() error {
	d.stopRestarts()
	return d.Server.Close()
}

// restartEvery calls srv.RestartServer every period, logging each restart,
// until the returned stop is called; stop waits for a restart under way.
// A period of 0 restarts nothing.
func restartEvery(srv *devserver.Server, period time.Duration, logf func(string, ...any)) (stop func()) {
	if period <= 0 {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(period)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-t.C:
				srv.RestartServer()
				logf("restarted the MCP server (restart %d): its MCP sessions, logins in progress and Login Flows are forgotten", n)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

func start(args []string, stdout, stderr io.Writer) (*devServer, error) {
	fs := flag.NewFlagSet("ncmcp-devserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultClients := strings.Join(devserver.DefaultAllowedClients, ",")
	if env := os.Getenv("ALLOWED_MCP_CLIENTS"); env != "" {
		defaultClients = env
	}
	var (
		addr         = fs.String("addr", "127.0.0.1:8765", "MCP server stand-in listen address (loopback only; port 0: every listener gets a free port)")
		idpAddr      = fs.String("idp-addr", "", "OpenID Provider listen address (loopback only; default: the port after --addr's)")
		ncAddr       = fs.String("nextcloud-addr", "", "Nextcloud stand-in listen address (loopback only; default: two ports after --addr's)")
		ncSame       = fs.Bool("nextcloud-same-origin", false, "serve the Nextcloud stand-in on the MCP server's origin (as behind one reverse proxy) instead of its own")
		ncForm       = fs.Bool("nextcloud-login-form", false, "the Nextcloud stand-in's pages ask the browser to log in (the login name is what is typed) instead of taking it as logged in")
		autoApprove  = fs.Bool("auto-approve", false, "complete every login at once as "+devserver.DefaultUser.Username+", without a login page, and grant Login Flows on the first visit")
		autoDeny     = fs.Bool("auto-deny", false, "answer every login at once with access_denied (the user refuses)")
		clients      = fs.String("allowed-clients", defaultClients, "comma-separated client ids the server accepts (default from ALLOWED_MCP_CLIENTS)")
		scopes       = fs.String("scopes", devserver.DefaultScopes, "generation 1: server-configured scopes asked for at the IdP after \"openid profile email\"")
		pkce         = fs.String("pkce", devserver.PKCEReject, "how the IdP treats a code_verifier for a code issued without a challenge: reject, ignore or require")
		forwardNonce = fs.Bool("forward-nonce", false, "forward the client's nonce to the IdP (the generation-1 server does not)")
		accessTTL    = fs.Duration("access-token-ttl", time.Hour, "access token lifetime")
		generation   = fs.Int("generation", 2, "server generation to emulate: 2 (the server is its own authorization server, as every current server) or 1 (the legacy pass-through)")
		codeTTL      = fs.Duration("code-ttl", devserver.DefaultCodeTTL, "generation 2: lifetime of the server's authorization codes")
		regLimit     = fs.Int("register-rate-limit", devserver.DefaultRegisterRateLimit, "generation 2: registration attempts per sliding minute and address at /oauth/register")
		noOffline    = fs.Bool("no-offline-access", false, "run without offline access: no Flow 2 tools, no /oauth/authorize-nextcloud")
		provisionURL = fs.String("provision-url", "", "fault: return this string as the provisioning tools' URL (authorization_url, provisioning_url, login_url)")
		noReg        = fs.Bool("no-registration", false, "turn the IdP's dynamic client registration (/register) off")
		noRevoke     = fs.Bool("no-revocation", false, "turn the IdP's token revocation (RFC 7009) off")
		regFault     = fs.String("registration-fault", "", "fault of the IdP's /register: refuse, ratelimit or malformed")
		secretTTL    = fs.Duration("registered-secret-ttl", 0, "lifetime of the secrets of clients registered at the IdP (0: never expire)")
		strictScope  = fs.Bool("strict-scope-claim", false, "generation 2: read the token's scope claim as the real server does (the IdP's tokens have none: every tool call is refused)")
		reuse        = fs.Duration("refresh-reuse-interval", devserver.DefaultRefreshReuseInterval, "how long a refresh with a new refresh token returns that same token (Dex: 3s; negative: rotate on every refresh, as Nextcloud's oidc app does)")
		multipleRT   = fs.Bool("multiple-refresh-tokens", false, "let a user hold several refresh tokens per client (by default a new login invalidates the older one, as with Dex)")
		elicitURL    = fs.Bool("elicitation-url-mode", false, "ask clients that support it for URL-mode elicitation of the Login Flow URL (default: form mode)")
		loginFlow    = fs.Bool("login-flow-tools", false, "generation 1: also offer the nc_auth_* tools and the Login Flow v2 stand-in (generation 2 always does)")
		ncUser       = fs.String("nextcloud-user", devserver.DefaultUser.Username, "test user logged in at the Login Flow stand-in's pages for flows the tools did not start")
		quiet        = fs.Bool("quiet", false, "do not log requests")
		restarts     = fs.Duration("restart-every", 0, "restart the MCP server this often, as a real restart would (MCP sessions, logins in progress and Login Flows are forgotten; tokens stay valid), logging each restart; 0: never")
		forgetReg    = fs.Bool("forget-clients-on-restart", false, "each restart of the MCP server (--restart-every) also makes the IdP forget the clients registered at its /register, with their tokens, as an authorization server that keeps registrations in memory does: their refreshes and code exchanges get invalid_client")
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
	if *idpAddr == "" {
		*idpAddr = nextAddr(*addr, 1)
	}
	if *ncAddr == "" {
		*ncAddr = nextAddr(*addr, 2)
	}
	opts := devserver.Options{
		Addr:                  *addr,
		IdPAddr:               *idpAddr,
		NextcloudAddr:         *ncAddr,
		NextcloudSameOrigin:   *ncSame,
		NextcloudLoginForm:    *ncForm,
		AutoApprove:           *autoApprove,
		AutoDeny:              *autoDeny,
		AllowedClients:        splitList(*clients),
		Scopes:                *scopes,
		PKCE:                  *pkce,
		ForwardNonce:          *forwardNonce,
		AccessTokenTTL:        *accessTTL,
		NoOfflineAccess:       *noOffline,
		ProvisionURL:          *provisionURL,
		NoRegistration:        *noReg,
		NoRevocation:          *noRevoke,
		RegistrationFault:     *regFault,
		RegisteredSecretTTL:   *secretTTL,
		Generation:            *generation,
		CodeTTL:               *codeTTL,
		RegisterRateLimit:     *regLimit,
		StrictScopeClaim:      *strictScope,
		MultipleRefreshTokens: *multipleRT,
		ElicitationURLMode:    *elicitURL,
		LoginFlowTools:        *loginFlow,
		NextcloudUser:         *ncUser,
		RefreshReuseInterval:  *reuse,
	}
	opts.ForgetClientsOnRestart = *forgetReg
	if len(opts.AllowedClients) == 0 {
		return nil, errors.New("--allowed-clients is empty")
	}
	if *restarts < 0 {
		return nil, fmt.Errorf("invalid --restart-every %s (want a positive duration, or 0 for never)", *restarts)
	}
	if *forgetReg && *restarts == 0 {
		return nil, errors.New("--forget-clients-on-restart needs --restart-every: without restarts nothing is forgotten")
	}
	// One logger for requests and restarts, so that their lines do not mix.
	logger := log.New(stderr, "ncmcp-devserver: ", log.LstdFlags)
	if !*quiet {
		opts.Logf = logger.Printf
	}
	srv, err := devserver.Start(opts)
	if err != nil {
		return nil, err
	}
	o := srv.Options()
	is := srv.IssuerURL()
	fmt.Fprintln(stderr, "ncmcp-devserver: DEVELOPMENT SERVER, loopback only, not for production")
	fmt.Fprintf(stderr, "  MCP server (generation %d): %s (MCP endpoint %s)\n", o.Generation, srv.URL(), srv.ResourceURL())
	if o.Generation == 2 {
		fmt.Fprintf(stderr, "  authorization server:      %s (/oauth/authorize, /oauth/token, /oauth/register; codes live %s, %d registrations per minute)\n",
			srv.URL(), o.CodeTTL, o.RegisterRateLimit)
		fmt.Fprintf(stderr, "  server status:             %s/api/v1/status\n", srv.URL())
	} else {
		fmt.Fprintf(stderr, "  authorization:             %s/oauth/authorize, then the IdP (clients redeem codes at %s/token)\n", srv.URL(), is)
	}
	fmt.Fprintf(stderr, "  IdP issuer:                %s (shaped like Dex: /auth, /token, /keys, /userinfo)\n", is)
	fmt.Fprintf(stderr, "  allowed MCP clients:       %s\n", strings.Join(o.AllowedClients, ", "))
	fmt.Fprintf(stderr, "  scopes asked for at IdP:   %s\n", strings.Join(srv.IdPScopes(), " "))
	fmt.Fprintf(stderr, "  tokens: live %s, /mcp requires aud %s; refresh tokens rotate (%s reuse interval), %s\n", o.AccessTokenTTL, devserver.MCPAudience, max(o.RefreshReuseInterval, 0),
		map[bool]string{false: "one per user and client", true: "several per user and client"}[o.MultipleRefreshTokens])
	fmt.Fprintf(stderr, "  PKCE mode: %s, forward nonce: %t, auto-approve: %t\n", o.PKCE, o.ForwardNonce, o.AutoApprove)
	switch {
	case o.NoOfflineAccess:
		fmt.Fprintln(stderr, "  offline access (Flow 2):   off")
	case o.Generation == 2:
		fmt.Fprintf(stderr, "  offline access (Flow 2):   %s/oauth/authorize-nextcloud?state=..., tools %s, %s, %s\n", srv.URL(), devserver.ToolProvision, devserver.ToolCheckStatus, devserver.ToolRevoke)
	default:
		fmt.Fprintf(stderr, "  offline access (Flow 2):   tools %s, %s, %s (optional user_id)\n", devserver.ToolProvision, devserver.ToolCheckStatus, devserver.ToolRevoke)
	}
	if o.Generation == 2 || o.LoginFlowTools {
		who := "the browser counts as logged in as the flow's user (else " + o.NextcloudUser + ")"
		if o.NextcloudLoginForm {
			who = "the browser logs in with a test user's name and password"
		}
		where := "its own origin"
		if o.NextcloudSameOrigin {
			where = "the MCP server's origin"
		}
		fmt.Fprintf(stderr, "  Nextcloud (stand-in):      %s (%s): Login Flow v2 at /index.php/login/v2, tools %s, %s, %s; %s\n", srv.NextcloudURL(), where,
			devserver.ToolNCAuthProvision, devserver.ToolNCAuthCheck, devserver.ToolNCAuthUpdate, who)
	}
	if o.Generation == 2 && o.StrictScopeClaim {
		fmt.Fprintln(stderr, "  STRICT SCOPE CLAIM: every tool call is refused (the tokens have no scope claim)")
	}
	if o.ElicitationURLMode {
		fmt.Fprintln(stderr, "  elicitation:               URL mode for clients that support it")
	}
	if o.ProvisionURL != "" {
		fmt.Fprintln(stderr, "  FAULT: the provisioning tools return a fixed URL")
	}
	if o.NoRegistration {
		fmt.Fprintln(stderr, "  IdP client registration:   off")
	} else {
		fmt.Fprintf(stderr, "  IdP client registration:   %s/register (RFC 7591/7592)\n", is)
	}
	if o.ForgetClientsOnRestart {
		fmt.Fprintln(stderr, "  IdP client registration:   forgotten, with its tokens, when the MCP server restarts")
	}
	if o.RegistrationFault != "" {
		fmt.Fprintf(stderr, "  FAULT: IdP registration answers %q\n", o.RegistrationFault)
	}
	if o.NoRevocation {
		fmt.Fprintln(stderr, "  IdP token revocation:      off")
	} else {
		fmt.Fprintf(stderr, "  IdP token revocation:      %s/token/revoke (RFC 7009)\n", is)
	}
	fmt.Fprintln(stderr, "  test users (username / password):")
	for _, u := range []devserver.User{devserver.DefaultUser, devserver.SecondUser, devserver.RecordedUser} {
		fmt.Fprintf(stderr, "    %s / %s  (sub %s, %s)\n", u.Username, u.Password, u.Subject, u.Email)
	}
	fmt.Fprintln(stderr, "  IdP clients:")
	fmt.Fprintf(stderr, "    %s, %s: public, redirect http://127.0.0.1:ANY/callback or http://localhost:ANY/callback\n", devserver.PublicClientID, devserver.ClaudeDesktopClientID)
	fmt.Fprintf(stderr, "    %s: confidential, secret %s, same redirects\n", devserver.ConfidentialClientID, devserver.ConfidentialClientSecret)
	fmt.Fprintf(stderr, "    %s: the server's own client, redirect %s/oauth/callback\n", devserver.ServerClientID, srv.URL())
	if *restarts > 0 {
		fmt.Fprintf(stderr, "  RESTARTS: the MCP server restarts every %s (sessions forgotten, tokens kept)\n", *restarts)
	}
	fmt.Fprintln(stdout, srv.URL())
	return &devServer{Server: srv, stopRestarts: restartEvery(srv, *restarts, logger.Printf)}, nil
}
