// Package devserver runs a development stand-in for the Nextcloud MCP server
// and its identity provider, on loopback only, for tests and demos. It is
// held to recordings of what the real servers answer (v0.31.0 for
// generation 1, v0.181.0 for generation 2, with Dex as the IdP; see
// testdata/recordings, a copy of ../shared/recordings, and recordings_test.go).
//
// Listeners on 127.0.0.1 serve the parties: the OpenID Provider, the MCP
// server and, where the server provisions through Login Flow v2, Nextcloud,
// on an origin of its own as in every real deployment (NextcloudSameOrigin
// puts it on the MCP server's origin instead).
//
// The OpenID Provider is built on github.com/zitadel/oidc/v3/pkg/op and
// shaped like Dex: endpoints at Dex's paths (/auth, /token, /keys,
// /userinfo, /token/introspect, /logout) and discovery; authorization code
// with PKCE; refresh tokens only with offline_access, rotated with Dex's 3 s
// reuse interval, one per user and client; JWT access and ID tokens with
// Dex's claims (aud the client, or with the cross-client scope
// audience:server:client_id:X the client and X, with azp); Dex's error
// answers; unknown scopes refused with a redirect error. Beyond Dex it
// offers RFC 7009 revocation (/token/revoke), RFC 7591/7592 dynamic client
// registration (/register), and a small login page with fixed test users
// (DefaultUser, SecondUser, RecordedUser).
//
// The MCP server, in generation 1 ("pass-through", the default), serves:
//
//   - RFC 9728 protected resource metadata naming the OP (at
//     /.well-known/oauth-protected-resource and .../mcp);
//   - /oauth/authorize, which checks the request and redirects to the OP with
//     the client's own client_id, redirect_uri and state (the client redeems
//     the code at the OP);
//   - Flow 2 (/oauth/authorize-nextcloud, /oauth/callback), through which it
//     gets its own refresh token for a user (an unknown state at
//     /oauth/callback falls into the server's browser login, which tries
//     to redeem the code);
//   - the MCP endpoint /mcp with the tools provision_nextcloud_access,
//     check_provisioning_status and revoke_nextcloud_access (optional
//     user_id).
//
// With Options.LoginFlowTools it also offers what generation 2 offers for
// Login Flow v2 (below), which no real generation-1 server has.
//
// In generation 2 ("authorization-server proxy", Options.Generation 2) it
// is the client's authorization server instead: RFC 8414 metadata,
// /oauth/authorize (which logs the user in at the OP with the server's own
// client), /oauth/callback (which issues the server's own 60-second codes),
// /oauth/token (which relays the OP's tokens), /oauth/register (which maps
// loopback registrations to a static client); plus Flow 2 by URL,
// /api/v1/status, a stand-in for Nextcloud's Login Flow v2 (/index.php/login/v2,
// its pages, and OCS /ocs/v2.php/cloud/user), and six tools:
// the three above without user_id and nc_auth_provision_access,
// nc_auth_check_status and nc_auth_update_scopes, which provision an app
// password through the Login Flow stand-in (with MCP elicitation when the
// client supports it).
//
// The MCP endpoint is the official Go SDK's Streamable HTTP server behind a
// thin adapter that gives its answers the wire format of the Python SDK the
// real servers run on (see mcpwire.go). As that SDK did before its PR
// #1478, a session refuses every request but ping until the client's
// notifications/initialized has arrived (see mcp.go).
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
	"sort"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// PKCE modes of Options.PKCE: how the OP treats a code_verifier sent for a
// code that was issued without a code_challenge (the generation-1 server
// never passes the client's challenge on).
const (
	// PKCEReject is Dex's behaviour (and zitadel's): 400 invalid_request
	// "No PKCE flow started. Cannot check code_verifier." (the code stays
	// redeemable).
	PKCEReject = "reject"
	// PKCEIgnore drops the verifier before the OP sees it, like Nextcloud's
	// oidc app.
	PKCEIgnore = "ignore"
	// PKCERequire makes the generation-1 server forward the client's
	// code_challenge to the OP, like a fixed server, so the OP requires the
	// verifier.
	PKCERequire = "require"
)

