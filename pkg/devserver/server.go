// Package devserver runs a development stand-in for the Nextcloud MCP server
// and its identity provider, on loopback only, for tests and demos.
//
// Two listeners on 127.0.0.1 serve two parties:
//
//   - an OpenID Provider (built on github.com/zitadel/oidc/v3/pkg/op) with
//     discovery, JWKS, authorization code with PKCE (S256), refresh tokens
//     with rotation (only when offline_access was asked for), RFC 7009
//     revocation, RFC 7591/7592 dynamic client registration, userinfo and a
//     small login page;
//   - the MCP server. In generation 1 ("pass-through", the default) it
//     serves RFC 9728 protected resource metadata naming the OP, and
//     /oauth/authorize, which checks the request and redirects to the OP with
//     the client's own client_id, redirect_uri and state. In generation 2
//     (Options.Generation) it is its own authorization server instead
//     (RFC 8414 metadata, /oauth/authorize, /oauth/token, /oauth/register,
//     /oauth/userinfo): it logs users in at the OP with its own client and
//     issues short-lived single-use codes of its own. In both generations it
//     offers ADR-004's Flow 2 (/oauth/authorize-nextcloud and
//     /oauth/callback, through which it obtains its own refresh token for a
//     user) and a bearer-protected MCP Streamable HTTP endpoint at /mcp with
//     the seed-generation Flow 2 tools (ToolProvision, ToolCheckStatus,
//     ToolRevoke).
//
// It is a development server: it keeps everything in memory, has fixed test
// users and clients, and refuses to listen on anything but loopback.
package devserver

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// PKCE modes of Options.PKCE: how the OP treats a code_verifier sent for a
// code that was issued without a code_challenge.
const (
	// PKCEReject is zitadel's own behaviour: 400 invalid_request
	// "code_verifier unexpectedly provided" (the code stays redeemable).
	PKCEReject = "reject"
	// PKCEIgnore drops the verifier before the OP sees it, like Nextcloud's
	// oidc app.
	PKCEIgnore = "ignore"
	// PKCERequire makes the stand-in forward the client's code_challenge to
	// the OP, like a fixed server, so the OP requires the verifier.
	PKCERequire = "require"
)

// DefaultAllowedClients is the stand-in's default client registry (the
// server's ALLOWED_MCP_CLIENTS default).
var DefaultAllowedClients = []string{ClaudeDesktopClientID, PublicClientID}

// DefaultScopes is the default of Options.Scopes (the server's
// NEXTCLOUD_OIDC_SCOPES).
const DefaultScopes = "mcp-server:api offline_access"

