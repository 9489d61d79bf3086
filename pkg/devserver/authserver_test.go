package devserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// gen2Login logs DefaultUser in through the generation-2 server with a
// redirect-following client and returns the server's code and the
// verifier.
func gen2Login(t *testing.T, s *Server, lb *loopback, clientID, scope string) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkcePair()
	var extra url.Values
	if scope != "" {
		extra = url.Values{"scope": {scope}}
	}
	return login(t, s, lb, clientID, challenge, extra), verifier
}

func TestGen2Metadata(t *testing.T) {
	s := startServer(t, Options{Generation: 2})
	var md map[string]any
	if resp := getJSON(t, s.URL()+"/.well-known/oauth-authorization-server", &md); resp.StatusCode != 200 {
		t.Fatalf("RFC 8414 metadata: %d", resp.StatusCode)
	}
	u := s.URL()
	want := map[string]any{
		"issuer": u, "authorization_endpoint": u + "/oauth/authorize", "token_endpoint": u + "/oauth/token",
		"registration_endpoint": u + "/oauth/register", "response_types_supported": []any{"code"},
		"grant_types_supported": []any{"authorization_code", "refresh_token"}, "code_challenge_methods_supported": []any{"S256"},
		"token_endpoint_auth_methods_supported": []any{"client_secret_post", "client_secret_basic", "none"},
		"scopes_supported":                      []any{"email", "offline_access", "openid", "profile"},
	}
	if mustJSON(md) != mustJSON(want) {
		t.Errorf("metadata = %s\nwant %s", mustJSON(md), mustJSON(want))
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/oauth/userinfo"} {
		if resp := getJSON(t, s.URL()+path, nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	// Generation 1 has none of it.
	g1 := startServer(t, Options{})
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/oauth/token", "/oauth/register"} {
		if resp := getJSON(t, g1.URL()+path, nil); resp.StatusCode != 404 {
			t.Errorf("generation 1 serves %s: %d", path, resp.StatusCode)
		}
	}
	if _, err := Start(Options{Generation: 3}); err == nil {
		t.Error("Start accepted generation 3")
	}
}

func TestGen2Login(t *testing.T) {
	opts, clock := clockOptions(Options{Generation: 2, AutoApprove: true})
	s := startServer(t, opts)
	lb := newLoopback(t)
	cfg := gen2Config(s, PublicClientID, lb.redirectURI())

	// The redirect to the OP uses the server's client, state and nonce,
	// without the client's challenge; the scope is the union with the
	// client's, sorted.
	_, challenge := pkcePair()
	resp := getJSON(t, authorizeURL(s, PublicClientID, lb.redirectURI(), "client-state", challenge, url.Values{"scope": {"profile custom"}}), nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if resp.StatusCode != 302 || q.Get("client_id") != ServerClientID || q.Get("redirect_uri") != s.URL()+"/oauth/callback" ||
		q.Has("code_challenge") || q.Get("state") == "client-state" || len(q.Get("state")) != 43 || q.Get("nonce") == "" ||
		q.Get("scope") != "custom email offline_access openid profile" || q.Get("resource") != s.URL()+"/mcp" || q.Get("prompt") != "consent" {
		t.Fatalf("redirect to the OP: %d %s", resp.StatusCode, loc.Redacted())
	}

	code, verifier := gen2Login(t, s, lb, PublicClientID, "")
	if len(code) != 43 {
		t.Errorf("code of %d characters, want 43", len(code))
	}
	tok, err := cfg.Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange at the server: %v", err)
	}
	// The OP's answer relayed: the ID token and a refresh token (the server
	// always asks for offline_access), no scope.
	if tok.RefreshToken == "" || tok.TokenType != "bearer" || tok.Extra("id_token") == nil || tok.Extra("scope") != nil {
		t.Fatalf("token response: %+v", tok)
	}
	claims := jwtClaims(t, tok.AccessToken)
	if claims["iss"] != s.IssuerURL() || claims["sub"] != DefaultUser.Subject || claims["aud"] != ServerClientID || claims["nonce"] == nil {
		t.Errorf("access token claims = %v", claims)
	}
	if mcpStatus(t, s, tok.AccessToken) != 200 {
		t.Error("/mcp refuses the access token")
	}
	// The code works once.
	_, err = cfg.Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if status, ec, desc := tokenErr(t, err); status != 400 || ec != "invalid_grant" || desc != "Invalid or expired authorization code" {
		t.Errorf("code replay: %d %s %q", status, ec, desc)
	}
	// Refresh goes to the OP: the same token within the reuse interval,
	// rotated after it; the replaced token dies after another interval.
	same, err := refreshWith(t, cfg, tok.RefreshToken)
	if err != nil || same.RefreshToken != tok.RefreshToken {
		t.Fatalf("refresh within the reuse interval: %v", err)
	}
	clock.advance(DefaultRefreshReuseInterval + time.Second)
	rotated, err := refreshWith(t, gen2Config(s, "", lb.redirectURI()), tok.RefreshToken) // client_id is not checked
	if err != nil || rotated.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh after the reuse interval: %v", err)
	}
	clock.advance(DefaultRefreshReuseInterval + time.Second)
	_, err = refreshWith(t, cfg, tok.RefreshToken)
	if status, ec, desc := tokenErr(t, err); status != 400 || ec != "invalid_grant" || desc != "Token refresh failed" {
		t.Errorf("replaced refresh token: %d %s %q", status, ec, desc)
	}
	if a, r := s.TokenRequests("authorization_code"), s.TokenRequests("refresh_token"); a != 2 || r != 3 {
		t.Errorf("TokenRequests: authorization_code %d, refresh_token %d; want 2, 3", a, r)
	}
	if a, r := s.IdPTokenRequests("authorization_code"), s.IdPTokenRequests("refresh_token"); a != 1 || r != 3 {
		t.Errorf("IdPTokenRequests: authorization_code %d, refresh_token %d; want 1, 3", a, r)
	}
}

