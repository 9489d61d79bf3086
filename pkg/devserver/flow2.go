package devserver

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Flow 2 lifetimes.
const (
	// provisionStateTTL bounds how long an authorization URL returned by
	// provision_nextcloud_access can be opened.
	provisionStateTTL = 10 * time.Minute
	// flow2SessionTTL is the lifetime of the session stored when the
	// authorization URL is opened (the login at the OP must end within it).
	flow2SessionTTL = 10 * time.Minute
)

// flow2Scopes are the scopes the server asks for in Flow 2.
var flow2Scopes = []string{"openid", "profile", "email", "offline_access"}

// FlowType2 is the flow_type of a refresh token stored by Flow 2.
const FlowType2 = "flow2"

// ProvisionedToken is a refresh token the MCP server stand-in obtained for
// a user through Flow 2, as Server.ProvisionedToken reports it.
type ProvisionedToken struct {
	// RefreshToken is the refresh token the OP issued to the server's client.
	RefreshToken string
	// ProvisionedAt is when the server stored it (UTC).
	ProvisionedAt time.Time
	// Scopes are the scopes the OP granted.
	Scopes []string
	// ClientID is the client the token was issued to (ServerClientID).
	ClientID string
	// FlowType is FlowType2.
	FlowType string
}

type pendingProvision struct {
	user    string
	created time.Time
}

type flow2Session struct {
	verifier string
	user     string
	created  time.Time
}

// flow2 is the server's offline-access provisioning (ADR-004 Flow 2). It
// keeps everything in memory; reset forgets it.
type flow2 struct {
	url          string // server base URL
	up           *upstream
	provisionURL string // Options.ProvisionURL fault
	noRevocation bool

	mu       sync.Mutex
	pending  map[string]pendingProvision // state from the tool -> user
	sessions map[string]flow2Session     // state of an opened authorization URL
	tokens   map[string]ProvisionedToken // by the user's sub
}

func newFlow2(baseURL string, up *upstream, provisionURL string, noRevocation bool) *flow2 {
	f := &flow2{url: baseURL, up: up, provisionURL: provisionURL, noRevocation: noRevocation}
	f.reset()
	return f
}

// reset forgets every state, session and stored token.
func (f *flow2) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = make(map[string]pendingProvision)
	f.sessions = make(map[string]flow2Session)
	f.tokens = make(map[string]ProvisionedToken)
}

// purgeLocked drops expired states and sessions. The caller holds f.mu.
func (f *flow2) purgeLocked(now time.Time) {
	for st, p := range f.pending {
		if now.Sub(p.created) > provisionStateTTL {
			delete(f.pending, st)
		}
	}
	for st, s := range f.sessions {
		if now.Sub(s.created) > flow2SessionTTL {
			delete(f.sessions, st)
		}
	}
}

func (f *flow2) token(sub string) (ProvisionedToken, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[sub]
	t.Scopes = slices.Clone(t.Scopes)
	return t, ok
}

// provisionResult is the result of provision_nextcloud_access.
type provisionResult struct {
	Success            bool   `json:"success"`
	AlreadyProvisioned bool   `json:"already_provisioned"`
	AuthorizationURL   string `json:"authorization_url,omitempty"`
	Message            string `json:"message"`
}

// provision starts Flow 2 for user, unless a token is stored already.
func (f *flow2) provision(user string) provisionResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tokens[user]; ok {
		return provisionResult{
			Success:            true,
			AlreadyProvisioned: true,
			Message:            "The server already has offline access to Nextcloud for this user. Revoke it first to provision again.",
		}
	}
	res := provisionResult{
		Success: true,
		Message: "Open the authorization URL in a browser and log in to grant the server offline access to Nextcloud. Then check the provisioning status.",
	}
	if f.provisionURL != "" {
		res.AuthorizationURL = f.provisionURL
		return res
	}
	now := time.Now()
	f.purgeLocked(now)
	state := randomToken()
	f.pending[state] = pendingProvision{user: user, created: now}
	res.AuthorizationURL = f.url + "/oauth/authorize-nextcloud?" + url.Values{"state": {state}}.Encode()
	return res
}

// statusResult is the result of check_provisioning_status. Unknown values
// are JSON null.
type statusResult struct {
	IsProvisioned bool     `json:"is_provisioned"`
	ProvisionedAt *string  `json:"provisioned_at"`
	ClientID      *string  `json:"client_id"`
	Scopes        []string `json:"scopes"`
	FlowType      *string  `json:"flow_type"`
}

func (f *flow2) status(user string) statusResult {
	t, ok := f.token(user)
	if !ok {
		return statusResult{}
	}
	at := t.ProvisionedAt.UTC().Format(time.RFC3339)
	res := statusResult{
		IsProvisioned: true,
		ProvisionedAt: &at,
		ClientID:      &t.ClientID,
		FlowType:      &t.FlowType,
		Scopes:        t.Scopes,
	}
	if res.Scopes == nil {
		res.Scopes = []string{}
	}
	return res
}

