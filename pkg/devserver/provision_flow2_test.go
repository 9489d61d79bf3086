package devserver

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// followFlow2 opens a Flow 2 URL in a browser and returns where it ended.
func followFlow2(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestFlow2(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	cs := mustMCPSession(t, s, tokens(t, s).AccessToken)
	sub := DefaultUser.Subject
	byUser := map[string]any{"user_id": sub}

	if st := callTool(t, cs, ToolCheckStatus, byUser); mustJSON(st) != `{"client_id":null,"flow_type":null,"is_provisioned":false,"provisioned_at":null,"scopes":null}` {
		t.Fatalf("status before provisioning = %v", st)
	}
	p := callTool(t, cs, ToolProvision, nil)
	authURL, _ := p["authorization_url"].(string)
	u, err := url.Parse(authURL)
	if p["success"] != true || p["already_provisioned"] != false || err != nil || u.Scheme+"://"+u.Host != s.URL() ||
		u.Path != "/oauth/authorize-nextcloud" || len(u.Query().Get("state")) != 43 {
		t.Fatalf("provision = %v", p)
	}

	// The browser follows the URL through the OP back to the server.
	resp, body := followFlow2(t, authURL)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/oauth/callback" || !strings.Contains(body, "Nextcloud Access Provisioned") {
		t.Fatalf("flow ended at %s with %d: %s", resp.Request.URL.Path, resp.StatusCode, body)
	}
	pt, ok := s.ProvisionedToken(sub)
	if !ok || pt.RefreshToken == "" || pt.CredentialType != CredentialRefreshToken || pt.ClientID != u.Query().Get("state") ||
		pt.FlowType != FlowType2 || pt.Scopes != nil || time.Since(pt.ProvisionedAt) > time.Minute || pt.ProvisionedAt.Nanosecond() != 0 {
		t.Fatalf("ProvisionedToken = %+v, %t", pt, ok)
	}
	st := callTool(t, cs, ToolCheckStatus, byUser)
	if st["is_provisioned"] != true || st["client_id"] != pt.ClientID || st["flow_type"] != "flow2" || st["scopes"] != nil ||
		st["provisioned_at"] != pt.ProvisionedAt.Format("2006-01-02T15:04:05+00:00") {
		t.Fatalf("status after provisioning = %v", st)
	}
	// Without user_id generation 1 looks up "default_user".
	if def := callTool(t, cs, ToolCheckStatus, nil); def["is_provisioned"] != false {
		t.Error("check_provisioning_status without user_id found the caller's token")
	}
	if again := callTool(t, cs, ToolProvision, byUser); again["already_provisioned"] != true || again["authorization_url"] != nil {
		t.Fatalf("second provision = %v", again)
	}
	if other := callTool(t, cs, ToolProvision, nil); other["already_provisioned"] != false || other["authorization_url"] == nil {
		t.Fatalf("provision for default_user = %v", other)
	}
	if got := s.ToolCalls(ToolProvision); got != 3 {
		t.Errorf("ToolCalls(provision) = %d, want 3", got)
	}

	// The stored refresh token works at the OP for the server's client.
	tok, err := serverRefresh(t, s, pt.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the provisioned token: %v", err)
	}
	if c := jwtClaims(t, tok.AccessToken); c["sub"] != sub || c["aud"] != ServerClientID {
		t.Errorf("refreshed token claims %v", c)
	}
	// The server's own exchanges are not requests of MCP clients.
	if got := s.TokenRequests("authorization_code"); got != 1 {
		t.Errorf("TokenRequests(authorization_code) = %d, want 1 (the Flow 1 login)", got)
	}
	if got := s.IdPTokenRequests("authorization_code"); got != 2 {
		t.Errorf("IdPTokenRequests(authorization_code) = %d, want 2", got)
	}

	// revoke deletes the token and revokes it at the OP.
	if r := callTool(t, cs, ToolRevoke, nil); r["success"] != true {
		t.Errorf("revoke = %v", r)
	}
	if _, ok := s.ProvisionedToken(sub); ok {
		t.Error("still stored after revoke")
	}
	if _, err := serverRefresh(t, s, tok.RefreshToken); err == nil {
		t.Error("the revoked token still works at the OP")
	}
}

