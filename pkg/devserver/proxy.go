package devserver

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Generation-2 defaults and lifetimes.
const (
	// DefaultCodeTTL is the default of Options.CodeTTL: how long a code
	// issued by the generation-2 server stays redeemable.
	DefaultCodeTTL = 60 * time.Second
	// DefaultRegisterRateLimit is the default of Options.RegisterRateLimit:
	// registrations per minute and remote address at the generation-2
	// server's /oauth/register.
	DefaultRegisterRateLimit = 10
	// proxySessionTTL bounds a login through the proxy, from the client's
	// /oauth/authorize to the OP's return to /oauth/callback.
	proxySessionTTL = 10 * time.Minute
	// registerRateWindow is the window of the registration rate limit.
	registerRateWindow = time.Minute
)

// proxyClient is a client registered at the generation-2 server.
type proxyClient struct {
	id            string
	name          string
	redirectURIs  []string // matched exactly
	grantTypes    []string
	responseTypes []string
	issuedAt      time.Time
}

// proxySession is a login in progress through the proxy.
type proxySession struct {
	clientID    string
	redirectURI string
	clientState string
	challenge   string // the client's S256 challenge
	scope       string // as the client asked
	offline     bool   // the client asked for offline_access
	verifier    string // the server's own PKCE verifier at the OP
	created     time.Time
}

// proxyCode is a code issued by the server, with the IdP tokens behind it.
type proxyCode struct {
	clientID    string
	redirectURI string
	challenge   string
	offline     bool
	scope       string // scopes asked for at the IdP, if the IdP reports none
	tokens      *upstreamTokens
	issued      time.Time
}

type rateWindow struct {
	start time.Time
	count int
}

// proxyAS is the generation-2 server's own authorization server: it logs
// users in at the OP with the server's client and issues its own codes.
// Everything it keeps lives in memory and vanishes with reset.
type proxyAS struct {
	url          string
	up           *upstream
	staticClient func(clientID string) bool // AllowedClients and OP registrations
	// staticSecret reports whether secret authenticates a static client:
	// any secret for a client that is public at the OP, its OP secret else.
	staticSecret    func(clientID, secret string) bool
	idpScopes       []string // asked for at the IdP, offline_access aside
	supportedScopes []string
	codeTTL         time.Duration
	rateLimit       int
	countToken      func(grantType string)

	mu       sync.Mutex
	clients  map[string]*proxyClient
	sessions map[string]*proxySession // by the state sent to the OP
	codes    map[string]*proxyCode
	rate     map[string]*rateWindow // by remote address
}

func newProxyAS(baseURL string, up *upstream, staticClient func(string) bool, staticSecret func(string, string) bool,
	configured []string, codeTTL time.Duration, rateLimit int, countToken func(string)) *proxyAS {
	var idpScopes []string
	for _, sc := range joinScopes(baseScopes, configured) {
		if sc != "offline_access" {
			idpScopes = append(idpScopes, sc)
		}
	}
	p := &proxyAS{
		url:             baseURL,
		up:              up,
		staticClient:    staticClient,
		staticSecret:    staticSecret,
		idpScopes:       idpScopes,
		supportedScopes: joinScopes(baseScopes, []string{"offline_access"}, configured),
		codeTTL:         codeTTL,
		rateLimit:       rateLimit,
		countToken:      countToken,
	}
	p.reset()
	return p
}

// reset forgets registrations, sessions, codes and rate-limit counters.
func (p *proxyAS) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients = make(map[string]*proxyClient)
	p.sessions = make(map[string]*proxySession)
	p.codes = make(map[string]*proxyCode)
	p.rate = make(map[string]*rateWindow)
}

// purgeLocked drops expired sessions and codes. The caller holds p.mu.
func (p *proxyAS) purgeLocked(now time.Time) {
	for st, s := range p.sessions {
		if now.Sub(s.created) > proxySessionTTL {
			delete(p.sessions, st)
		}
	}
	for c, pc := range p.codes {
		if now.Sub(pc.issued) > p.codeTTL {
			delete(p.codes, c)
		}
	}
}

