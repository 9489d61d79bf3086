package devserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// registryScopes are the scopes the generation-1 client registry lets a
// client ask for in its own (never forwarded) scope parameter.
var registryScopes = []string{"openid", "profile", "email", "mcp-server:api"}

// baseScopes are always asked for at the IdP, before the configured scopes.
var baseScopes = []string{"openid", "profile", "email"}

// standIn is the MCP server stand-in: generation 1 ("pass-through") Flow 1,
// Flow 2 and the MCP endpoint; in generation 2 also the authorization
// server proxy.
type standIn struct {
	url            string // base URL, no trailing slash
	issuer         string
	authEndpoint   string // the OP's authorization_endpoint
	allowedClients []string
	// registeredAtOP reports whether a client id was registered at the OP
	// (RFC 7591); such clients count as allowed too.
	registeredAtOP func(clientID string) bool
	scopes         []string // asked for at the IdP: baseScopes plus the configured ones
	pkce           string
	forwardNonce   bool
	nonceOverride  string
	prmIssuer      string     // Options.PRMIssuer
	loginFlow      *loginFlow // newer servers' Login Flow v2 provisioning, if offered

	mcp   *mcpEndpoint
	flow2 *flow2   // nil without offline access
	proxy *proxyAS // nil in generation 1
}

func (s *standIn) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", s.protectedResource)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource", s.protectedResource)
	if s.proxy != nil {
		s.proxy.routes(mux)
	} else {
		mux.HandleFunc("GET /oauth/authorize", s.authorize)
	}
	if s.flow2 != nil {
		mux.HandleFunc("GET /oauth/authorize-nextcloud", s.flow2.authorizeNextcloud)
	}
	if s.flow2 != nil || s.proxy != nil {
		mux.HandleFunc("GET /oauth/callback", s.callback)
	}
	if s.loginFlow != nil {
		mux.HandleFunc("/login/v2/flow/{token}", s.loginFlow.page)
		mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"version": "0.65.0-devserver", "auth_mode": "oauth"})
		})
	}
	mux.Handle("/mcp", s.mcp)
	mux.HandleFunc("/", http.NotFound)
	return mux
}

// allowed reports whether the client registry knows clientID: one of
// AllowedClients, or a client registered at the OP.
func (s *standIn) allowed(clientID string) bool {
	return slices.Contains(s.allowedClients, clientID) || (s.registeredAtOP != nil && s.registeredAtOP(clientID))
}

// callback is GET /oauth/callback, the server's one redirect URI at the
// OP: the session its state belongs to decides between the generation-2
// proxy login and Flow 2.
func (s *standIn) callback(w http.ResponseWriter, r *http.Request) {
	state, _ := lastParam(r.URL.Query(), "state")
	if state == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "missing state")
		return
	}
	if s.proxy != nil && s.proxy.hasSession(state) {
		s.proxy.callback(w, r)
		return
	}
	if s.flow2 != nil {
		s.flow2.callback(w, r)
		return
	}
	writeOAuthError(w, http.StatusBadRequest, "invalid_request", "unknown or expired state")
}

func (s *standIn) resourceURL() string { return s.url + "/mcp" }

func (s *standIn) resourceMetadataURL() string {
	return s.url + "/.well-known/oauth-protected-resource/mcp"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// protectedResource serves the RFC 9728 protected resource metadata.
func (s *standIn) protectedResource(w http.ResponseWriter, _ *http.Request) {
	authorizationServer := s.issuer
	if s.proxy != nil {
		authorizationServer = s.url
	}
	if s.prmIssuer != "" {
		authorizationServer = s.prmIssuer
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                 s.resourceURL(),
		"authorization_servers":    []string{authorizationServer},
		"scopes_supported":         s.scopes,
		"bearer_methods_supported": []string{"header"},
	})
}

