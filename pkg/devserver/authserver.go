package devserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Generation-2 defaults and lifetimes.
const (
	// DefaultCodeTTL is the default of Options.CodeTTL: how long a code
	// issued by the generation-2 server stays redeemable.
	DefaultCodeTTL = 60 * time.Second
	// DefaultRegisterRateLimit is the default of Options.RegisterRateLimit:
	// registration attempts per sliding minute and remote address at the
	// generation-2 server's /oauth/register.
	DefaultRegisterRateLimit = 10
	// asSessionTTL bounds a login through the server, from the client's
	// /oauth/authorize to the OP's return to /oauth/callback.
	asSessionTTL = 10 * time.Minute
	// registerRateWindow is the sliding window of the registration rate limit.
	registerRateWindow = time.Minute
	// codePurgeAge is when expired codes are forgotten; until then they are
	// answered as expired rather than unknown.
	codePurgeAge = 10 * time.Minute
)

// registrationNotSupported is generation 2's answer to a registration that
// no static client accepts.
const registrationNotSupported = "The upstream identity provider does not support dynamic client registration. Configure the client statically using ALLOWED_MCP_CLIENTS."

// asSession is a login in progress through the server.
type asSession struct {
	clientID    string
	redirectURI string
	clientState string
	challenge   string // the client's S256 challenge
	nonce       string // the server's nonce at the OP
	created     time.Time
}

// asCode is a code issued by the server, with the OP's token response
// behind it.
type asCode struct {
	clientID    string
	redirectURI string
	challenge   string
	tokens      []byte // the OP's token response, relayed verbatim
	issued      time.Time
}

// authServer is generation 2's authorization server: it logs users in at
// the OP with the server's own client, issues its own single-use codes,
// relays the OP's tokens and maps registrations to static clients.
// Everything it keeps lives in memory and vanishes with reset.
type authServer struct {
	m *mcpServer

	mu       sync.Mutex
	sessions map[string]*asSession // by the state sent to the OP
	codes    map[string]*asCode
	attempts map[string][]time.Time // registration attempts by remote address
}

func newAuthServer(m *mcpServer) *authServer {
	a := &authServer{m: m}
	a.reset()
	return a
}

// reset forgets sessions, codes and rate-limit counters.
func (a *authServer) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sessions = make(map[string]*asSession)
	a.codes = make(map[string]*asCode)
	a.attempts = make(map[string][]time.Time)
}

// purgeLocked drops expired sessions and old codes. The caller holds a.mu.
func (a *authServer) purgeLocked(now time.Time) {
	for st, s := range a.sessions {
		if now.Sub(s.created) > asSessionTTL {
			delete(a.sessions, st)
		}
	}
	for c, ac := range a.codes {
		if now.Sub(ac.issued) > codePurgeAge {
			delete(a.codes, c)
		}
	}
}

func (a *authServer) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", a.metadata)
	mux.HandleFunc("GET /oauth/authorize", a.authorize)
	mux.HandleFunc("POST /oauth/token", a.token)
	mux.HandleFunc("POST /oauth/register", a.register)
}

// metadata serves the RFC 8414 authorization server metadata: no jwks_uri,
// userinfo, revocation or introspection endpoint (the tokens are the OP's).
func (a *authServer) metadata(w http.ResponseWriter, _ *http.Request) {
	u := a.m.url
	writeJSON(w, http.StatusOK, object{
		{"issuer", u},
		{"authorization_endpoint", u + "/oauth/authorize"},
		{"token_endpoint", u + "/oauth/token"},
		{"registration_endpoint", u + "/oauth/register"},
		{"response_types_supported", []string{"code"}},
		{"grant_types_supported", []string{"authorization_code", "refresh_token"}},
		{"code_challenge_methods_supported", []string{"S256"}},
		{"token_endpoint_auth_methods_supported", []string{"client_secret_post", "client_secret_basic", "none"}},
		{"scopes_supported", a.m.prmScopes()},
	})
}