func (p *proxyAS) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", p.metadata)
	mux.HandleFunc("GET /oauth/authorize", p.authorize)
	mux.HandleFunc("POST /oauth/token", p.token)
	mux.HandleFunc("POST /oauth/register", p.register)
	mux.HandleFunc("GET /oauth/userinfo", p.userinfo)
}

// metadata serves the RFC 8414 authorization server metadata.
func (p *proxyAS) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.url,
		"authorization_endpoint":                p.url + "/oauth/authorize",
		"token_endpoint":                        p.url + "/oauth/token",
		"registration_endpoint":                 p.url + "/oauth/register",
		"userinfo_endpoint":                     p.url + "/oauth/userinfo",
		"code_challenge_methods_supported":      []string{"S256"},
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_post"},
		"scopes_supported":                      p.supportedScopes,
	})
}

// registered returns a client registered at the server.
func (p *proxyAS) registered(clientID string) (*proxyClient, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[clientID]
	return c, ok
}

// authorize is the generation-2 /oauth/authorize: it keeps the client's
// request in a session and logs the user in at the OP with the server's
// own client.
func (p *proxyAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	get := func(k string) string { v, _ := lastParam(q, k); return v }
	req, ok := checkAuthorize(w, q, false)
	if !ok {
		return
	}
	clientID, redirectURI, state, challenge := req.clientID, req.redirectURI, req.state, req.challenge
	if c, ok := p.registered(clientID); ok {
		if !slices.Contains(c.redirectURIs, redirectURI) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "redirect_uri does not match a redirect URI registered for this client")
			return
		}
	} else if p.staticClient(clientID) {
		if !loopbackWithPort(redirectURI) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "redirect_uri must be a loopback URI with a port (http://127.0.0.1:PORT/... or http://localhost:PORT/...)")
			return
		}
	} else {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Unknown client_id")
		return
	}
	scope := get("scope")
	for _, sc := range strings.Fields(scope) {
		if !slices.Contains(p.supportedScopes, sc) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "scope "+sc+" is not supported (supported: "+strings.Join(p.supportedScopes, " ")+")")
			return
		}
	}
	offline := slices.Contains(strings.Fields(scope), "offline_access")
	idpScopes := slices.Clone(p.idpScopes)
	if offline {
		idpScopes = append(idpScopes, "offline_access")
	}

	sess := &proxySession{
		clientID:    clientID,
		redirectURI: redirectURI,
		clientState: state,
		challenge:   challenge,
		scope:       scope,
		offline:     offline,
		verifier:    oauth2.GenerateVerifier(),
		created:     time.Now(),
	}
	idpState := randomToken()
	p.mu.Lock()
	p.purgeLocked(sess.created)
	p.sessions[idpState] = sess
	p.mu.Unlock()
	http.Redirect(w, r, p.up.authorizeURL(idpState, oauth2.S256ChallengeFromVerifier(sess.verifier), idpScopes, nil), http.StatusFound)
}

// loopbackWithPort reports whether u is http://127.0.0.1:PORT/... or
// http://localhost:PORT/... with an explicit port.
func loopbackWithPort(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Fragment != "" || u.User != nil {
		return false
	}
	host, port := u.Hostname(), u.Port()
	if host != "127.0.0.1" && host != "localhost" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

// hasSession reports whether state belongs to a login through the proxy.
func (p *proxyAS) hasSession(state string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.sessions[state]
	return ok && time.Since(s.created) <= proxySessionTTL
}

// callback is the proxy's part of GET /oauth/callback: it redeems the OP's
// code and sends the browser back to the client with a code of its own, or
// with the OP's error.
func (p *proxyAS) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, _ := lastParam(q, "state")
	p.mu.Lock()
	sess, ok := p.sessions[state]
	delete(p.sessions, state)
	p.mu.Unlock()
	if !ok || time.Since(sess.created) > proxySessionTTL {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "unknown or expired state")
		return
	}
	back := func(params url.Values) {
		params.Set("state", sess.clientState)
		http.Redirect(w, r, withQuery(sess.redirectURI, params), http.StatusFound)
	}
	if errCode, _ := lastParam(q, "error"); errCode != "" {
		params := url.Values{"error": {errCode}}
		if desc, _ := lastParam(q, "error_description"); desc != "" {
			params.Set("error_description", desc)
		}
		back(params)
		return
	}
	code, _ := lastParam(q, "code")
	if code == "" {
		back(url.Values{"error": {"server_error"}, "error_description": {"the identity provider returned no code"}})
		return
	}
	tokens, err := p.up.exchangeCode(r.Context(), code, sess.verifier)
	if err != nil {
		back(url.Values{"error": {"server_error"}, "error_description": {"the code exchange at the identity provider failed"}})
		return
	}
	idpScopes := slices.Clone(p.idpScopes)
	if sess.offline {
		idpScopes = append(idpScopes, "offline_access")
	}
	ours := randomToken()
	now := time.Now()
	p.mu.Lock()
	p.purgeLocked(now)
	p.codes[ours] = &proxyCode{
		clientID:    sess.clientID,
		redirectURI: sess.redirectURI,
		challenge:   sess.challenge,
		offline:     sess.offline,
		scope:       strings.Join(idpScopes, " "),
		tokens:      tokens,
		issued:      now,
	}
	p.mu.Unlock()
	back(url.Values{"code": {ours}})
}

