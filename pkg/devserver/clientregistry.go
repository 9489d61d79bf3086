package devserver

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// clientRegistryScopes are the scopes generation 1's client registry lets
// a client ask for in its own (never forwarded) scope parameter.
var clientRegistryScopes = []string{"openid", "profile", "email", "mcp-server:api"}

// allowedClient reports whether the client registry knows clientID: one of
// AllowedClients, or in generation 1 a client registered at the OP (RFC
// 7591), which the generation-1 client sends to the IdP as it is.
func (m *mcpServer) allowedClient(clientID string) bool {
	if slices.Contains(m.s.opts.AllowedClients, clientID) {
		return true
	}
	c, ok := m.s.store.client(clientID)
	return m.gen == 1 && ok && c.registration != nil
}

// registryRedirect reports whether the client registry accepts uri for a
// static client: http://localhost:PORT/... or http://127.0.0.1:PORT/...
// with a port.
func registryRedirect(uri string) bool {
	if !strings.HasPrefix(uri, "http://localhost:") && !strings.HasPrefix(uri, "http://127.0.0.1:") {
		return false
	}
	u, err := url.Parse(uri)
	return err == nil && u.Port() != ""
}

// validateClient checks a client, its redirect URI and (generation 1) its
// scopes against the client registry, and returns the reason it refuses
// them, or "".
func (m *mcpServer) validateClient(clientID, redirectURI, scope string) string {
	if !m.allowedClient(clientID) {
		return "Unknown client_id: " + clientID
	}
	ok := registryRedirect(redirectURI)
	if c, found := m.s.store.client(clientID); found && c.registration != nil && m.gen == 1 {
		ok = ok || slices.Contains(c.redirectURIs, redirectURI)
	}
	if !ok {
		return "Invalid redirect_uri for client " + clientID
	}
	if m.gen == 2 {
		return "" // the registry allows every scope; the IdP decides
	}
	var invalid []string
	for _, sc := range strings.Fields(scope) {
		if !slices.Contains(clientRegistryScopes, sc) && !slices.Contains(invalid, sc) {
			invalid = append(invalid, sc)
		}
	}
	if len(invalid) == 0 {
		return ""
	}
	sort.Strings(invalid)
	return fmt.Sprintf("Invalid scopes for client %s: %s", clientID, pythonSet(invalid))
}

// pythonSet renders strings as Python prints a set of them: {'a', 'b'}.
func pythonSet(items []string) string {
	quoted := make([]string, len(items))
	for i, it := range items {
		quoted[i] = "'" + it + "'"
	}
	return "{" + strings.Join(quoted, ", ") + "}"
}

// pythonList renders strings as Python prints a list of them: ['a', 'b'].
func pythonList(items []string) string {
	quoted := make([]string, len(items))
	for i, it := range items {
		quoted[i] = "'" + it + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// authorizeParams are the parameters of an authorization request that both
// generations' /oauth/authorize check.
type authorizeParams struct {
	clientID, redirectURI, state, challenge, scope, nonce string
}

// checkAuthorize checks an authorization request in the servers' order:
// response_type, redirect_uri (generation 1: a loopback URI, generation 2:
// https unless loopback), state, code_challenge, code_challenge_method
// (S256, the default), client_id, then the client registry. On a failure
// it writes the JSON error (never a redirect) and returns false.
func (m *mcpServer) checkAuthorize(w http.ResponseWriter, q url.Values) (authorizeParams, bool) {
	get := func(k string) string { v, _ := lastParam(q, k); return v }
	p := authorizeParams{clientID: get("client_id"), redirectURI: get("redirect_uri"), state: get("state"),
		challenge: get("code_challenge"), scope: get("scope"), nonce: get("nonce")}
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
		return fail(http.StatusBadRequest, "unsupported_response_type", "Only 'code' response_type is supported")
	case p.redirectURI == "":
		return fail(http.StatusBadRequest, "invalid_request", "redirect_uri is required")
	case m.gen == 1 && !strings.HasPrefix(p.redirectURI, "http://localhost:") && !strings.HasPrefix(p.redirectURI, "http://127.0.0.1:"):
		return fail(http.StatusBadRequest, "invalid_request", "redirect_uri must be localhost for native clients")
	case m.gen == 2 && !httpsUnlessLocalhost(p.redirectURI):
		return fail(http.StatusBadRequest, "invalid_request", "redirect_uri must use HTTPS for non-localhost URIs")
	case p.state == "":
		return fail(http.StatusBadRequest, "invalid_request", "state parameter is required for CSRF protection")
	case p.challenge == "":
		return fail(http.StatusBadRequest, "invalid_request", "code_challenge is required (PKCE)")
	case method != "S256":
		return fail(http.StatusBadRequest, "invalid_request", "code_challenge_method must be S256")
	case p.clientID == "":
		return fail(http.StatusBadRequest, "invalid_request", "client_id is required")
	}
	if reason := m.validateClient(p.clientID, p.redirectURI, p.scope); reason != "" {
		return fail(http.StatusUnauthorized, "unauthorized_client", reason)
	}
	return p, true
}

// httpsUnlessLocalhost reports whether a redirect URI passes generation 2's
// first check: an http URI must be on localhost or 127.0.0.1.
func httpsUnlessLocalhost(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	if u.Scheme != "http" {
		return true
	}
	host := u.Hostname()
	return host == "localhost" || host == "127.0.0.1"
}