// TestGen2CodeChecks: a code is refused, and burnt, on any mismatch.
func TestGen2CodeChecks(t *testing.T) {
	opts, clock := clockOptions(Options{Generation: 2, AutoApprove: true, CodeTTL: 10 * time.Second})
	s := startServer(t, opts)
	lb := newLoopback(t)
	post := func(form url.Values) (int, string) {
		t.Helper()
		resp, err := noRedirect.PostForm(s.URL()+"/oauth/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct {
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Description
	}
	for _, tc := range []struct {
		name   string
		change func(url.Values)
		wait   time.Duration
		desc   string
	}{
		{"other client", func(f url.Values) { f.Set("client_id", ClaudeDesktopClientID) }, 0, "client_id mismatch"},
		{"other redirect_uri", func(f url.Values) { f.Set("redirect_uri", lb.redirectURI()+"/x") }, 0, "redirect_uri mismatch"},
		{"no verifier", func(f url.Values) { f.Del("code_verifier") }, 0, "PKCE verification failed"},
		{"expired", func(url.Values) {}, 11 * time.Second, "Authorization code has expired"},
	} {
		code, verifier := gen2Login(t, s, lb, PublicClientID, "")
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {lb.redirectURI()},
			"client_id": {PublicClientID}, "code_verifier": {verifier}}
		tc.change(form)
		clock.advance(tc.wait)
		if status, desc := post(form); status != 400 || desc != tc.desc {
			t.Errorf("%s: %d %q, want 400 %q", tc.name, status, desc, tc.desc)
		}
		form = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {lb.redirectURI()},
			"client_id": {PublicClientID}, "code_verifier": {verifier}}
		if status, desc := post(form); status != 400 || desc != "Invalid or expired authorization code" {
			t.Errorf("%s, then right: %d %q", tc.name, status, desc)
		}
	}
	if got := startServer(t, Options{Generation: 2}).Options(); got.CodeTTL != DefaultCodeTTL || got.RegisterRateLimit != DefaultRegisterRateLimit {
		t.Errorf("defaults: CodeTTL %s, RegisterRateLimit %d", got.CodeTTL, got.RegisterRateLimit)
	}
}

// TestGen2AuthorizeClients: the static clients take any loopback port on
// both host names.
func TestGen2AuthorizeClients(t *testing.T) {
	s := startServer(t, Options{Generation: 2})
	for _, tc := range []struct {
		clientID, redirectURI string
		status                int
		desc                  string
	}{
		{PublicClientID, "http://localhost:1234/anything", 302, ""},
		{ClaudeDesktopClientID, "http://127.0.0.1:1234/callback", 302, ""},
		{"nobody", "http://127.0.0.1:1234/callback", 401, "Unknown client_id: nobody"},
		{PublicClientID, "myapp://callback", 401, "Invalid redirect_uri for client " + PublicClientID},
	} {
		var e map[string]string
		resp, err := noRedirect.Get(authorizeURL(s, tc.clientID, tc.redirectURI, "s", "c", nil))
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.status || e["error_description"] != tc.desc {
			t.Errorf("%s %s: %d %v", tc.clientID, tc.redirectURI, resp.StatusCode, e)
		}
	}
}