// withQuery adds params to the query of a URI.
func withQuery(uri string, params url.Values) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// token is the generation-2 /oauth/token.
func (p *proxyAS) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body must be form-encoded")
		return
	}
	grantType := r.PostForm.Get("grant_type")
	p.countToken(grantType)
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		clientID, _ = url.QueryUnescape(user)
		secret, _ = url.QueryUnescape(pass)
	}
	switch grantType {
	case "authorization_code":
		p.exchange(w, r, clientID, secret)
	case "refresh_token":
		p.refresh(w, r, clientID, secret)
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

// authenticate checks the client of a token request and writes the error
// answer if it fails. Clients registered at the server are public; a static
// client that is confidential at the OP must send its secret.
func (p *proxyAS) authenticate(w http.ResponseWriter, clientID, secret string) bool {
	if _, ok := p.registered(clientID); ok {
		return true
	}
	if clientID == "" || !p.staticClient(clientID) {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Unknown client_id")
		return false
	}
	if !p.staticSecret(clientID, secret) {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return false
	}
	return true
}

// exchange redeems a code of the server. Whatever the outcome, the code is
// gone afterwards.
func (p *proxyAS) exchange(w http.ResponseWriter, r *http.Request, clientID, secret string) {
	code := r.PostForm.Get("code")
	p.mu.Lock()
	pc, ok := p.codes[code]
	delete(p.codes, code)
	p.mu.Unlock()
	if !p.authenticate(w, clientID, secret) {
		return
	}
	if code == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "missing code")
		return
	}
	if !ok || time.Since(pc.issued) > p.codeTTL {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Invalid or expired authorization code")
		return
	}
	if pc.clientID != clientID {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the authorization code was issued to another client")
		return
	}
	if r.PostForm.Get("redirect_uri") != pc.redirectURI {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		return
	}
	verifier := r.PostForm.Get("code_verifier")
	if verifier == "" || subtle.ConstantTimeCompare([]byte(oauth2.S256ChallengeFromVerifier(verifier)), []byte(pc.challenge)) != 1 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		return
	}
	resp := tokenResponse(pc.tokens, pc.scope, time.Since(pc.issued))
	if !pc.offline {
		delete(resp, "refresh_token")
	}
	writeJSON(w, http.StatusOK, resp)
}

// refresh forwards a refresh to the OP with the server's client.
func (p *proxyAS) refresh(w http.ResponseWriter, r *http.Request, clientID, secret string) {
	if !p.authenticate(w, clientID, secret) {
		return
	}
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "missing refresh_token")
		return
	}
	tokens, err := p.up.refresh(r.Context(), rt)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Token refresh failed")
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse(tokens, "", 0))
}