// authorize is generation 2's /oauth/authorize: it keeps the client's
// request (and its PKCE challenge) in a session and sends the browser to
// the OP with the server's own client, state and nonce, always asking for
// offline_access.
func (a *authServer) authorize(w http.ResponseWriter, r *http.Request) {
	p, ok := a.m.checkAuthorize(w, r.URL.Query())
	if !ok {
		return
	}
	scope := strings.Join(gen2IdPScopes, " ")
	if p.scope != "" {
		scope = strings.Join(sortedScopes(strings.Fields(p.scope), gen2IdPScopes), " ")
	}
	now := a.m.s.now()
	sess := &asSession{
		clientID:    p.clientID,
		redirectURI: p.redirectURI,
		clientState: p.state,
		challenge:   p.challenge,
		nonce:       randomToken(),
		created:     now,
	}
	state := randomToken()
	a.mu.Lock()
	a.purgeLocked(now)
	a.sessions[state] = sess
	a.mu.Unlock()
	redirect(w, a.m.s.up.authorizeURL(query{
		{"client_id", ServerClientID},
		{"redirect_uri", a.m.url + "/oauth/callback"},
		{"response_type", "code"},
		{"scope", scope},
		{"state", state},
		{"nonce", sess.nonce},
		{"prompt", "consent"},
		{"resource", a.m.url + "/mcp"},
	}))
}

// hasSession reports whether state belongs to a login through the server.
func (a *authServer) hasSession(state string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[state]
	return ok && a.m.s.now().Sub(s.created) <= asSessionTTL
}

// callback is the authorization server's part of GET /oauth/callback: it
// redeems the OP's code and sends the browser back to the client with a
// code of its own and the client's state, or with the OP's error.
func (a *authServer) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, _ := lastParam(q, "state")
	a.mu.Lock()
	sess := a.sessions[state]
	delete(a.sessions, state)
	a.mu.Unlock()
	back := func(params query) {
		redirect(w, withQuery(sess.redirectURI, append(params, [2]string{"state", sess.clientState})))
	}
	if errCode, _ := lastParam(q, "error"); errCode != "" {
		params := query{{"error", errCode}}
		if desc, ok := lastParam(q, "error_description"); ok {
			params = append(params, [2]string{"error_description", desc})
		}
		back(params)
		return
	}
	code, _ := lastParam(q, "code")
	resp, err := a.m.s.up.exchangeCode(r.Context(), code, "")
	if err != nil {
		back(query{{"error", "server_error"}, {"error_description", "The identity provider is unreachable."}})
		return
	}
	tokens, err := resp.tokens()
	if err == nil {
		_, err = a.m.s.up.subject(r.Context(), tokens.IDToken, sess.nonce)
	}
	if err != nil {
		back(query{{"error", "server_error"}, {"error_description", "Failed to exchange the authorization code with the identity provider."}})
		return
	}
	ours := randomToken()
	now := a.m.s.now()
	a.mu.Lock()
	a.purgeLocked(now)
	a.codes[ours] = &asCode{
		clientID:    sess.clientID,
		redirectURI: sess.redirectURI,
		challenge:   sess.challenge,
		tokens:      resp.body,
		issued:      now,
	}
	a.mu.Unlock()
	back(query{{"code", ours}})
}

// token is generation 2's /oauth/token.
func (a *authServer) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm()
	grantType, ok := r.PostForm["grant_type"]
	gt := ""
	if ok && len(grantType) > 0 {
		gt = grantType[len(grantType)-1]
	}
	a.m.s.countServerTokenRequest(gt)
	switch gt {
	case "authorization_code":
		a.exchange(w, r)
	case "refresh_token":
		a.refresh(w, r)
	default:
		shown := gt
		if !ok {
			shown = "None"
		}
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type: "+shown)
	}
}