// Options configures a dev server. Zero values give the defaults noted.
type Options struct {
	// Addr is the MCP server stand-in's listen address; default
	// "127.0.0.1:0". Anything but a loopback address is refused.
	Addr string
	// IdPAddr is the OP's listen address; default "127.0.0.1:0". Loopback only.
	IdPAddr string
	// AutoApprove makes the OP's login complete at once as DefaultUser,
	// without a page (for automation and headless browsers).
	AutoApprove bool
	// AutoDeny makes the OP's login answer at once that the user refused
	// (error=access_denied to the client's redirect URI); it wins over
	// AutoApprove.
	AutoDeny bool
	// DenyClients makes the OP's login answer access_denied for these
	// client ids only (e.g. ServerClientID: the user refuses Flow 2 but
	// not the login).
	DenyClients []string
	// LoginFlowTools makes the MCP endpoint offer the newer servers' tools
	// (nc_auth_provision_access, nc_auth_check_status: Nextcloud Login
	// Flow v2 app passwords) instead of the seed's, and serve
	// /api/v1/status.
	LoginFlowTools bool

	// Quirks of IdPs and servers in the wild.

	// DiscoveryRedirect answers the OP's discovery with a 301 to
	// /index.php/.well-known/openid-configuration, as Nextcloud does.
	DiscoveryRedirect bool
	// PRMIssuer, if set, is published as authorization_servers[0] instead
	// of the real issuer (a server behind a proxy naming an internal host).
	PRMIssuer string
	// NoRefreshRotation makes refreshes keep the refresh token valid and
	// answer without a refresh_token.
	NoRefreshRotation bool
	// OmitExpiresIn drops expires_in from token responses.
	OmitExpiresIn bool

	// AllowedClients is the stand-in's client registry (ALLOWED_MCP_CLIENTS);
	// default DefaultAllowedClients. Ids the OP does not know yet are
	// registered there as public native clients.
	AllowedClients []string
	// Scopes are the server-configured scopes (NEXTCLOUD_OIDC_SCOPES), asked
	// for at the IdP after "openid profile email"; default DefaultScopes.
	// Set it to "openid" to ask for nothing more than "openid profile email".
	Scopes string
	// PKCE is one of PKCEReject (default), PKCEIgnore or PKCERequire.
	PKCE string
	// ForwardNonce makes the stand-in forward the client's nonce to the IdP
	// (the generation-1 server does not).
	ForwardNonce bool
	// AccessTokenTTL is the lifetime of access tokens; default 1h.
	AccessTokenTTL time.Duration

	// IDTokenAudience, if set, is put in ID tokens' aud instead of the usual
	// audience (a misconfigured OP); access tokens stay as they are, and so
	// do the ID tokens of the MCP server's own client (ServerClientID).
	IDTokenAudience string
	// NonceOverride, if set, is the nonce the stand-in forwards to the IdP
	// instead of the client's.
	NonceOverride string

	// NoOfflineAccess runs the MCP server without offline access: the MCP
	// endpoint offers none of the Flow 2 tools, and /oauth/authorize-nextcloud
	// and /oauth/callback answer 404 (in generation 2 /oauth/callback still
	// serves the proxy's logins).
	NoOfflineAccess bool
	// ProvisionURL, if set, is returned verbatim as authorization_url by
	// provision_nextcloud_access instead of a Flow 2 URL (a fault: for
	// example "javascript:alert(1)" or "https://evil.example/x").
	ProvisionURL string

	// NoRegistration turns the OP's dynamic client registration off: no
	// registration_endpoint in its discovery, and /register answers 404.
	NoRegistration bool
	// NoRevocation turns the OP's RFC 7009 revocation off: no
	// revocation_endpoint in its discovery, and the endpoint answers 404.
	NoRevocation bool
	// RegistrationFault makes the OP's POST /register misbehave: one of
	// RegistrationFaultRefuse, RegistrationFaultRateLimit or
	// RegistrationFaultMalformed; "" (default) serves it normally.
	RegistrationFault string
	// RegisteredSecretTTL, if positive, makes the secrets of clients
	// registered at the OP expire that long after registration (reported
	// in client_secret_expires_at); default 0, secrets never expire.
	RegisteredSecretTTL time.Duration

	// Generation is the MCP server generation to stand in for: 0 or 1 for
	// generation 1 ("pass-through", the default), 2 for generation 2 (the
	// server is its own authorization server and proxies logins to the OP).
	Generation int
	// CodeTTL is how long a code issued by the generation-2 server stays
	// redeemable; default DefaultCodeTTL.
	CodeTTL time.Duration
	// RegisterRateLimit is how many requests per minute and remote address
	// the generation-2 server's /oauth/register serves before it answers
	// 429; default DefaultRegisterRateLimit.
	RegisterRateLimit int

	// Logf, if set, receives one line per request (listener, method, path,
	// status), from many goroutines at once. Query strings and bodies, and
	// so tokens, codes, secrets and verifiers, are never logged.
	Logf func(format string, args ...any)
}