// tokenResponse is the server's token response for IdP tokens: no
// id_token, whose audience is the server's client.
func tokenResponse(t *upstreamTokens, fallbackScope string, age time.Duration) map[string]any {
	resp := map[string]any{
		"access_token": t.AccessToken,
		"token_type":   "Bearer",
	}
	if t.ExpiresIn > 0 {
		resp["expires_in"] = max(t.ExpiresIn-int64(age/time.Second), 1)
	}
	if t.RefreshToken != "" {
		resp["refresh_token"] = t.RefreshToken
	}
	if scope := t.Scope; scope != "" {
		resp["scope"] = scope
	} else if fallbackScope != "" {
		resp["scope"] = fallbackScope
	}
	return resp
}

// allowRegistration counts a registration request from addr and reports
// whether it is within the rate limit; if not, also how long to wait.
func (p *proxyAS) allowRegistration(addr string) (bool, time.Duration) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	win, ok := p.rate[addr]
	if !ok || now.Sub(win.start) >= registerRateWindow {
		win = &rateWindow{start: now}
		p.rate[addr] = win
	}
	win.count++
	if win.count > p.rateLimit {
		return false, win.start.Add(registerRateWindow).Sub(now)
	}
	return true, 0
}

// register is the generation-2 /oauth/register (RFC 7591): public native
// clients with loopback redirect URIs that carry a port, matched exactly
// later. Registrations live in memory.
func (p *proxyAS) register(w http.ResponseWriter, r *http.Request) {
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	if ok, wait := p.allowRegistration(addr); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeOAuthError(w, http.StatusTooManyRequests, "too_many_requests",
			"at most "+strconv.Itoa(p.rateLimit)+" registrations per minute: retry later")
		return
	}
	var req registrationRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON object of client metadata")
		return
	}
	if len(req.RedirectURIs) == 0 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uris is required")
		return
	}
	for _, u := range req.RedirectURIs {
		if !loopbackWithPort(u) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_redirect_uri",
				"redirect URI "+strconv.Quote(u)+" is not supported: only http://127.0.0.1:PORT/... or http://localhost:PORT/... with an explicit port")
			return
		}
	}
	if m := req.TokenEndpointAuthMethod; m != "" && m != "none" {
		writeOAuthError(w, http.StatusBadRequest, "registration_not_supported", "only public clients (token_endpoint_auth_method \"none\") can register")
		return
	}
	if req.ApplicationType != "" && req.ApplicationType != "native" {
		writeOAuthError(w, http.StatusBadRequest, "registration_not_supported", "only native clients can register")
		return
	}
	grants := req.GrantTypes
	if grants == nil {
		grants = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range grants {
		if g != "authorization_code" && g != "refresh_token" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "unsupported grant type "+strconv.Quote(g))
			return
		}
	}
	responseTypes := req.ResponseTypes
	if responseTypes == nil {
		responseTypes = []string{"code"}
	}
	for _, rt := range responseTypes {
		if rt != "code" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "unsupported response type "+strconv.Quote(rt))
			return
		}
	}
	c := &proxyClient{
		id:            "mcp-" + randomID(),
		name:          req.ClientName,
		redirectURIs:  slices.Clone(req.RedirectURIs),
		grantTypes:    grants,
		responseTypes: responseTypes,
		issuedAt:      time.Now().UTC(),
	}
	p.mu.Lock()
	p.clients[c.id] = c
	p.mu.Unlock()
	resp := map[string]any{
		"client_id":                  c.id,
		"client_id_issued_at":        c.issuedAt.Unix(),
		"redirect_uris":              c.redirectURIs,
		"grant_types":                c.grantTypes,
		"response_types":             c.responseTypes,
		"token_endpoint_auth_method": "none",
		"application_type":           "native",
	}
	if c.name != "" {
		resp["client_name"] = c.name
	}
	writeJSON(w, http.StatusCreated, resp)
}

// userinfo is the generation-2 /oauth/userinfo: it hands the caller's
// bearer token to the OP's userinfo endpoint and returns the answer.
func (p *proxyAS) userinfo(w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, p.up.userinfoEndpoint, nil)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "cannot build the userinfo request")
		return
	}
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.up.client.Do(req)
	if err != nil {
		writeOAuthError(w, http.StatusBadGateway, "server_error", "the identity provider is unreachable")
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "WWW-Authenticate"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
}