// DefaultAllowedClients is the MCP server's default client registry (the
// server's ALLOWED_MCP_CLIENTS). Order matters: the generation-2 server maps
// a registration to the first static client that accepts its redirect URIs.
var DefaultAllowedClients = []string{PublicClientID, ClaudeDesktopClientID}

// DefaultScopes is the default of Options.Scopes (the generation-1 server's
// NEXTCLOUD_OIDC_SCOPES), as in the recordings: offline_access and Dex's
// cross-client scope that puts the server's client into the token's
// audience.
const DefaultScopes = "offline_access " + crossClientScopePrefix + ServerClientID

// baseScopes are always asked for at the IdP, before the configured scopes.
var baseScopes = []string{"openid", "profile", "email"}

// gen2IdPScopes are the scopes the generation-2 server always asks the IdP for.
var gen2IdPScopes = []string{"openid", "profile", "email", "offline_access"}

// Options configures a dev server. Zero values give the defaults noted.
type Options struct {
	// Addr is the MCP server's listen address; default "127.0.0.1:0".
	// Anything but a loopback address is refused.
	Addr string
	// IdPAddr is the OP's listen address; default "127.0.0.1:0". Loopback only.
	IdPAddr string
	// NextcloudAddr is the listen address of the Nextcloud stand-in (Login
	// Flow v2, OCS, the settings page); default "127.0.0.1:0". Loopback only.
	NextcloudAddr string
	// NextcloudSameOrigin serves the Nextcloud stand-in on the MCP server's
	// own listener, as behind a reverse proxy that puts both on one host,
	// instead of on an origin of its own.
	NextcloudSameOrigin bool
	// NextcloudTLS serves the Nextcloud stand-in over https, with a
	// certificate for 127.0.0.1 and localhost from a CA made at start
	// (NextcloudCACertPEM); the MCP server's own requests trust it.
	NextcloudTLS bool
	// NextcloudLoginForm makes the stand-in's pages ask the browser to log
	// in (a form taking a test user's username or sub, in any case, with
	// its password) before the grant, as a browser without a Nextcloud
	// session sees it; the login name the poll answers is then what was
	// typed. By default the browser counts as logged in as the user the
	// flow is for.
	NextcloudLoginForm bool
	// AutoApprove makes the OP's login complete at once as DefaultUser,
	// without a page, and the Login Flow stand-in's page grant access at
	// once (for automation and headless browsers).
	AutoApprove bool
	// AutoDeny makes the OP's login answer at once that the user refused
	// (error=access_denied to the client's redirect URI); it wins over
	// AutoApprove.
	AutoDeny bool
	// DenyClients makes the OP's login answer access_denied for these
	// client ids only (e.g. ServerClientID: the user refuses Flow 2 but
	// not the login).
	DenyClients []string
	// LoginFlowTools offers, in generation 1 too, what generation 2 always
	// offers: the nc_auth_* tools and the Nextcloud Login Flow v2 stand-in
	// (no real generation-1 server has them).
	LoginFlowTools bool
	// NextcloudUser is the username of the test user who is logged in at the
	// Login Flow stand-in's pages, for flows that the server's own tools did
	// not start (those are shown for the user of the tool call); default
	// DefaultUser's.
	NextcloudUser string

	// Quirks of IdPs and servers in the wild.

	// DiscoveryRedirect answers the OP's discovery with a 301 to
	// /index.php/.well-known/openid-configuration, as Nextcloud does.
	DiscoveryRedirect bool
	// PRMIssuer, if set, is published as authorization_servers[0] instead
	// of the real authorization server (a server behind a proxy naming an
	// internal host).
	PRMIssuer string
	// NoRefreshRotation makes refreshes keep the refresh token valid and
	// answer without a refresh_token.
	NoRefreshRotation bool
	// MultipleRefreshTokens lets a user hold several refresh tokens at one
	// client. By default, as with Dex, a new login of the same user with
	// the same client invalidates the user's earlier refresh tokens there.
	MultipleRefreshTokens bool
	// RequiredScope, if set, makes /mcp answer a token whose scopes (its
	// scope claim, or without one what the server assumes, see
	// StrictScopeClaim) lack it with 403 insufficient_scope and that scope
	// in the challenge, as the MCP authorization specification describes
	// for step-up authorization. (v0.181.0 refuses per tool instead.)
	RequiredScope string
	// RefreshReuseInterval is how long after a refresh token was issued a
	// refresh with it returns the same token instead of rotating it; 0
	// means Dex's DefaultRefreshReuseInterval, a negative value rotates on
	// every refresh (as Nextcloud's oidc app does).
	RefreshReuseInterval time.Duration
	// OmitExpiresIn drops expires_in from the OP's token responses.
	OmitExpiresIn bool

	// AllowedClients is the MCP server's client registry (ALLOWED_MCP_CLIENTS);
	// default DefaultAllowedClients. Ids the OP does not know yet are
	// registered there as public native clients.
	AllowedClients []string
	// Scopes are the generation-1 server's configured scopes
	// (NEXTCLOUD_OIDC_SCOPES), asked for at the IdP after "openid profile
	// email"; default DefaultScopes. Without offline_access no refresh token
	// is issued; without the cross-client scope the tokens lack the audience
	// the MCP endpoint requires. Generation 2 ignores it: that server always
	// asks for "openid profile email offline_access".
	Scopes string
	// PKCE is one of PKCEReject (default), PKCEIgnore or PKCERequire.
	PKCE string
	// ForwardNonce makes the generation-1 server forward the client's nonce
	// to the IdP (the real one does not).
	ForwardNonce bool
	// AccessTokenTTL is the lifetime of the OP's access and ID tokens;
	// default 1h. The token response's expires_in counts as Dex's does
	// (3599 for an hour), and an access token stops working once
	// expires_in has passed since it was issued: never later than a client
	// that counts from the answer's receipt expects.
	AccessTokenTTL time.Duration

	// IDTokenAudience, if set, is put in ID tokens' aud instead of the usual
	// audience (a misconfigured OP); access tokens stay as they are, and so
	// do the ID tokens of the MCP server's own client (ServerClientID).
	IDTokenAudience string
	// NonceOverride, if set, is the nonce the generation-1 server forwards
	// to the IdP instead of the client's.
	NonceOverride string

	// NoOfflineAccess runs the MCP server without offline access: the MCP
	// endpoint offers none of the Flow 2 tools (provision_nextcloud_access,
	// check_provisioning_status, revoke_nextcloud_access), and
	// /oauth/authorize-nextcloud answers 404.
	NoOfflineAccess bool
	// ProvisionURL, if set, is returned verbatim by the provisioning tools
	// instead of the URL they would give (provision_nextcloud_access's
	// authorization_url or provisioning_url, nc_auth_provision_access's
	// login_url): a fault, for example "javascript:alert(1)".
	ProvisionURL string

	// StrictScopeClaim makes the generation-2 tools read the token's scope
	// claim as the real server does: the OP's tokens have none, so every
	// tool call is refused ("Access denied ... Missing required scopes:
	// openid"). By default a token without a scope claim counts as having
	// "openid profile email", as in the recording setup.
	StrictScopeClaim bool
	// ToolProgress makes every tool call that carries a progress token
	// send one notifications/progress before its result, as servers whose
	// tools report progress do (the recorded servers' tools send none):
	// for tests of clients and proxies that pass notifications on.
	ToolProgress bool
	// ElicitationURLMode makes nc_auth_provision_access and
	// nc_auth_update_scopes ask clients that support URL-mode elicitation
	// to open the login URL (mode "url") instead of showing a form.
	ElicitationURLMode bool

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
	// ForgetClientsOnRestart makes RestartServer also forget every client
	// registered at the OP through RFC 7591 (/register), with its tokens and
	// refresh tokens, as an authorization server that keeps its dynamic
	// registrations in memory forgets them when it restarts: a later
	// refresh or code exchange by such a client is answered
	// invalid_client. Static clients (the fixed ones and AllowedClients)
	// stay.
	ForgetClientsOnRestart bool

	// WorkloadKey, if set, makes the OP take workloads' own JWTs signed
	// with the matching private key in RFC 7523 jwt-bearer grants
	// (workload identity federation): a JWT whose aud is the OP's issuer
	// and whose sub is a test user's username or subject gets that user's
	// tokens, with no client authentication (see workloadGrant). The
	// grant is the OP's, so the MCP server must be of generation 1, where
	// the OP is the authorization server.
	WorkloadKey any

	// Generation is the MCP server generation to stand in for: 0 or 1 for
	// generation 1 ("pass-through", the default), 2 for generation 2 (the
	// server is its own authorization server and proxies logins to the OP).
	Generation int
	// CodeTTL is how long a code issued by the generation-2 server stays
	// redeemable; default DefaultCodeTTL.
	CodeTTL time.Duration
	// RegisterRateLimit is how many registration attempts with a JSON body
	// per remote address the generation-2 server's /oauth/register serves
	// in a sliding minute before it answers 429; default
	// DefaultRegisterRateLimit.
	RegisterRateLimit int

	// Now, if set, is the clock of both parties (lifetimes of codes, tokens,
	// sessions and rate limits; token timestamps), for tests that need time
	// to pass; default time.Now.
	Now func() time.Time

	// Logf, if set, receives one line per request (listener, method, path,
	// status), from many goroutines at once. Query strings and bodies, and
	// so tokens, codes, secrets and verifiers, are never logged.
	Logf func(format string, args ...any)
}