// lastParam returns the last value of a query parameter (the server's
// framework keeps the last of repeated parameters) and whether it was present.
func lastParam(q url.Values, key string) (string, bool) {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// authorize is Flow 1's /oauth/authorize: it checks the request in the
// server's order, then sends the browser straight to the IdP with the
// client's own client_id, redirect_uri and state.
func (s *standIn) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	get := func(k string) string { v, _ := lastParam(q, k); return v }
	req, ok := checkAuthorize(w, q, true)
	if !ok {
		return
	}
	clientID, redirectURI, state, challenge := req.clientID, req.redirectURI, req.state, req.challenge
	if !s.allowed(clientID) {
		writeOAuthError(w, http.StatusUnauthorized, "unauthorized_client", "client "+clientID+" is not in this server's list of allowed MCP clients")
		return
	}
	if scope := get("scope"); scope != "" {
		for _, sc := range strings.Fields(scope) {
			if !slices.Contains(registryScopes, sc) {
				writeOAuthError(w, http.StatusUnauthorized, "unauthorized_client", "scope "+sc+" is not allowed for this client (allowed: "+strings.Join(registryScopes, " ")+")")
				return
			}
		}
	}

	params := url.Values{
		"client_id":     {clientID},
		"redirect_uri":  {redirectURI},
		"response_type": {"code"},
		"scope":         {strings.Join(s.scopes, " ")},
		"state":         {state},
		"prompt":        {"consent"},
		"resource":      {s.resourceURL()},
	}
	if s.pkce == PKCERequire {
		params.Set("code_challenge", challenge)
		params.Set("code_challenge_method", "S256")
	}
	switch {
	case s.nonceOverride != "":
		params.Set("nonce", s.nonceOverride)
	case s.forwardNonce:
		if nonce := get("nonce"); nonce != "" {
			params.Set("nonce", nonce)
		}
	}
	http.Redirect(w, r, s.authEndpoint+"?"+params.Encode(), http.StatusFound)
}

var errWrongAudience = errors.New("access token is not meant for " + MCPAudience)

// authorizeParams are the parameters of an authorization request that both
// generations' /oauth/authorize check the same way.
type authorizeParams struct {
	clientID, redirectURI, state, challenge string
}

// checkAuthorize checks an authorization request in the seed's order:
// response_type, redirect_uri (a loopback URI with a port when
// loopbackOnly), state, code_challenge, code_challenge_method (S256, the
// default), client_id. On a failure it writes the error and returns false.
func checkAuthorize(w http.ResponseWriter, q url.Values, loopbackOnly bool) (authorizeParams, bool) {
	get := func(k string) string { v, _ := lastParam(q, k); return v }
	p := authorizeParams{clientID: get("client_id"), redirectURI: get("redirect_uri"), state: get("state"), challenge: get("code_challenge")}
	method, ok := lastParam(q, "code_challenge_method")
	if !ok {
		method = "S256"
	}
	fail := func(status int, code, desc string) (authorizeParams, bool) {
		writeOAuthError(w, status, code, desc)
		return p, false
	}
	switch {
	case get("response_type") != "code":
		return fail(http.StatusBadRequest, "unsupported_response_type", "response_type must be \"code\"")
	case p.redirectURI == "":
		return fail(http.StatusBadRequest, "invalid_request", "missing redirect_uri")
	case loopbackOnly && !strings.HasPrefix(p.redirectURI, "http://localhost:") && !strings.HasPrefix(p.redirectURI, "http://127.0.0.1:"):
		return fail(http.StatusBadRequest, "invalid_request", "redirect_uri must be a loopback URI with a port (http://127.0.0.1:PORT/... or http://localhost:PORT/...)")
	case p.state == "":
		return fail(http.StatusBadRequest, "invalid_request", "missing state (needed against CSRF)")
	case p.challenge == "":
		return fail(http.StatusBadRequest, "invalid_request", "missing code_challenge: PKCE is required")
	case method != "S256":
		return fail(http.StatusBadRequest, "invalid_request", "only the S256 code_challenge_method is supported")
	case p.clientID == "":
		return fail(http.StatusBadRequest, "invalid_request", "missing client_id")
	}
	return p, true
}
