package devserver

import (
	"net/http"
	"strings"
)

// passthroughAuthorize is generation 1's /oauth/authorize: it checks the
// request, then sends the browser straight to the IdP with the client's own
// client_id, redirect_uri and state, the server's configured scopes,
// prompt=consent and the resource, but without the client's code_challenge
// (unless PKCERequire) and without a nonce (unless ForwardNonce or
// NonceOverride).
func (m *mcpServer) passthroughAuthorize(w http.ResponseWriter, r *http.Request) {
	p, ok := m.checkAuthorize(w, r.URL.Query())
	if !ok {
		return
	}
	q := query{
		{"client_id", p.clientID},
		{"redirect_uri", p.redirectURI},
		{"response_type", "code"},
		{"scope", strings.Join(m.s.idpScopes, " ")},
		{"state", p.state},
	}
	if m.s.opts.PKCE == PKCERequire {
		q = append(q, [2]string{"code_challenge", p.challenge}, [2]string{"code_challenge_method", "S256"})
	}
	switch {
	case m.s.opts.NonceOverride != "":
		q = append(q, [2]string{"nonce", m.s.opts.NonceOverride})
	case m.s.opts.ForwardNonce && p.nonce != "":
		q = append(q, [2]string{"nonce", p.nonce})
	}
	q = append(q, [2]string{"prompt", "consent"}, [2]string{"resource", m.url + "/mcp"})
	redirect(w, m.s.up.authorizeURL(q))
}