// Server is a running dev server.
type Server struct {
	opts    Options
	now     func() time.Time
	started time.Time

	url      string
	issuer   string
	store    *storage
	provider *op.Provider
	up       *upstream
	// idpScopes are what the MCP server asks the OP for in Flow 1
	// (generation 1) or in its proxied logins (generation 2).
	idpScopes []string

	mcpSide *mcpServer

	serverSecret string

	mcpSrv, idpSrv   *http.Server
	mcpOnce, idpOnce sync.Once
	mcpErr, idpErr   error
	mcpDone, idpDone chan struct{}
	// ncSrv serves the Nextcloud stand-in on its own origin; nil when it
	// is on the MCP server's or there is none.
	ncSrv  *http.Server
	ncDone chan struct{}
	ncURL  string
	ncCA   []byte // PEM of the CA of the stand-in's https certificate
	// ncTransport carries the MCP server's own requests to the stand-in.
	ncTransport http.RoundTripper
	loginURL    func(authRequestID string) string

	verifierMu sync.Mutex
	verifiers  []string // code_verifier values seen at the OP's token endpoint

	assertionMu sync.Mutex
	assertions  []string // jwt-bearer assertions seen at the OP's token endpoint

	observeMu sync.Mutex
	observer  func(string) // see observe

	countMu          sync.Mutex // guards the counters below
	tokenRequests    map[string]int
	idpTokenRequests map[string]int
	registrations    int
}