// Server is a running dev server.
type Server struct {
	opts Options

	verifierMu sync.Mutex
	verifiers  []string // code_verifier values seen at the OP's token endpoint
	url        string
	issuer     string
	store      *storage
	provider   *op.Provider
	standIn    *standIn

	serverSecret string

	mcpSrv, idpSrv   *http.Server
	mcpOnce, idpOnce sync.Once
	mcpErr, idpErr   error
	mcpDone, idpDone chan struct{}
	// loginURL and extraScopes are shared by every client of the OP.
	loginURL    func(authRequestID string) string
	extraScopes map[string]bool

	countMu          sync.Mutex // guards the counters below
	tokenRequests    map[string]int
	idpTokenRequests map[string]int
	registrations    int
}

// Start starts a dev server. It returns once both listeners accept
// connections.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.IdPAddr == "" {
		opts.IdPAddr = "127.0.0.1:0"
	}
	if opts.AllowedClients == nil {
		opts.AllowedClients = slices.Clone(DefaultAllowedClients)
	}
	if opts.Scopes == "" {
		opts.Scopes = DefaultScopes
	}
	if opts.PKCE == "" {
		opts.PKCE = PKCEReject
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = time.Hour
	}
	switch opts.Generation {
	case 0:
		opts.Generation = 1
	case 1, 2:
	default:
		return nil, fmt.Errorf("devserver: unknown generation %d (want 1 or 2)", opts.Generation)
	}
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = DefaultCodeTTL
	}
	if opts.RegisterRateLimit <= 0 {
		opts.RegisterRateLimit = DefaultRegisterRateLimit
	}
	switch opts.PKCE {
	case PKCEReject, PKCEIgnore, PKCERequire:
	default:
		return nil, fmt.Errorf("devserver: unknown PKCE mode %q (want %s, %s or %s)", opts.PKCE, PKCEReject, PKCEIgnore, PKCERequire)
	}
	switch opts.RegistrationFault {
	case "", RegistrationFaultRefuse, RegistrationFaultRateLimit, RegistrationFaultMalformed:
	default:
		return nil, fmt.Errorf("devserver: unknown registration fault %q (want %s, %s or %s)", opts.RegistrationFault,
			RegistrationFaultRefuse, RegistrationFaultRateLimit, RegistrationFaultMalformed)
	}
	mcpAddr, err := loopbackAddr(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("devserver: Addr: %w", err)
	}
	idpAddr, err := loopbackAddr(opts.IdPAddr)
	if err != nil {
		return nil, fmt.Errorf("devserver: IdPAddr: %w", err)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devserver: signing key: %w", err)
	}

	mcpLn, err := net.Listen("tcp", mcpAddr)
	if err != nil {
		return nil, fmt.Errorf("devserver: %w", err)
	}
	idpLn, err := net.Listen("tcp", idpAddr)
	if err != nil {
		mcpLn.Close()
		return nil, fmt.Errorf("devserver: %w", err)
	}

	s := &Server{
		opts:             opts,
		url:              "http://" + mcpLn.Addr().String(),
		issuer:           "http://" + idpLn.Addr().String(),
		serverSecret:     randomToken(),
		mcpDone:          make(chan struct{}),
		idpDone:          make(chan struct{}),
		tokenRequests:    make(map[string]int),
		idpTokenRequests: make(map[string]int),
	}
	scopes := joinScopes(baseScopes, strings.Fields(opts.Scopes))
	s.store = newStorage(s.clients(scopes), []User{DefaultUser, SecondUser},
		&signingKey{id: randomID()[:16], key: rsaKey}, opts.AccessTokenTTL)
	s.store.noRotation = opts.NoRefreshRotation

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	s.provider, err = op.NewProvider(&op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       joinScopes(baseScopes, []string{oidc.ScopeOfflineAccess}, scopes),
	}, s.store, op.StaticIssuer(s.issuer), op.WithAllowInsecure())
	if err != nil {
		mcpLn.Close()
		idpLn.Close()
		return nil, fmt.Errorf("devserver: %w", err)
	}

	up := &upstream{
		clientID:           ServerClientID,
		secret:             s.serverSecret,
		redirectURI:        s.url + "/oauth/callback",
		authEndpoint:       s.provider.AuthorizationEndpoint().Absolute(s.issuer),
		tokenEndpoint:      s.provider.TokenEndpoint().Absolute(s.issuer),
		userinfoEndpoint:   s.provider.UserinfoEndpoint().Absolute(s.issuer),
		revocationEndpoint: s.provider.RevocationEndpoint().Absolute(s.issuer),
		client:             &http.Client{Timeout: 10 * time.Second},
		idTokens: gooidc.NewVerifier(s.issuer,
			&gooidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}},
			&gooidc.Config{ClientID: ServerClientID}),
	}
	s.standIn = &standIn{
		url:            s.url,
		issuer:         s.issuer,
		authEndpoint:   up.authEndpoint,
		allowedClients: slices.Clone(opts.AllowedClients),
		registeredAtOP: s.isRegisteredClient,
		scopes:         scopes,
		pkce:           opts.PKCE,
		forwardNonce:   opts.ForwardNonce,
		nonceOverride:  opts.NonceOverride,
		prmIssuer:      strings.TrimRight(opts.PRMIssuer, "/"),
	}
	if !opts.NoOfflineAccess && !opts.LoginFlowTools {
		s.standIn.flow2 = newFlow2(s.url, up, opts.ProvisionURL, opts.NoRevocation)
	}
	if opts.LoginFlowTools {
		s.standIn.loginFlow = newLoginFlow(s.url, opts.AutoApprove, opts.ProvisionURL)
	}
	if opts.Generation == 2 {
		s.standIn.proxy = newProxyAS(s.url, up, s.standIn.allowed, s.staticClientSecret, strings.Fields(opts.Scopes),
			opts.CodeTTL, opts.RegisterRateLimit, s.countServerTokenRequest)
	}
	s.standIn.mcp = newMCPEndpoint(s.standIn.resourceMetadataURL(),
		op.NewAccessTokenVerifier(s.issuer, &op.OpenIDKeySet{Storage: s.store}), s.standIn.flow2)
	if s.standIn.loginFlow != nil {
		s.standIn.mcp.addLoginFlowTools(s.standIn.loginFlow)
	}

	login := &loginUI{
		store:       s.store,
		autoApprove: opts.AutoApprove,
		autoDeny:    opts.AutoDeny,
		denyClients: slices.Clone(opts.DenyClients),
		deny: func(w http.ResponseWriter, r *http.Request, ar *authRequest) {
			_ = s.store.DeleteAuthRequest(r.Context(), ar.id)
			op.AuthRequestError(w, r, ar, oidc.ErrAccessDenied().WithDescription("The user refused to grant access."), s.provider)
		},
		callbackURL: func(ctx context.Context, id string) string {
			return op.AuthCallbackURL(s.provider)(op.ContextWithIssuer(ctx, s.issuer), id)
		},
	}
	idpMux := http.NewServeMux()
	idpMux.Handle(loginPath, login)
	if opts.DiscoveryRedirect {
		idpMux.HandleFunc("GET "+oidc.DiscoveryEndpoint, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/index.php"+oidc.DiscoveryEndpoint, http.StatusMovedPermanently)
		})
		idpMux.HandleFunc("GET /index.php"+oidc.DiscoveryEndpoint, s.discovery)
	} else {
		idpMux.HandleFunc("GET "+oidc.DiscoveryEndpoint, s.discovery)
	}
	if opts.NoRegistration {
		idpMux.HandleFunc(registerPath, http.NotFound)
		idpMux.HandleFunc(registerPath+"/", http.NotFound)
	} else {
		idpMux.HandleFunc(registerPath, s.register)
		idpMux.HandleFunc(registerPath+"/{id}", s.manageRegistration)
	}
	if opts.NoRevocation {
		idpMux.HandleFunc(s.provider.RevocationEndpoint().Relative(), http.NotFound)
	}
	idpMux.Handle("/", s.tokenEndpoint(s.provider.TokenEndpoint().Relative(), s.provider))

	s.mcpSrv = &http.Server{Handler: s.logRequests("mcp", s.standIn.handler()), ReadHeaderTimeout: 10 * time.Second}
	s.idpSrv = &http.Server{Handler: s.logRequests("idp", idpMux), ReadHeaderTimeout: 10 * time.Second}
	go serve(s.mcpSrv, mcpLn, s.mcpDone)
	go serve(s.idpSrv, idpLn, s.idpDone)
	return s, nil
}

