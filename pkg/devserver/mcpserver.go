package devserver

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// mcpServer is the MCP server stand-in: the routes of the generation it
// stands in for, and the parts behind them.
type mcpServer struct {
	s   *Server
	gen int
	url string

	flow2 *flow2        // nil with NoOfflineAccess
	as    *authServer   // generation 2's authorization server; nil in generation 1
	nc    *ncStandIn    // the Nextcloud Login Flow v2 stand-in; nil without the nc_auth_* tools
	prov  *provisioning // the server's stored credentials and Login Flow sessions
	mcp   *mcpEndpoint
}

func newMCPServer(s *Server) *mcpServer {
	m := &mcpServer{s: s, gen: s.opts.Generation, url: s.url}
	m.prov = newProvisioning(m)
	if !s.opts.NoOfflineAccess {
		m.flow2 = newFlow2(m)
	}
	if m.gen == 2 {
		m.as = newAuthServer(m)
	}
	if m.gen == 2 || s.opts.LoginFlowTools {
		m.nc = newNCStandIn(m)
	}
	m.mcp = newMCPEndpoint(m)
	return m
}

func (m *mcpServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", notFound)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource", m.protectedResource)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", m.protectedResource)
	if m.as != nil {
		m.as.routes(mux)
		mux.HandleFunc("GET /api/v1/status", m.status)
	} else {
		mux.HandleFunc("GET /oauth/authorize", m.passthroughAuthorize)
	}
	if m.flow2 != nil {
		mux.HandleFunc("GET /oauth/authorize-nextcloud", m.flow2.authorizeNextcloud)
	}
	mux.HandleFunc("GET /oauth/callback", m.callback)
	if m.nc != nil && m.s.opts.NextcloudSameOrigin {
		m.nc.routes(mux)
	}
	mux.Handle("/mcp", m.mcp)
	return mux
}

// restart forgets what a restarted server forgets (see Server.RestartServer).
func (m *mcpServer) restart() {
	if m.as != nil {
		m.as.reset()
	}
	if m.flow2 != nil {
		m.flow2.reset()
	}
	m.prov.forgetLoginFlows()
	m.mcp.restart()
}

// notFound is the web framework's answer to a path the server does not
// serve: 404 "Not Found" as plain text.
func notFound(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("Not Found"))
}

// writeJSON writes v as a JSON response, with no other header than its
// Content-Type, as the servers' framework does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshalJSON(v)
	if err != nil {
		http.Error(w, "cannot encode the answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// redirect answers 302 with the location and no body, as the servers'
// framework does.
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusFound)
}

// writeOAuthError writes {"error", "error_description"}.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, object{{"error", code}, {"error_description", description}})
}

// writeHTML writes an HTML page.
func writeHTML(w http.ResponseWriter, status int, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = t.Execute(w, data)
}

// prmScopes are the protected resource's scopes_supported, sorted: the
// scopes of the served tools.
func (m *mcpServer) prmScopes() []string {
	if m.gen == 2 {
		return sortedScopes(gen2IdPScopes)
	}
	return sortedScopes(baseScopes)
}

// protectedResource serves the RFC 9728 protected resource metadata (the
// same at both URLs). It names the OP in generation 1, the server itself
// in generation 2.
func (m *mcpServer) protectedResource(w http.ResponseWriter, _ *http.Request) {
	authorizationServer := m.s.issuer
	if m.gen == 2 {
		authorizationServer = m.url
	}
	if p := strings.TrimRight(m.s.opts.PRMIssuer, "/"); p != "" {
		authorizationServer = p
	}
	writeJSON(w, http.StatusOK, object{
		{"resource", m.url + "/mcp"},
		{"scopes_supported", m.prmScopes()},
		{"authorization_servers", []string{authorizationServer}},
		{"bearer_methods_supported", []string{"header"}},
		{"resource_signing_alg_values_supported", []string{"RS256"}},
	})
}

// status is generation 2's public GET /api/v1/status (the management API's).
func (m *mcpServer) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, object{
		{"version", "0.181.0-devserver"},
		{"auth_mode", "oauth"},
		{"vector_sync_enabled", false},
		{"webhooks_enabled", false},
		{"supported_search_types", []string{}},
		{"uptime_seconds", int64(m.s.now().Sub(m.s.started) / time.Second)},
		{"management_api_version", "1.0"},
	})
}

// lastParam returns the last value of a query parameter (the servers'
// framework keeps the last of repeated parameters) and whether it was present.
func lastParam(q url.Values, key string) (string, bool) {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// callback is GET /oauth/callback, the server's one redirect URI at the
// OP: the session its state belongs to decides between generation 2's
// login and Flow 2. An unknown state falls, in generation 1, into the
// browser-login handler, which tries to redeem the code; generation 2
// refuses it.
func (m *mcpServer) callback(w http.ResponseWriter, r *http.Request) {
	state, _ := lastParam(r.URL.Query(), "state")
	switch {
	case m.as != nil && m.as.hasSession(state):
		m.as.callback(w, r)
	case m.flow2 != nil && m.flow2.hasSession(state):
		m.flow2.callback(w, r)
	case m.gen == 1:
		m.browserLogin(w, r)
	default:
		writeHTML(w, http.StatusBadRequest, unknownSessionPage, nil)
	}
}

var unknownSessionPage = template.Must(template.New("unknown").Parse(`<p>Unknown or expired session — please try logging in again.</p>`))

// browserLogin is generation 1's browser login at /oauth/callback: it
// redeems the code with the server's client and shows the outcome.
func (m *mcpServer) browserLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e, _ := lastParam(q, "error"); e != "" {
		desc, _ := lastParam(q, "error_description")
		writeHTML(w, http.StatusBadRequest, loginFailedPage, struct{ Reason, Detail string }{"Authorization failed: " + e, desc})
		return
	}
	code, _ := lastParam(q, "code")
	resp, err := m.s.up.exchangeCode(r.Context(), code, "")
	if err != nil {
		writeHTML(w, http.StatusInternalServerError, loginFailedPage, struct{ Reason, Detail string }{"Failed to exchange authorization code for tokens", err.Error()})
		return
	}
	if resp.status != http.StatusOK {
		writeHTML(w, http.StatusInternalServerError, loginFailedPage, struct{ Reason, Detail string }{
			"Failed to exchange authorization code for tokens", fmt.Sprintf("HTTP %d: %s", resp.status, compactJSON(resp.body))})
		return
	}
	writeHTML(w, http.StatusOK, loggedInPage, nil)
}

// compactJSON returns a JSON body without insignificant white space, or as
// it is if it is not JSON.
func compactJSON(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	out, err := marshalJSON(v)
	if err != nil {
		return string(b)
	}
	return string(out)
}

var loginFailedPage = template.Must(template.New("failed").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Login Failed</title></head>
<body><h1>Login Failed</h1><p>{{.Reason}}</p><p>{{.Detail}}</p></body></html>
`))

var loggedInPage = template.Must(template.New("loggedin").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Logged In</title></head>
<body><h1>Logged In</h1><p>You are logged in to the MCP server. You can close this window.</p></body></html>
`))
