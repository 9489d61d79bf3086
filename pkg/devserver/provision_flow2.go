package devserver

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// flow2SessionTTL is the lifetime of the session stored when a Flow 2
// authorization URL is opened (the login at the OP must end within it).
const flow2SessionTTL = 10 * time.Minute

// flow2Scopes are the scopes the server asks for in Flow 2.
var flow2Scopes = []string{"openid", "profile", "email", "offline_access"}

type flow2Session struct {
	verifier string
	nonce    string // generation 2 only
	created  time.Time
}

// flow2 is the server's offline-access provisioning (ADR-004 Flow 2):
// GET /oauth/authorize-nextcloud?state=STATE stores a session under the
// state (any state: the server does not check where it came from) and sends
// the browser to the OP with the server's own client, PKCE and
// offline_access; the OP returns to /oauth/callback, where the server
// redeems the code and stores the refresh token under the ID token's sub.
type flow2 struct {
	m *mcpServer

	mu       sync.Mutex
	sessions map[string]flow2Session // by state
}

func newFlow2(m *mcpServer) *flow2 {
	f := &flow2{m: m}
	f.reset()
	return f
}

// reset forgets every session.
func (f *flow2) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = make(map[string]flow2Session)
}

// authorizationURL returns a new Flow 2 authorization URL.
func (f *flow2) authorizationURL() string {
	return f.m.url + "/oauth/authorize-nextcloud?" + url.Values{"state": {randomToken()}}.Encode()
}

// hasSession reports whether state belongs to an open Flow 2 session.
func (f *flow2) hasSession(state string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[state]
	return ok && f.m.s.now().Sub(s.created) <= flow2SessionTTL
}

// authorizeNextcloud is GET /oauth/authorize-nextcloud.
func (f *flow2) authorizeNextcloud(w http.ResponseWriter, r *http.Request) {
	state, _ := lastParam(r.URL.Query(), "state")
	if state == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "state parameter is required")
		return
	}
	sess := flow2Session{verifier: randomToken(), created: f.m.s.now()}
	if f.m.gen == 2 {
		sess.nonce = randomToken()
	}
	f.mu.Lock()
	for st, s := range f.sessions {
		if sess.created.Sub(s.created) > flow2SessionTTL {
			delete(f.sessions, st)
		}
	}
	f.sessions[state] = sess
	f.mu.Unlock()
	q := query{
		{"client_id", ServerClientID},
		{"redirect_uri", f.m.url + "/oauth/callback"},
		{"response_type", "code"},
		{"scope", strings.Join(flow2Scopes, " ")},
		{"state", state},
	}
	if sess.nonce != "" {
		q = append(q, [2]string{"nonce", sess.nonce})
	}
	q = append(q, query{
		{"code_challenge", s256(sess.verifier)},
		{"code_challenge_method", "S256"},
		{"prompt", "consent"},
		{"access_type", "offline"},
		{"resource", f.resource()},
	}...)
	redirect(w, f.m.s.up.authorizeURL(q))
}

// callback is Flow 2's part of GET /oauth/callback. The success page is
// shown even when the OP issued no refresh token (then nothing is stored).
func (f *flow2) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, _ := lastParam(q, "state")
	f.mu.Lock()
	sess := f.sessions[state]
	delete(f.sessions, state)
	f.mu.Unlock()
	if errCode, _ := lastParam(q, "error"); errCode != "" {
		desc, ok := lastParam(q, "error_description")
		if !ok {
			desc = "Authorization failed"
		}
		writeOAuthError(w, http.StatusBadRequest, errCode, desc)
		return
	}
	code, _ := lastParam(q, "code")
	if code == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "code and state parameters are required")
		return
	}
	resp, err := f.m.s.up.exchangeCode(r.Context(), code, sess.verifier)
	var tokens *upstreamTokens
	if err == nil {
		tokens, err = resp.tokens()
	}
	sub := ""
	if err == nil {
		sub, err = f.m.s.up.subject(r.Context(), tokens.IDToken, sess.nonce)
	}
	if err != nil {
		writeHTML(w, http.StatusInternalServerError, loginFailedPage, struct{ Reason, Detail string }{
			"Failed to exchange authorization code for tokens", err.Error()})
		return
	}
	if tokens.RefreshToken != "" {
		f.m.prov.storeFlow2(sub, tokens.RefreshToken, state)
	}
	writeHTML(w, http.StatusOK, provisionedPage, nil)
}

var provisionedPage = template.Must(template.New("provisioned").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Nextcloud Access Provisioned</title>
<style>body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #222; }</style>
</head>
<body>
<h1 id="provisioned">✓ Nextcloud Access Provisioned</h1>
<p>The MCP server may now work with your Nextcloud data while you are away.</p>
<p>You can close this window and go back to your MCP client.</p>
<p><small>ncmcp development server: not for production.</small></p>
</body>
</html>
`))

// resource is the resource indicator of the server's Flow 2 login at the
// IdP: the server itself in generation 1, Nextcloud (NEXTCLOUD_HOST) in
// generation 2, as recorded.
func (f *flow2) resource() string {
	if f.m.gen == 2 {
		return f.m.s.ncURL
	}
	return f.m.url
}
