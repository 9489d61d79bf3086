// Package devserver runs a development stand-in for the Nextcloud MCP server
// and its identity provider, on loopback only, for tests and demos.
//
// Two listeners on 127.0.0.1 serve two parties:
//
//   - an OpenID Provider (built on github.com/zitadel/oidc/v3/pkg/op) with
//     discovery, JWKS, authorization code with PKCE (S256), refresh tokens
//     with rotation (only when offline_access was asked for), RFC 7009
//     revocation, userinfo and a small login page;
//   - the MCP server's generation-1 ("pass-through") Flow 1 surface: RFC 9728
//     protected resource metadata, /oauth/authorize (which checks the request
//     and redirects to the OP with the client's own client_id, redirect_uri
//     and state) and a bearer-protected /mcp.
//
// It is a development server: it keeps everything in memory, has fixed test
// users and clients, and refuses to listen on anything but loopback.
package devserver

import (
	"context"
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
	// audience (a misconfigured OP); access tokens stay as they are.
	IDTokenAudience string
	// NonceOverride, if set, is the nonce the stand-in forwards to the IdP
	// instead of the client's.
	NonceOverride string

	// Logf, if set, receives one line per request (listener, method, path,
	// status), from many goroutines at once. Query strings and bodies, and
	// so tokens, codes, secrets and verifiers, are never logged.
	Logf func(format string, args ...any)
}

// Server is a running dev server.
type Server struct {
	opts     Options
	url      string
	issuer   string
	store    *storage
	provider *op.Provider
	standIn  *standIn

	serverSecret string

	mcpSrv, idpSrv   *http.Server
	mcpOnce, idpOnce sync.Once
	mcpErr, idpErr   error
	mcpDone, idpDone chan struct{}
	countMu          sync.Mutex // guards tokenRequests
	tokenRequests    map[string]int
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
	switch opts.PKCE {
	case PKCEReject, PKCEIgnore, PKCERequire:
	default:
		return nil, fmt.Errorf("devserver: unknown PKCE mode %q (want %s, %s or %s)", opts.PKCE, PKCEReject, PKCEIgnore, PKCERequire)
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
		opts:          opts,
		url:           "http://" + mcpLn.Addr().String(),
		issuer:        "http://" + idpLn.Addr().String(),
		serverSecret:  randomToken(),
		mcpDone:       make(chan struct{}),
		idpDone:       make(chan struct{}),
		tokenRequests: make(map[string]int),
	}
	scopes := joinScopes(baseScopes, strings.Fields(opts.Scopes))
	s.store = newStorage(s.clients(scopes), []User{DefaultUser, SecondUser},
		&signingKey{id: randomID()[:16], key: rsaKey}, opts.AccessTokenTTL)

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

	s.standIn = &standIn{
		url:            s.url,
		issuer:         s.issuer,
		authEndpoint:   s.provider.AuthorizationEndpoint().Absolute(s.issuer),
		allowedClients: slices.Clone(opts.AllowedClients),
		scopes:         scopes,
		pkce:           opts.PKCE,
		forwardNonce:   opts.ForwardNonce,
		nonceOverride:  opts.NonceOverride,
		verifier:       op.NewAccessTokenVerifier(s.issuer, &op.OpenIDKeySet{Storage: s.store}),
	}

	login := &loginUI{
		store:       s.store,
		autoApprove: opts.AutoApprove,
		autoDeny:    opts.AutoDeny,
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
	idpMux.Handle("/", s.tokenEndpoint(s.provider.TokenEndpoint().Relative(), s.provider))

	s.mcpSrv = &http.Server{Handler: s.logRequests("mcp", s.standIn.handler()), ReadHeaderTimeout: 10 * time.Second}
	s.idpSrv = &http.Server{Handler: s.logRequests("idp", idpMux), ReadHeaderTimeout: 10 * time.Second}
	go serve(s.mcpSrv, mcpLn, s.mcpDone)
	go serve(s.idpSrv, idpLn, s.idpDone)
	return s, nil
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

// TokenRequests returns how many requests with that grant_type (such as
// "authorization_code" or "refresh_token") reached the OP's token endpoint,
// whether they succeeded or not.
func (s *Server) TokenRequests(grantType string) int {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	return s.tokenRequests[grantType]
}

// StopIdP stops only the OP's listener, so that clients find the IdP down
// while the MCP server stand-in keeps running. It is safe to call more than once.
func (s *Server) StopIdP() error {
	s.idpOnce.Do(func() { s.idpErr = shutdown(s.idpSrv, s.idpDone) })
	return s.idpErr
}

// Close stops both listeners. It is safe to call more than once.
func (s *Server) Close() error {
	s.mcpOnce.Do(func() { s.mcpErr = shutdown(s.mcpSrv, s.mcpDone) })
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