// TestFlow2AuthorizeRedirect: what the server sends the browser to the OP
// with, per generation; any state is taken.
func TestFlow2AuthorizeRedirect(t *testing.T) {
	for _, gen := range []int{1, 2} {
		s := startServer(t, Options{Generation: gen})
		resp := getJSON(t, s.URL()+"/oauth/authorize-nextcloud?state=any-state", nil)
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("generation %d: %d %v", gen, resp.StatusCode, err)
		}
		q := loc.Query()
		if loc.Scheme+"://"+loc.Host+loc.Path != s.IssuerURL()+idpAuthPath || q.Get("client_id") != ServerClientID ||
			q.Get("redirect_uri") != s.URL()+"/oauth/callback" || q.Get("scope") != "openid profile email offline_access" ||
			q.Get("state") != "any-state" || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 ||
			q.Get("prompt") != "consent" || q.Get("access_type") != "offline" || q.Get("resource") != map[int]string{1: s.URL(), 2: s.NextcloudURL()}[gen] ||
			q.Has("nonce") != (gen == 2) || len(q) != 10+(gen-1) {
			t.Errorf("generation %d: redirect %s", gen, loc)
		}
		var e map[string]string
		if resp := getJSON(t, s.URL()+"/oauth/authorize-nextcloud", &e); resp.StatusCode != 400 || e["error_description"] != "state parameter is required" {
			t.Errorf("generation %d: without state: %d %v", gen, resp.StatusCode, e)
		}
	}
}

// TestFlow2CallbackErrors: an error from the OP in a Flow 2 session is
// answered as JSON; a refusing user (DenyClients) ends there.
func TestFlow2CallbackErrors(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, DenyClients: []string{ServerClientID}})
	resp, body := followFlow2(t, s.Flow2URL())
	if resp.StatusCode != 400 || resp.Request.URL.Path != "/oauth/callback" ||
		body != `{"error":"access_denied","error_description":"The user refused to grant access."}` {
		t.Errorf("denied: %d %s", resp.StatusCode, body)
	}
	if _, ok := s.ProvisionedToken(DefaultUser.Subject); ok {
		t.Error("stored a token although the user refused")
	}
	// An unknown state falls into generation 1's browser login, which
	// cannot redeem the code; generation 2 refuses it.
	if status, page := getPage(t, s.URL()+"/oauth/callback?state=unknown&code=x"); status != 500 ||
		!strings.Contains(page, "Login Failed") || !strings.Contains(page, "Invalid or expired code parameter.") {
		t.Errorf("generation 1, unknown state: %d %s", status, page)
	}
	s2 := startServer(t, Options{Generation: 2})
	if status, page := getPage(t, s2.URL()+"/oauth/callback?state=unknown&code=x"); status != 400 || !strings.Contains(page, "Unknown or expired session") {
		t.Errorf("generation 2, unknown state: %d %s", status, page)
	}
}

func TestFlow2NoRefreshTokenStoresNothing(t *testing.T) {
	// A server whose OP grants no offline access shows the page anyway.
	s := startServer(t, Options{AutoApprove: true})
	// The server's client loses the refresh_token grant, so the OP issues
	// no refresh token although offline_access is asked for.
	s.store.clientsMu.Lock()
	c := *s.store.clients[ServerClientID]
	c.grantTypes = []oidc.GrantType{oidc.GrantTypeCode}
	s.store.clients[ServerClientID] = &c
	s.store.clientsMu.Unlock()
	resp, body := followFlow2(t, s.Flow2URL())
	if resp.StatusCode != 200 || !strings.Contains(body, "Nextcloud Access Provisioned") {
		t.Fatalf("%d: %s", resp.StatusCode, body)
	}
	if _, ok := s.ProvisionedToken(DefaultUser.Subject); ok {
		t.Error("stored a token although none arrived")
	}
}

// TestFlow2KillsClientRefreshToken: in generation 2, Flow 2 is a login of
// the server's IdP client, so it invalidates the refresh token a client
// holds through the server (one refresh token per user and client).
func TestFlow2KillsClientRefreshToken(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, Generation: 2})
	lb := newLoopback(t)
	tok := tokens(t, s)
	if resp, body := followFlow2(t, s.Flow2URL()); resp.StatusCode != 200 {
		t.Fatalf("Flow 2: %d %s", resp.StatusCode, body)
	}
	_, err := refreshWith(t, gen2Config(s, PublicClientID, lb.redirectURI()), tok.RefreshToken)
	if err == nil {
		t.Fatal("the client's refresh token survived Flow 2")
	}
	if status, code, desc := tokenErr(t, err); status != 400 || code != "invalid_grant" || desc != "Token refresh failed" {
		t.Errorf("refresh: %d %s %q", status, code, desc)
	}
	// The access token still works until it expires.
	if got := mcpStatus(t, s, tok.AccessToken); got != 200 {
		t.Errorf("/mcp: %d", got)
	}
}