// discovery serves the OP's discovery document: zitadel's, with the
// registration endpoint added and, with NoRevocation, the revocation
// endpoint removed.
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	cfg := op.CreateDiscoveryConfig(op.ContextWithIssuer(r.Context(), s.issuer), s.provider, s.store)
	if !s.opts.NoRegistration {
		cfg.RegistrationEndpoint = s.issuer + registerPath
	}
	if s.opts.NoRevocation {
		cfg.RevocationEndpoint = ""
		cfg.RevocationEndpointAuthMethodsSupported = nil
		cfg.RevocationEndpointAuthSigningAlgValuesSupported = nil
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	op.Discover(w, cfg)
}

func serve(srv *http.Server, ln net.Listener, done chan<- struct{}) {
	defer close(done)
	_ = srv.Serve(ln)
}

// clients returns the OP's client registry.
func (s *Server) clients(scopes []string) map[string]*opClient {
	extra := map[string]bool{"mcp-server:api": true}
	for _, sc := range scopes {
		extra[sc] = true
	}
	loginURL := func(id string) string { return s.issuer + loginPath + "?id=" + id }
	s.loginURL, s.extraScopes = loginURL, extra
	native := func(id, secret string) *opClient {
		c := &opClient{
			id:           id,
			secret:       secret,
			public:       secret == "",
			appType:      op.ApplicationTypeNative,
			redirectURIs: slices.Clone(nativeRedirectURIs),
			authMethod:   oidc.AuthMethodBasic,
			loginURL:     loginURL,
			extraScopes:  extra,
		}
		if c.public {
			c.authMethod = oidc.AuthMethodNone
		}
		return c
	}
	clients := map[string]*opClient{
		PublicClientID:        native(PublicClientID, ""),
		ClaudeDesktopClientID: native(ClaudeDesktopClientID, ""),
		ConfidentialClientID:  native(ConfidentialClientID, ConfidentialClientSecret),
		ServerClientID: {
			id:           ServerClientID,
			secret:       s.serverSecret,
			appType:      op.ApplicationTypeWeb,
			redirectURIs: []string{s.url + "/oauth/callback"},
			authMethod:   oidc.AuthMethodBasic,
			loginURL:     loginURL,
			extraScopes:  extra,
		},
	}
	for _, id := range s.opts.AllowedClients {
		if _, ok := clients[id]; !ok && id != "" {
			clients[id] = native(id, "")
		}
	}
	return clients
}