// exchange redeems a code of the server. Whatever the outcome, the code is
// gone afterwards.
func (a *authServer) exchange(w http.ResponseWriter, r *http.Request) {
	code := r.PostForm.Get("code")
	if code == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "code is required")
		return
	}
	a.mu.Lock()
	ac, ok := a.codes[code]
	delete(a.codes, code)
	a.mu.Unlock()
	switch {
	case !ok:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Invalid or expired authorization code")
	case a.m.s.now().Sub(ac.issued) > a.m.s.opts.CodeTTL:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Authorization code has expired")
	case r.PostForm.Has("client_id") && r.PostForm.Get("client_id") != ac.clientID:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "client_id mismatch")
	case r.PostForm.Get("redirect_uri") != ac.redirectURI:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri mismatch")
	case subtle.ConstantTimeCompare([]byte(s256(r.PostForm.Get("code_verifier"))), []byte(ac.challenge)) != 1:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
	default:
		relayTokens(w, ac.tokens)
	}
}

// s256 is the PKCE S256 challenge of a verifier (RFC 7636, section 4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// relayTokens sends the OP's token response as it is, with no header but
// its Content-Type.
func relayTokens(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// refresh forwards a refresh to the OP with the server's client (the
// client_id sent is not checked). Any failure at the OP is answered
// invalid_grant "Token refresh failed" with the OP's status; an unreachable
// OP with 502.
func (a *authServer) refresh(w http.ResponseWriter, r *http.Request) {
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
		return
	}
	resp, err := a.m.s.up.refresh(r.Context(), rt)
	switch {
	case err != nil:
		writeOAuthError(w, http.StatusBadGateway, "invalid_grant", "Token refresh failed")
	case resp.status != http.StatusOK:
		writeOAuthError(w, resp.status, "invalid_grant", "Token refresh failed")
	default:
		relayTokens(w, resp.body)
	}
}

// allowRegistration counts a registration attempt from addr in the sliding
// window and reports whether it is within the rate limit.
func (a *authServer) allowRegistration(addr string) bool {
	now := a.m.s.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	var recent []time.Time
	for _, t := range a.attempts[addr] {
		if now.Sub(t) < registerRateWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) >= a.m.s.opts.RegisterRateLimit {
		a.attempts[addr] = recent
		return false
	}
	a.attempts[addr] = append(recent, now)
	return true
}

// register is generation 2's /oauth/register (RFC 7591). It never creates
// a client: a registration whose redirect URIs a static client accepts gets
// that client's id (the first such client of AllowedClients); anything else
// is refused with registration_not_supported.
func (a *authServer) register(w http.ResponseWriter, r *http.Request) {
	var req map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Request body must be valid JSON")
		return
	}
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	if !a.allowRegistration(addr) {
		w.Header().Set("Retry-After", strconv.Itoa(int(registerRateWindow/time.Second)))
		writeOAuthError(w, http.StatusTooManyRequests, "too_many_requests", "Rate limit exceeded for client registration")
		return
	}
	var uris []string
	if raw, ok := req["redirect_uris"]; !ok || json.Unmarshal(raw, &uris) != nil || len(uris) == 0 {
		writeOAuthError(w, http.StatusBadRequest, "registration_not_supported", registrationNotSupported)
		return
	}
	if clients := a.m.s.opts.AllowedClients; len(clients) > 0 && acceptsAll(uris) {
		id := clients[0]
		writeJSON(w, http.StatusCreated, object{
			{"client_id", id},
			{"client_name", clientName(id)},
			{"redirect_uris", uris},
			{"token_endpoint_auth_method", "none"},
			{"grant_types", []string{"authorization_code", "refresh_token"}},
			{"response_types", []string{"code"}},
			{"client_id_issued_at", a.m.s.started.Unix()},
		})
		return
	}
	writeOAuthError(w, http.StatusBadRequest, "registration_not_supported", registrationNotSupported)
}

// acceptsAll reports whether the static clients (they all accept the same
// loopback redirect URIs) accept every one of the redirect URIs.
func acceptsAll(uris []string) bool {
	for _, u := range uris {
		if !registryRedirect(u) {
			return false
		}
	}
	return true
}

// clientName derives a static client's display name from its id, as the
// server does ("test-mcp-client" becomes "Test Mcp Client").
func clientName(id string) string {
	var b strings.Builder
	prevLetter := false
	for _, r := range strings.ReplaceAll(id, "-", " ") {
		if prevLetter {
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(unicode.ToUpper(r))
		}
		prevLetter = unicode.IsLetter(r)
	}
	return b.String()
}