// IdP endpoint paths, as Dex has them (the revocation endpoint is the dev
// server's own: Dex has none).
const (
	idpAuthPath       = "/auth"
	idpTokenPath      = "/token"
	idpKeysPath       = "/keys"
	idpUserinfoPath   = "/userinfo"
	idpIntrospectPath = "/token/introspect"
	idpRevokePath     = "/token/revoke"
	idpEndSessionPath = "/logout"
)

// Start starts a dev server. It returns once both listeners accept
// connections.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.IdPAddr == "" {
		opts.IdPAddr = "127.0.0.1:0"
	}
	if opts.NextcloudAddr == "" {
		opts.NextcloudAddr = "127.0.0.1:0"
	}
	if opts.NextcloudSameOrigin && opts.NextcloudTLS {
		return nil, errors.New("devserver: NextcloudTLS needs the stand-in on its own origin (not NextcloudSameOrigin)")
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
	if opts.NextcloudUser == "" {
		opts.NextcloudUser = DefaultUser.Username
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
	if opts.RefreshReuseInterval == 0 {
		opts.RefreshReuseInterval = DefaultRefreshReuseInterval
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
	if !slices.ContainsFunc(testUsers, func(u User) bool { return u.Username == opts.NextcloudUser }) {
		return nil, fmt.Errorf("devserver: NextcloudUser %q is not a test user", opts.NextcloudUser)
	}
	mcpAddr, err := loopbackAddr(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("devserver: Addr: %w", err)
	}
	idpAddr, err := loopbackAddr(opts.IdPAddr)
	if err != nil {
		return nil, fmt.Errorf("devserver: IdPAddr: %w", err)
	}
	ncAddr, err := loopbackAddr(opts.NextcloudAddr)
	if err != nil {
		return nil, fmt.Errorf("devserver: NextcloudAddr: %w", err)
	}
	// Nextcloud has an origin of its own where the server provisions
	// through Login Flow v2, unless it shares the MCP server's.
	ownNextcloud := (opts.Generation == 2 || opts.LoginFlowTools) && !opts.NextcloudSameOrigin

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
	var nc *ncListener
	if ownNextcloud {
		if nc, err = listenNextcloud(ncAddr, opts.NextcloudTLS); err != nil {
			mcpLn.Close()
			idpLn.Close()
			return nil, fmt.Errorf("devserver: Nextcloud: %w", err)
		}
	}
	closeListeners := func() {
		mcpLn.Close()
		idpLn.Close()
		if nc != nil {
			nc.ln.Close()
		}
	}

	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		opts:             opts,
		now:              now,
		started:          now(),
		url:              "http://" + mcpLn.Addr().String(),
		issuer:           "http://" + idpLn.Addr().String(),
		serverSecret:     randomToken(),
		mcpDone:          make(chan struct{}),
		idpDone:          make(chan struct{}),
		tokenRequests:    make(map[string]int),
		idpTokenRequests: make(map[string]int),
		ncTransport:      http.DefaultTransport,
	}
	s.ncURL = s.url
	if nc != nil {
		s.ncURL, s.ncCA, s.ncTransport = nc.url, nc.caPEM, nc.transport
	}
	s.idpScopes = slices.Clone(gen2IdPScopes)
	if opts.Generation == 1 {
		s.idpScopes = joinScopes(baseScopes, strings.Fields(opts.Scopes))
	}
	s.store = newStorage(nil, slices.Clone(testUsers), &signingKey{id: randomID()[:16], key: rsaKey}, opts.AccessTokenTTL, now)
	s.store.clients = s.clients()
	s.store.noRotation = opts.NoRefreshRotation
	s.store.multipleRefreshTokens = opts.MultipleRefreshTokens
	s.store.reuseInterval = max(opts.RefreshReuseInterval, 0)

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	s.provider, err = op.NewProvider(&op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       slices.Clone(dexScopes),
	}, s.store, op.StaticIssuer(s.issuer), op.WithAllowInsecure(),
		op.WithCustomAuthEndpoint(op.NewEndpoint(idpAuthPath)),
		op.WithCustomTokenEndpoint(op.NewEndpoint(idpTokenPath)),
		op.WithCustomKeysEndpoint(op.NewEndpoint(idpKeysPath)),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint(idpUserinfoPath)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(idpIntrospectPath)),
		op.WithCustomRevocationEndpoint(op.NewEndpoint(idpRevokePath)),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint(idpEndSessionPath)),
	)
	if err != nil {
		closeListeners()
		return nil, fmt.Errorf("devserver: %w", err)
	}

	s.up = &upstream{
		clientID:           ServerClientID,
		secret:             s.serverSecret,
		redirectURI:        s.url + "/oauth/callback",
		authEndpoint:       s.issuer + idpAuthPath,
		tokenEndpoint:      s.issuer + idpTokenPath,
		revocationEndpoint: s.issuer + idpRevokePath,
		client:             s.outgoingClient("idp"),
		idTokens: gooidc.NewVerifier(s.issuer,
			&gooidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}},
			&gooidc.Config{ClientID: ServerClientID, Now: now}),
	}
	s.mcpSide = newMCPServer(s)

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
		idpMux.HandleFunc(idpRevokePath, http.NotFound)
	}
	idpMux.Handle("/", s.authorizeEndpoint(idpAuthPath, s.tokenEndpoint(idpTokenPath, s.provider)))

	s.mcpSrv = &http.Server{Handler: s.logRequests("mcp", s.mcpSide.handler()), ReadHeaderTimeout: 10 * time.Second}
	s.idpSrv = &http.Server{Handler: s.logRequests("idp", idpMux), ReadHeaderTimeout: 10 * time.Second}
	go serve(s.mcpSrv, mcpLn, s.mcpDone)
	go serve(s.idpSrv, idpLn, s.idpDone)
	if nc != nil {
		ncMux := http.NewServeMux()
		ncMux.HandleFunc("/", notFound)
		s.mcpSide.nc.routes(ncMux)
		s.ncSrv = &http.Server{Handler: s.logRequests("nextcloud", ncMux), ReadHeaderTimeout: 10 * time.Second}
		s.ncDone = make(chan struct{})
		go serve(s.ncSrv, nc.ln, s.ncDone)
	}
	return s, nil
}

