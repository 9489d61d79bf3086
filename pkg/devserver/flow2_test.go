package devserver

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

func jsonBody(s string) io.Reader { return strings.NewReader(s) }

type provisionOut struct {
	Success            bool    `json:"success"`
	AlreadyProvisioned bool    `json:"already_provisioned"`
	AuthorizationURL   *string `json:"authorization_url"`
	Message            string  `json:"message"`
}

type statusOut struct {
	IsProvisioned bool      `json:"is_provisioned"`
	ProvisionedAt *string   `json:"provisioned_at"`
	ClientID      *string   `json:"client_id"`
	Scopes        *[]string `json:"scopes"`
	FlowType      *string   `json:"flow_type"`
}

type revokeOut struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

// serverRefresh uses a refresh token of the server's own client at the OP.
func serverRefresh(t *testing.T, s *Server, rt string) (*oauth2.Token, error) {
	t.Helper()
	cfg := oauthConfig(s, ServerClientID, s.ServerClientSecret(), s.URL()+"/oauth/callback", oauth2.AuthStyleInHeader)
	return cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: rt}).Token()
}

func TestFlow2(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	cs := mustMCPSession(t, s, accessToken(t, s).AccessToken)
	sub := DefaultUser.Subject

	var st statusOut
	callTool(t, cs, ToolCheckStatus, map[string]any{"user_id": sub}, &st)
	if st.IsProvisioned || st.ProvisionedAt != nil || st.ClientID != nil || st.Scopes != nil || st.FlowType != nil {
		t.Fatalf("status before provisioning = %+v, want false and nulls", st)
	}

	var p provisionOut
	callTool(t, cs, ToolProvision, nil, &p)
	if !p.Success || p.AlreadyProvisioned || p.AuthorizationURL == nil || p.Message == "" {
		t.Fatalf("provision = %+v", p)
	}
	u, err := url.Parse(*p.AuthorizationURL)
	if err != nil || u.Scheme+"://"+u.Host != s.URL() || u.Path != "/oauth/authorize-nextcloud" || u.Query().Get("state") == "" {
		t.Fatalf("authorization_url = %q", *p.AuthorizationURL)
	}

	// The browser follows the URL through the OP back to the server.
	resp, err := browser.Get(*p.AuthorizationURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/oauth/callback" || !strings.Contains(string(body), "Nextcloud Access Provisioned") {
		t.Fatalf("flow ended at %s with %d: %s", resp.Request.URL.Path, resp.StatusCode, body)
	}

	pt, ok := s.ProvisionedToken(sub)
	if !ok || pt.RefreshToken == "" || pt.ClientID != ServerClientID || pt.FlowType != "flow2" ||
		!slices.Contains(pt.Scopes, "offline_access") || time.Since(pt.ProvisionedAt) > time.Minute {
		t.Fatalf("ProvisionedToken = %+v, %t", pt, ok)
	}

	callTool(t, cs, ToolCheckStatus, map[string]any{"user_id": sub}, &st)
	if !st.IsProvisioned || st.ClientID == nil || *st.ClientID != ServerClientID || st.FlowType == nil || *st.FlowType != "flow2" ||
		st.Scopes == nil || !slices.Equal(*st.Scopes, pt.Scopes) || st.ProvisionedAt == nil {
		t.Fatalf("status after provisioning = %+v", st)
	}
	if at, err := time.Parse(time.RFC3339, *st.ProvisionedAt); err != nil || at.Sub(pt.ProvisionedAt).Abs() > time.Second {
		t.Errorf("provisioned_at = %q (%v)", *st.ProvisionedAt, err)
	}
	// Without user_id the seed looks up "default_user".
	var def statusOut
	callTool(t, cs, ToolCheckStatus, nil, &def)
	if def.IsProvisioned || def.ProvisionedAt != nil {
		t.Error("check_provisioning_status without user_id found the token of the caller")
	}

	// A second provisioning for the token's subject: nothing to do.
	var again provisionOut
	callTool(t, cs, ToolProvision, nil, &again)
	if !again.Success || !again.AlreadyProvisioned || again.AuthorizationURL != nil || again.Message == "" {
		t.Fatalf("second provision = %+v", again)
	}
	// Another user_id still gets a URL.
	var other provisionOut
	callTool(t, cs, ToolProvision, map[string]any{"user_id": SecondUser.Subject}, &other)
	if other.AlreadyProvisioned || other.AuthorizationURL == nil {
		t.Fatalf("provision for another user = %+v", other)
	}
	if got := s.ToolCalls(ToolProvision); got != 3 {
		t.Errorf("ToolCalls(provision) = %d, want 3", got)
	}
	if got := s.ToolCalls(ToolCheckStatus); got != 3 {
		t.Errorf("ToolCalls(check) = %d, want 3", got)
	}

	// The stored refresh token works at the OP for the server's client.
	tok, err := serverRefresh(t, s, pt.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the provisioned token: %v", err)
	}
	if sub := jwtClaims(t, tok.AccessToken)["sub"]; sub != DefaultUser.Subject {
		t.Errorf("refreshed token sub = %v", sub)
	}
	// The server's own exchanges are not requests of MCP clients.
	if got := s.TokenRequests("authorization_code"); got != 1 {
		t.Errorf("TokenRequests(authorization_code) = %d, want 1 (the Flow 1 login)", got)
	}
	if got := s.IdPTokenRequests("authorization_code"); got != 2 {
		t.Errorf("IdPTokenRequests(authorization_code) = %d, want 2", got)
	}
}

