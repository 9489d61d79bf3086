package devserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// registryScopes are the scopes the generation-1 client registry lets a
// client ask for in its own (never forwarded) scope parameter.
var registryScopes = []string{"openid", "profile", "email", "mcp-server:api"}

// baseScopes are always asked for at the IdP, before the configured scopes.
var baseScopes = []string{"openid", "profile", "email"}

// standIn is the MCP server stand-in: generation 1 ("pass-through") Flow 1.
type standIn struct {
	url            string // base URL, no trailing slash
	issuer         string
	authEndpoint   string // the OP's authorization_endpoint
	allowedClients []string
	scopes         []string // asked for at the IdP: baseScopes plus the configured ones
	pkce           string
	forwardNonce   bool
	nonceOverride  string
	verifier       *op.AccessTokenVerifier
}

func (s *standIn) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", s.protectedResource)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource", s.protectedResource)
	mux.HandleFunc("GET /oauth/authorize", s.authorize)
	mux.HandleFunc("/mcp", s.mcp)
	mux.HandleFunc("/", http.NotFound)
	return mux
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
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                 s.resourceURL(),
		"authorization_servers":    []string{s.issuer},
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
	responseType := get("response_type")
	clientID := get("client_id")
	redirectURI := get("redirect_uri")
	state := get("state")
	challenge := get("code_challenge")
	method, ok := lastParam(q, "code_challenge_method")
	if !ok {
		method = "S256"
	}

	switch {
	case responseType != "code":
		writeOAuthError(w, http.StatusBadRequest, "unsupported_response_type", "response_type must be \"code\"")
		return
	case redirectURI == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "missing redirect_uri")
		return
	case !strings.HasPrefix(redirectURI, "http://localhost:") && !strings.HasPrefix(redirectURI, "http://127.0.0.1:"):
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "redirect_uri must be a loopback URI with a port (http://127.0.0.1:PORT/... or http://localhost:PORT/...)")
		return
	case state == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "missing state (needed against CSRF)")
		return
	case challenge == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "missing code_challenge: PKCE is required")
		return
	case method != "S256":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "only the S256 code_challenge_method is supported")
		return
	case clientID == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "missing client_id")
		return
	case !slices.Contains(s.allowedClients, clientID):
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
		params.Set("code_challenge_method", method)
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

// mcp stands in for the MCP endpoint: it only checks the bearer token.
func (s *standIn) mcp(w http.ResponseWriter, r *http.Request) {
	challenge := `Bearer resource_metadata="` + s.resourceMetadataURL() + `"`
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		w.Header().Set("WWW-Authenticate", challenge)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "authentication required")
		return
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](r.Context(), strings.TrimSpace(token), s.verifier)
	if err == nil && !slices.Contains(claims.Audience, MCPAudience) {
		err = errWrongAudience
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="`+s.resourceMetadataURL()+`"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid or expired")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

var errWrongAudience = errors.New("access token is not meant for " + MCPAudience)