// outgoingClient is the HTTP client of the MCP server's own requests; they
// are reported to the observer as requests to party.
func (s *Server) outgoingClient(party string) *http.Client {
	next := http.DefaultTransport
	if party == partyNextcloud {
		next = s.ncTransport
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: observingTransport{party: party, s: s, next: next},
		// Like the Python servers' HTTP client: redirects are answers.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// observe reports one request the MCP server sent on its own (see
// observingTransport) to the observer a test installed, if any.
func (s *Server) observe(line string) {
	s.observeMu.Lock()
	f := s.observer
	s.observeMu.Unlock()
	if f != nil {
		f(line)
	}
}

// setObserver installs f as the receiver of observe's lines.
func (s *Server) setObserver(f func(string)) {
	s.observeMu.Lock()
	defer s.observeMu.Unlock()
	s.observer = f
}

// discovery serves the OP's discovery document: zitadel's, with Dex's
// values where ncmcp reads them (response types, grant types, PKCE methods,
// scopes, claims), the registration endpoint added and, with NoRevocation,
// the revocation endpoint removed.
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	cfg := op.CreateDiscoveryConfig(op.ContextWithIssuer(r.Context(), s.issuer), s.provider, s.store)
	cfg.ResponseTypesSupported = []string{"code"}
	cfg.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	if s.opts.WorkloadKey != nil {
		cfg.GrantTypesSupported = append(cfg.GrantTypesSupported, oidc.GrantTypeBearer)
	}
	cfg.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256, oidc.CodeChallengeMethodPlain}
	cfg.ScopesSupported = slices.Clone(dexScopes)
	cfg.ClaimsSupported = []string{"iss", "sub", "aud", "iat", "exp", "email", "email_verified", "name", "preferred_username", "at_hash", "sid"}
	cfg.SubjectTypesSupported = []string{"public"}
	cfg.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	cfg.IDTokenSigningAlgValuesSupported = []string{"RS256"}
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
func (s *Server) clients() map[string]*opClient {
	loginURL := func(id string) string { return s.issuer + loginPath + "?id=" + id }
	s.loginURL = loginURL
	native := func(id, secret string) *opClient {
		c := &opClient{
			id:           id,
			secret:       secret,
			public:       secret == "",
			appType:      op.ApplicationTypeNative,
			redirectURIs: slices.Clone(nativeRedirectURIs),
			authMethod:   oidc.AuthMethodBasic,
			loginURL:     loginURL,
			knownClient:  s.store.knownClient,
			now:          s.now,
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
			knownClient:  s.store.knownClient,
			now:          s.now,
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

// sortedScopes returns the scopes sorted, without duplicates.
func sortedScopes(scopes ...[]string) []string {
	out := joinScopes(scopes...)
	sort.Strings(out)
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

// URL returns the MCP server's base URL, such as http://127.0.0.1:PORT (no
// trailing slash).
func (s *Server) URL() string { return s.url }

// IssuerURL returns the OP's issuer, such as http://127.0.0.1:PORT (no
// trailing slash), exactly as its discovery document states it.
func (s *Server) IssuerURL() string { return s.issuer }

// NextcloudURL returns the base URL of the Nextcloud stand-in, such as
// http://127.0.0.1:PORT (no trailing slash): its own origin, or URL() with
// NextcloudSameOrigin. Without a stand-in (generation 1 without
// LoginFlowTools) it is URL(), where that server's Nextcloud pages would be.
func (s *Server) NextcloudURL() string { return s.ncURL }

// NextcloudCACertPEM returns the PEM certificate of the CA that issued the
// Nextcloud stand-in's https certificate (NextcloudTLS), or nil.
func (s *Server) NextcloudCACertPEM() []byte { return slices.Clone(s.ncCA) }

// ResourceURL returns the protected resource, URL()+"/mcp".
func (s *Server) ResourceURL() string { return s.url + "/mcp" }

// IdPScopes returns the scopes the MCP server asks the IdP for when a client
// logs in: in generation 1 "openid profile email" and the configured
// Options.Scopes, in generation 2 "openid profile email offline_access"
// (plus the scopes the client asks for).
func (s *Server) IdPScopes() []string { return slices.Clone(s.idpScopes) }

// ServerClientSecret returns the secret of ServerClientID, chosen at start.
func (s *Server) ServerClientSecret() string { return s.serverSecret }

// Options returns the options the server runs with, defaults filled in.
func (s *Server) Options() Options {
	o := s.opts
	o.AllowedClients = slices.Clone(o.AllowedClients)
	o.DenyClients = slices.Clone(o.DenyClients)
	return o
}

// TokenRequests returns how many token requests with that grant_type (such
// as "authorization_code" or "refresh_token") MCP clients sent, whether they
// succeeded or not: requests that reached the OP's token endpoint from any
// client but the MCP server's own (ServerClientID), plus, in generation 2,
// requests to the server's /oauth/token. The server's own requests at the
// OP (Flow 2, the generation-2 logins and refreshes) are counted by
// IdPTokenRequests only.
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

// ProvisionedToken returns the credential the MCP server holds for the user
// with that sub: the refresh token Flow 2 stored, else the app password of
// the Login Flow v2 tools.
func (s *Server) ProvisionedToken(sub string) (ProvisionedToken, bool) {
	return s.mcpSide.prov.credential(sub)
}

// Flow2URL returns a new Flow 2 authorization URL,
// {URL}/oauth/authorize-nextcloud?state=STATE, as generation 1's
// provision_nextcloud_access returns it (no generation-2 tool does, but
// the URL works there too). It is empty with NoOfflineAccess.
func (s *Server) Flow2URL() string {
	if s.mcpSide.flow2 == nil {
		return ""
	}
	return s.mcpSide.flow2.authorizationURL()
}

// RestartServer makes the MCP server forget what a restarted server
// forgets: its login sessions and codes, rate-limit counters, Flow 2
// sessions, pending Login Flows and every MCP session. What the real server
// keeps in its database stays: the Flow 2 refresh tokens and app passwords
// it stored. The OP keeps running and the tokens it issued stay valid,
// except, with Options.ForgetClientsOnRestart, those of the clients
// registered at the OP, which it forgets.
func (s *Server) RestartServer() {
	s.mcpSide.restart()
	if s.opts.ForgetClientsOnRestart {
		s.store.forgetRegisteredClients()
	}
}

// ToolCalls returns how many times the MCP tool with that name was called,
// whatever the outcome.
func (s *Server) ToolCalls(name string) int { return s.mcpSide.mcp.toolCalls(name) }

// StopIdP stops only the OP's listener, so that clients find the IdP down
// while the MCP server keeps running. It is safe to call more than once.
func (s *Server) StopIdP() error {
	s.idpOnce.Do(func() { s.idpErr = shutdown(s.idpSrv, s.idpDone) })
	return s.idpErr
}

// Close stops the listeners. It is safe to call more than once.
func (s *Server) Close() error {
	s.mcpOnce.Do(func() {
		s.mcpSide.mcp.closeSessions()
		s.mcpErr = shutdown(s.mcpSrv, s.mcpDone)
		if s.ncSrv != nil {
			s.mcpErr = errors.Join(s.mcpErr, shutdown(s.ncSrv, s.ncDone))
		}
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
		s.opts.Logf("%s: %s %s -> %d", side, r.Method, logPath(r.URL.Path), sw.status)
	})
}

// logPath hides the secret part of paths that carry one (the Login Flow
// stand-in's login token).
func logPath(p string) string {
	if rest, ok := strings.CutPrefix(p, ncFlowPath); ok && rest != "" {
		return ncFlowPath + "…"
	}
	return p
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