func TestFlow2AuthorizeRedirect(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	cs := mustMCPSession(t, s, accessToken(t, s).AccessToken)
	var p provisionOut
	callTool(t, cs, ToolProvision, map[string]any{"user_id": "someone"}, &p)
	state, _ := url.Parse(*p.AuthorizationURL)

	resp := getJSON(t, *p.AuthorizationURL, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize-nextcloud: %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	want := map[string]string{
		"client_id": ServerClientID, "redirect_uri": s.URL() + "/oauth/callback", "response_type": "code",
		"scope": "openid profile email offline_access", "state": state.Query().Get("state"),
		"code_challenge_method": "S256", "prompt": "consent", "access_type": "offline",
	}
	if loc.Scheme+"://"+loc.Host+loc.Path != s.IssuerURL()+"/authorize" {
		t.Errorf("redirect to %s", loc.Redacted())
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if len(q.Get("code_challenge")) != 43 {
		t.Errorf("code_challenge = %q", q.Get("code_challenge"))
	}

	// A state works once.
	var e struct {
		Error string `json:"error"`
	}
	if resp := getJSON(t, *p.AuthorizationURL, &e); resp.StatusCode != 400 || e.Error != "invalid_request" {
		t.Errorf("second use of the URL: %d %q", resp.StatusCode, e.Error)
	}
	for _, path := range []string{"/oauth/authorize-nextcloud", "/oauth/authorize-nextcloud?state=made-up"} {
		e.Error = ""
		if resp := getJSON(t, s.URL()+path, &e); resp.StatusCode != 400 || e.Error != "invalid_request" {
			t.Errorf("%s: %d %q", path, resp.StatusCode, e.Error)
		}
	}
}

func TestFlow2CallbackErrors(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	tests := []struct {
		query   string
		errCode string
	}{
		{"error=access_denied&error_description=no&state=x", "access_denied"},
		{"error=access_denied", "invalid_request"}, // the state decides the flow: it comes first
		{"state=x", "invalid_request"},
		{"code=abc", "invalid_request"},
		{"code=abc&state=unknown", "invalid_request"},
	}
	for _, tc := range tests {
		e.Error = ""
		resp := getJSON(t, s.URL()+"/oauth/callback?"+tc.query, &e)
		if resp.StatusCode != 400 || e.Error != tc.errCode || e.Description == "" {
			t.Errorf("%s: %d %+v", tc.query, resp.StatusCode, e)
		}
	}
}

func TestFlow2Denied(t *testing.T) {
	s := startServer(t, Options{AutoDeny: true})
	// AutoDeny refuses every login, so the MCP token is forged (validly signed).
	cs := mustMCPSession(t, s, forgeAccessToken(t, s, DefaultUser.Subject, []string{MCPAudience}, time.Hour))
	var p provisionOut
	callTool(t, cs, ToolProvision, nil, &p)
	resp, err := browser.Get(*p.AuthorizationURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Request.URL.Path != "/oauth/callback" || resp.Request.URL.Query().Get("error") != "access_denied" ||
		!strings.Contains(string(body), "access_denied") {
		t.Fatalf("denied flow ended at %s with %d: %s", resp.Request.URL.Path, resp.StatusCode, body)
	}
	if _, ok := s.ProvisionedToken(DefaultUser.Subject); ok {
		t.Error("a token was stored although the user refused")
	}
	var st statusOut
	callTool(t, cs, ToolCheckStatus, map[string]any{"user_id": DefaultUser.Subject}, &st)
	if st.IsProvisioned {
		t.Error("provisioned although the user refused")
	}
}

func TestFlow2Revoke(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	cs := mustMCPSession(t, s, accessToken(t, s).AccessToken)
	var r revokeOut
	callTool(t, cs, ToolRevoke, nil, &r)
	if r.Success || r.Message == "" {
		t.Errorf("revoke with nothing stored = %+v", r)
	}

	var p provisionOut
	callTool(t, cs, ToolProvision, nil, &p)
	resp, err := browser.Get(*p.AuthorizationURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pt, ok := s.ProvisionedToken(DefaultUser.Subject)
	if !ok {
		t.Fatal("nothing provisioned")
	}
	callTool(t, cs, ToolRevoke, map[string]any{"user_id": DefaultUser.Subject}, &r)
	if !r.Success {
		t.Errorf("revoke = %+v", r)
	}
	if _, ok := s.ProvisionedToken(DefaultUser.Subject); ok {
		t.Error("the token is still stored after revoke")
	}
	if _, err := serverRefresh(t, s, pt.RefreshToken); err == nil {
		t.Error("the revoked token still works at the OP")
	} else if status, code := oauthErr(t, err); status != 400 || code != "invalid_grant" {
		t.Errorf("revoked token at the OP: %d %s", status, code)
	}
	var st statusOut
	callTool(t, cs, ToolCheckStatus, map[string]any{"user_id": DefaultUser.Subject}, &st)
	if st.IsProvisioned {
		t.Error("still provisioned after revoke")
	}
	if got := s.ToolCalls(ToolRevoke); got != 2 {
		t.Errorf("ToolCalls(revoke) = %d", got)
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
	cs := mustMCPSession(t, s, accessToken(t, s).AccessToken)
	var p provisionOut
	callTool(t, cs, ToolProvision, nil, &p)
	resp, err := browser.Get(*p.AuthorizationURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Nextcloud Access Provisioned") {
		t.Fatalf("%d: %s", resp.StatusCode, body)
	}
	if _, ok := s.ProvisionedToken(DefaultUser.Subject); ok {
		t.Error("stored a token although none arrived")
	}
}

func TestProvisionURLFault(t *testing.T) {
	for _, fault := range []string{"javascript:alert(1)", "https://evil.example/x"} {
		s := startServer(t, Options{AutoApprove: true, ProvisionURL: fault})
		cs := mustMCPSession(t, s, forgeAccessToken(t, s, DefaultUser.Subject, []string{MCPAudience}, time.Hour))
		var p provisionOut
		callTool(t, cs, ToolProvision, nil, &p)
		if p.AuthorizationURL == nil || *p.AuthorizationURL != fault {
			t.Errorf("authorization_url = %v, want %q", p.AuthorizationURL, fault)
		}
	}
}