// joinScopes concatenates scope lists, keeping the first of duplicates.
func joinScopes(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, sc := range l {
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	return out
}

// loopbackAddr checks that addr is host:port with a loopback host and
// returns the address to listen on ("localhost" becomes 127.0.0.1).
func loopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "localhost" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%q is not a loopback address: the dev server listens on loopback only (for example 127.0.0.1:0)", addr)
	}
	return addr, nil
}

// URL returns the MCP server stand-in's base URL, such as
// http://127.0.0.1:PORT (no trailing slash).
func (s *Server) URL() string { return s.url }

// IssuerURL returns the OP's issuer, such as http://127.0.0.1:PORT (no
// trailing slash), exactly as its discovery document states it.
func (s *Server) IssuerURL() string { return s.issuer }

// ResourceURL returns the protected resource, URL()+"/mcp".
func (s *Server) ResourceURL() string { return s.standIn.resourceURL() }

// IdPScopes returns the scopes the stand-in asks the IdP for: "openid
// profile email" and the configured scopes. The protected resource metadata
// lists the same scopes.
func (s *Server) IdPScopes() []string { return slices.Clone(s.standIn.scopes) }

// ServerClientSecret returns the secret of ServerClientID, chosen at start.
func (s *Server) ServerClientSecret() string { return s.serverSecret }