// TestGen2Denied: the OP's error comes back to the client's redirect URI
// with the client's state.
func TestGen2Denied(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoDeny: true})
	lb := newLoopback(t)
	resp, err := browser.Get(authorizeURL(s, PublicClientID, lb.redirectURI(), "st-deny", "c", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if q := lb.last(t); q.Get("error") != "access_denied" || q.Get("state") != "st-deny" || q.Has("code") {
		t.Errorf("loopback got %v", q)
	}
}

// TestGen2RestartServer: a restarted server forgets logins in progress,
// codes and MCP sessions, and keeps what its database holds.
func TestGen2RestartServer(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	lb := newLoopback(t)
	tok := tokens(t, s)
	cs := mustMCPSession(t, s, tok.AccessToken)
	code, verifier := gen2Login(t, s, lb, PublicClientID, "")
	resp := getJSON(t, authorizeURL(s, PublicClientID, lb.redirectURI(), "st", "c", nil), nil)
	toIdP := resp.Header.Get("Location")
	if resp, _ := followFlow2(t, s.Flow2URL()); resp.StatusCode != 200 {
		t.Fatal("Flow 2")
	}
	if p := callTool(t, cs, ToolNCAuthProvision, nil); p["status"] != "login_required" {
		t.Fatalf("nc_auth_provision_access: %v", p)
	}

	s.RestartServer()

	if _, err := exchange(t, gen2Config(s, PublicClientID, lb.redirectURI()), code, verifier); err == nil {
		t.Error("a code survived the restart")
	}
	resp, err := browser.Get(toIdP) // the login in progress comes back to a server that forgot it
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "Unknown or expired session") {
		t.Errorf("callback of a forgotten login: %d %s", resp.StatusCode, body)
	}
	if _, err := cs.ListTools(testContext(t), nil); err == nil {
		t.Error("the MCP session survived the restart")
	}
	cs2 := mustMCPSession(t, s, tok.AccessToken)
	if st := callTool(t, cs2, ToolNCAuthCheck, nil); st["status"] != "not_initiated" {
		t.Errorf("the Login Flow in progress survived: %v", st)
	}
	if st := callTool(t, cs2, ToolCheckStatus, nil); st["is_provisioned"] != true || st["credential_type"] != CredentialRefreshToken {
		t.Errorf("the stored Flow 2 token is gone: %v", st)
	}
}

// TestGen2Register: registrations map to the first static client; the
// rate limit is a sliding minute of attempts with a JSON body.
func TestGen2Register(t *testing.T) {
	opts, clock := clockOptions(Options{Generation: 2, RegisterRateLimit: 2, AllowedClients: []string{ClaudeDesktopClientID, PublicClientID}})
	s := startServer(t, opts)
	uris := map[string]any{"redirect_uris": []string{"http://localhost:4444/cb", "http://127.0.0.1:5555/callback"}}
	status, header, body := postJSON(t, s.URL()+"/oauth/register", uris)
	var r map[string]any
	_ = json.Unmarshal(body, &r)
	if status != 201 || r["client_id"] != ClaudeDesktopClientID || r["client_name"] != "Claude Desktop" ||
		mustJSON(r["redirect_uris"]) != mustJSON(uris["redirect_uris"]) || r["client_secret"] != nil || header.Get("Cache-Control") != "" {
		t.Errorf("registration: %d %s", status, body)
	}
	if status, _, _ := postJSON(t, s.URL()+"/oauth/register", "not json"); status != 400 {
		t.Errorf("not JSON: %d", status) // and not counted
	}
	status, _, body = postJSON(t, s.URL()+"/oauth/register", map[string]any{"redirect_uris": []string{"http://localhost:4444/cb", "https://x.example/cb"}})
	if status != 400 || !strings.Contains(string(body), "registration_not_supported") {
		t.Errorf("mixed redirect URIs: %d %s", status, body)
	}
	status, header, body = postJSON(t, s.URL()+"/oauth/register", uris)
	if status != 429 || header.Get("Retry-After") != "60" ||
		string(body) != `{"error":"too_many_requests","error_description":"Rate limit exceeded for client registration"}` {
		t.Errorf("third attempt: %d %v %s", status, header, body)
	}
	clock.advance(registerRateWindow)
	if status, _, body := postJSON(t, s.URL()+"/oauth/register", uris); status != 201 {
		t.Errorf("after a minute: %d %s", status, body)
	}
	if slices.Contains(DefaultAllowedClients, ConfidentialClientID) || DefaultAllowedClients[0] != PublicClientID {
		t.Errorf("DefaultAllowedClients = %v", DefaultAllowedClients)
	}
}

// TestGen2RefreshWithIdPDown: an unreachable OP is no refusal of the token.
func TestGen2RefreshWithIdPDown(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	tok := tokens(t, s)
	if err := s.StopIdP(); err != nil {
		t.Fatal(err)
	}
	_, err := refreshWith(t, gen2Config(s, PublicClientID, "http://127.0.0.1:1/callback"), tok.RefreshToken)
	if status, ec, desc := tokenErr(t, err); status != http.StatusBadGateway || ec != "invalid_grant" || desc != "Token refresh failed" {
		t.Errorf("refresh with the IdP down: %d %s %q", status, ec, desc)
	}
}