// revokeResult is the result of revoke_nextcloud_access.
type revokeResult struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

// revoke deletes the user's stored token and revokes it at the OP (RFC
// 7009), unless the OP offers no revocation.
func (f *flow2) revoke(ctx context.Context, user string) revokeResult {
	f.mu.Lock()
	t, ok := f.tokens[user]
	delete(f.tokens, user)
	f.mu.Unlock()
	if !ok {
		return revokeResult{Success: false, Message: "No offline access to Nextcloud is provisioned for this user: nothing to revoke."}
	}
	if f.noRevocation {
		return revokeResult{Success: true, Message: "The server deleted its refresh token for this user. The identity provider offers no revocation endpoint, so the token was not revoked there."}
	}
	if err := f.up.revoke(ctx, t.RefreshToken, "refresh_token"); err != nil {
		return revokeResult{Success: true, Message: "The server deleted its refresh token for this user, but revoking it at the identity provider failed."}
	}
	return revokeResult{Success: true, Message: "The server deleted its refresh token for this user and revoked it at the identity provider."}
}

// authorizeNextcloud is GET /oauth/authorize-nextcloud: it turns a state
// from provision_nextcloud_access into a 10-minute session and sends the
// browser to the OP with the server's own client. A state works once.
func (f *flow2) authorizeNextcloud(w http.ResponseWriter, r *http.Request) {
	state, _ := lastParam(r.URL.Query(), "state")
	if state == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "missing state")
		return
	}
	verifier := oauth2.GenerateVerifier()
	now := time.Now()
	f.mu.Lock()
	f.purgeLocked(now)
	p, ok := f.pending[state]
	if ok {
		delete(f.pending, state)
		f.sessions[state] = flow2Session{verifier: verifier, user: p.user, created: now}
	}
	f.mu.Unlock()
	if !ok {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "unknown, expired or already used provisioning state: call provision_nextcloud_access again")
		return
	}
	target := f.up.authorizeURL(state, oauth2.S256ChallengeFromVerifier(verifier), flow2Scopes,
		url.Values{"access_type": {"offline"}})
	http.Redirect(w, r, target, http.StatusFound)
}

// callback is Flow 2's part of GET /oauth/callback: it redeems the code at
// the OP and stores the refresh token under the ID token's sub.
func (f *flow2) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, _ := lastParam(q, "state")
	if errCode, _ := lastParam(q, "error"); errCode != "" {
		f.takeSession(state)
		desc, _ := lastParam(q, "error_description")
		if desc == "" {
			desc = "authorization failed"
		}
		writeOAuthError(w, http.StatusBadRequest, errCode, desc)
		return
	}
	code, _ := lastParam(q, "code")
	if code == "" || state == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "code and state are required")
		return
	}
	sess, ok := f.takeSession(state)
	if !ok {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "unknown or expired state: start the provisioning again")
		return
	}
	tok, err := f.up.exchangeCode(r.Context(), code, sess.verifier)
	if err != nil {
		writeOAuthError(w, http.StatusBadGateway, "server_error", "the code exchange at the identity provider failed")
		return
	}
	sub, err := f.up.subject(r.Context(), tok.IDToken)
	if err != nil {
		writeOAuthError(w, http.StatusBadGateway, "server_error", "the identity provider's ID token is not valid")
		return
	}
	if tok.RefreshToken != "" {
		scopes := strings.Fields(tok.Scope)
		if len(scopes) == 0 {
			scopes = slices.Clone(flow2Scopes)
		}
		f.mu.Lock()
		f.tokens[sub] = ProvisionedToken{
			RefreshToken:  tok.RefreshToken,
			ProvisionedAt: time.Now().UTC(),
			Scopes:        scopes,
			ClientID:      f.up.clientID,
			FlowType:      FlowType2,
		}
		f.mu.Unlock()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = provisionedPage.Execute(w, nil)
}

// takeSession removes and returns the live session of state.
func (f *flow2) takeSession(state string) (flow2Session, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[state]
	delete(f.sessions, state)
	if !ok || time.Since(s.created) > flow2SessionTTL {
		return flow2Session{}, false
	}
	return s, true
}

var provisionedPage = template.Must(template.New("provisioned").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Nextcloud Access Provisioned</title>
<style>body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #222; }</style>
</head>
<body>
<h1 id="provisioned">Nextcloud Access Provisioned</h1>
<p>The login is complete. The MCP server may now work with your Nextcloud data while you are away.</p>
<p>You can close this tab and go back to your MCP client.</p>
<p><small>ncmcp development server: not for production.</small></p>
</body>
</html>
`))