// Options returns the options the server runs with, defaults filled in.
func (s *Server) Options() Options {
	o := s.opts
	o.AllowedClients = slices.Clone(o.AllowedClients)
	return o
}

// TokenRequests returns how many token requests with that grant_type (such
// as "authorization_code" or "refresh_token") MCP clients sent, whether they
// succeeded or not: requests that reached the OP's token endpoint from any
// client but the MCP server's own (ServerClientID), plus, in generation 2,
// requests to the server's /oauth/token. The server's own requests at the
// OP (Flow 2, the generation-2 proxy) are counted by IdPTokenRequests only.
func (s *Server) TokenRequests(grantType string) int {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	return s.tokenRequests[grantType]
}

// IdPTokenRequests returns how many requests with that grant_type reached
// the OP's token endpoint from any client, the MCP server's own included,
// whether they succeeded or not.
func (s *Server) IdPTokenRequests(grantType string) int {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	return s.idpTokenRequests[grantType]
}

// ProvisionedToken returns the refresh token that Flow 2 stored for the
// user with that sub, if any.
func (s *Server) ProvisionedToken(sub string) (ProvisionedToken, bool) {
	if s.standIn.loginFlow != nil {
		return s.standIn.loginFlow.token(sub)
	}
	if s.standIn.flow2 == nil {
		return ProvisionedToken{}, false
	}
	return s.standIn.flow2.token(sub)
}

// staticClientSecret reports whether secret authenticates a static client
// at the generation-2 server: any secret does for a client that is public at
// the OP, else only its OP secret.
func (s *Server) staticClientSecret(clientID, secret string) bool {
	c, ok := s.store.client(clientID)
	return !ok || c.public || c.checkSecret(secret)
}

// RestartServer makes the MCP server stand-in forget what a restarted server
// forgets: in generation 2 its client registrations, login sessions, codes
// and rate-limit counters; in both generations the Flow 2 states, sessions
// and stored refresh tokens, and every MCP session. The OP keeps running and
// the tokens it issued stay valid; AllowedClients and clients registered at
// the OP stay known.
func (s *Server) RestartServer() {
	if s.standIn.proxy != nil {
		s.standIn.proxy.reset()
	}
	if s.standIn.flow2 != nil {
		s.standIn.flow2.reset()
	}
	if s.standIn.loginFlow != nil {
		s.standIn.loginFlow.reset()
	}
	s.standIn.mcp.restart()
}

// ToolCalls returns how many times the MCP tool with that name was called,
// whatever the outcome.
func (s *Server) ToolCalls(name string) int { return s.standIn.mcp.toolCalls(name) }

// StopIdP stops only the OP's listener, so that clients find the IdP down
// while the MCP server stand-in keeps running. It is safe to call more than once.
func (s *Server) StopIdP() error {
	s.idpOnce.Do(func() { s.idpErr = shutdown(s.idpSrv, s.idpDone) })
	return s.idpErr
}

// Close stops both listeners. It is safe to call more than once.
func (s *Server) Close() error {
	s.mcpOnce.Do(func() {
		s.standIn.mcp.closeSessions()
		s.mcpErr = shutdown(s.mcpSrv, s.mcpDone)
	})
	return errors.Join(s.mcpErr, s.StopIdP())
}

func shutdown(srv *http.Server, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = srv.Close()
	}
	<-done
	return err
}

// logRequests logs method, path and status of every request when
// Options.Logf is set. Query strings and bodies, which carry codes and
// tokens, are left out.
func (s *Server) logRequests(side string, next http.Handler) http.Handler {
	if s.opts.Logf == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.opts.Logf("%s: %s %s -> %d", side, r.Method, r.URL.Path, sw.status)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status = status
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
