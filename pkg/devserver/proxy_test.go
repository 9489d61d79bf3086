package devserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
)

// gen2Config is an MCP client's configuration against the generation-2
// server's own endpoints.
func gen2Config(s *Server, clientID, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:    clientID,
		RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:   s.URL() + "/oauth/authorize",
			TokenURL:  s.URL() + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// gen2AuthorizeURL builds a request to the generation-2 /oauth/authorize.
func gen2AuthorizeURL(s *Server, clientID, redirectURI, state, challenge, scope string) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"state": {state}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	return s.URL() + "/oauth/authorize?" + q.Encode()
}

// gen2Login logs DefaultUser in through the proxy with a redirect-following
// client and returns the server's code and the verifier.
func gen2Login(t *testing.T, s *Server, lb *loopback, clientID, redirectURI, scope string) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkcePair()
	state := "st-" + oauth2.GenerateVerifier()[:10]
	resp, err := browser.Get(gen2AuthorizeURL(s, clientID, redirectURI, state, challenge, scope))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/callback" {
		t.Fatalf("login ended at %s with %d: %s", resp.Request.URL.Redacted(), resp.StatusCode, body)
	}
	q := lb.last(t)
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("loopback got %v", q)
	}
	return q.Get("code"), verifier
}

// registerAtServer registers a client at the generation-2 server.
func registerAtServer(t *testing.T, s *Server, md map[string]any) (int, http.Header, registered) {
	t.Helper()
	status, h, body := postJSON(t, s.URL()+"/oauth/register", md)
	var r registered
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("register: %d, not JSON: %s", status, body)
	}
	return status, h, r
}

func mustRegisterAtServer(t *testing.T, s *Server, redirectURI string) registered {
	t.Helper()
	status, _, r := registerAtServer(t, s, map[string]any{
		"redirect_uris": []string{redirectURI}, "client_name": "ncmcp test", "token_endpoint_auth_method": "none",
	})
	if status != http.StatusCreated || r.ClientID == "" {
		t.Fatalf("register: %d %+v", status, r)
	}
	return r
}

// tokenErr returns status, error code and description of a failed token request.
func tokenErr(t *testing.T, err error) (int, string, string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want an OAuth error response, got %v", err)
	}
	return re.Response.StatusCode, re.ErrorCode, re.ErrorDescription
}

func TestGen2Metadata(t *testing.T) {
	s := startServer(t, Options{Generation: 2, Scopes: "notes:read offline_access"})
	var prm struct {
		AuthorizationServers []string `json:"authorization_servers"`
		Resource             string   `json:"resource"`
	}
	getJSON(t, s.URL()+"/.well-known/oauth-protected-resource/mcp", &prm)
	if !slices.Equal(prm.AuthorizationServers, []string{s.URL()}) || prm.Resource != s.URL()+"/mcp" {
		t.Errorf("protected resource metadata = %+v", prm)
	}
	var md struct {
		Issuer            string   `json:"issuer"`
		AuthorizationEP   string   `json:"authorization_endpoint"`
		TokenEP           string   `json:"token_endpoint"`
		RegistrationEP    string   `json:"registration_endpoint"`
		UserinfoEP        string   `json:"userinfo_endpoint"`
		Challenge         []string `json:"code_challenge_methods_supported"`
		ResponseTypes     []string `json:"response_types_supported"`
		GrantTypes        []string `json:"grant_types_supported"`
		TokenAuthMethods  []string `json:"token_endpoint_auth_methods_supported"`
		ScopesSupported   []string `json:"scopes_supported"`
		RevocationEP      *string  `json:"revocation_endpoint"`
		JWKS              *string  `json:"jwks_uri"`
		RegistrationOther *string  `json:"registration_access_token"`
	}
	if resp := getJSON(t, s.URL()+"/.well-known/oauth-authorization-server", &md); resp.StatusCode != 200 {
		t.Fatalf("RFC 8414 metadata: %d", resp.StatusCode)
	}
	u := s.URL()
	if md.Issuer != u || md.AuthorizationEP != u+"/oauth/authorize" || md.TokenEP != u+"/oauth/token" ||
		md.RegistrationEP != u+"/oauth/register" || md.UserinfoEP != u+"/oauth/userinfo" ||
		!slices.Equal(md.Challenge, []string{"S256"}) || !slices.Equal(md.ResponseTypes, []string{"code"}) ||
		!slices.Equal(md.GrantTypes, []string{"authorization_code", "refresh_token"}) ||
		!slices.Equal(md.TokenAuthMethods, []string{"none", "client_secret_post"}) ||
		!slices.Equal(md.ScopesSupported, []string{"openid", "profile", "email", "offline_access", "notes:read"}) {
		t.Errorf("metadata = %+v", md)
	}
	if resp := getJSON(t, s.URL()+"/.well-known/openid-configuration", nil); resp.StatusCode != 404 {
		t.Errorf("OIDC discovery at the server: %d, want 404", resp.StatusCode)
	}
	// Generation 1 has none of it.
	g1 := startServer(t, Options{})
	if resp := getJSON(t, g1.URL()+"/.well-known/oauth-authorization-server", nil); resp.StatusCode != 404 {
		t.Errorf("generation 1 serves RFC 8414 metadata: %d", resp.StatusCode)
	}
	if _, err := Start(Options{Generation: 3}); err == nil {
		t.Error("Start accepted generation 3")
	}
}

func TestGen2Login(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	lb := newLoopback(t)
	reg := mustRegisterAtServer(t, s, lb.redirectURI())
	cfg := gen2Config(s, reg.ClientID, lb.redirectURI())

	// The redirect to the OP uses the server's client and PKCE, not the client's.
	_, challenge := pkcePair()
	resp := getJSON(t, gen2AuthorizeURL(s, reg.ClientID, lb.redirectURI(), "client-state", challenge, "openid offline_access"), nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if resp.StatusCode != 302 || q.Get("client_id") != ServerClientID || q.Get("redirect_uri") != s.URL()+"/oauth/callback" ||
		q.Get("code_challenge") == challenge || q.Get("code_challenge_method") != "S256" || q.Get("state") == "client-state" ||
		q.Get("scope") != "openid profile email mcp-server:api offline_access" {
		t.Fatalf("redirect to the OP: %d %s", resp.StatusCode, loc.Redacted())
	}

	code, verifier := gen2Login(t, s, lb, reg.ClientID, lb.redirectURI(), "openid offline_access")
	tok, err := cfg.Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange at the server: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || !strings.EqualFold(tok.TokenType, "bearer") || tok.Expiry.IsZero() ||
		tok.Extra("id_token") != nil || tok.Extra("scope") == nil {
		t.Fatalf("token response: %+v, id_token %v, scope %v", tok, tok.Extra("id_token") != nil, tok.Extra("scope"))
	}
	claims := jwtClaims(t, tok.AccessToken)
	if claims["iss"] != s.IssuerURL() || claims["sub"] != DefaultUser.Subject {
		t.Errorf("access token claims = %v", claims)
	}
	if mcpStatus(t, s, tok.AccessToken) != 200 {
		t.Error("/mcp refuses the proxied access token")
	}

	// The code works once.
	_, err = cfg.Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if status, ec, desc := tokenErr(t, err); status != 400 || ec != "invalid_grant" || desc != "Invalid or expired authorization code" {
		t.Errorf("code replay: %d %s %q", status, ec, desc)
	}

	// Refresh is forwarded to the OP and rotates.
	tok2, err := cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken || tok2.Extra("id_token") != nil {
		t.Fatal("refresh did not rotate")
	}
	_, err = cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if status, ec, desc := tokenErr(t, err); status != 400 || ec != "invalid_grant" || desc != "Token refresh failed" {
		t.Errorf("reused refresh token: %d %s %q", status, ec, desc)
	}
	if mcpStatus(t, s, tok2.AccessToken) != 200 {
		t.Error("/mcp refuses the refreshed access token")
	}

	if a, r := s.TokenRequests("authorization_code"), s.TokenRequests("refresh_token"); a != 2 || r != 2 {
		t.Errorf("TokenRequests: authorization_code %d, refresh_token %d; want 2, 2", a, r)
	}
	if a, r := s.IdPTokenRequests("authorization_code"), s.IdPTokenRequests("refresh_token"); a != 1 || r != 2 {
		t.Errorf("IdPTokenRequests: authorization_code %d, refresh_token %d; want 1, 2", a, r)
	}
}

func TestGen2NoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	lb := newLoopback(t)
	// A static client, any loopback port.
	_, challenge := pkcePair()
	resp := getJSON(t, gen2AuthorizeURL(s, PublicClientID, lb.redirectURI(), "st", challenge, ""), nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Query().Get("scope") != "openid profile email mcp-server:api" {
		t.Fatalf("redirect to the OP: %d scope %q", resp.StatusCode, loc.Query().Get("scope"))
	}
	code, verifier := gen2Login(t, s, lb, PublicClientID, lb.redirectURI(), "")
	tok, err := gen2Config(s, PublicClientID, lb.redirectURI()).Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Error("a refresh token without offline_access")
	}
}

func TestGen2WrongVerifierBurnsCode(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	lb := newLoopback(t)
	cfg := gen2Config(s, PublicClientID, lb.redirectURI())
	for _, wrong := range []string{oauth2.GenerateVerifier(), ""} {
		code, verifier := gen2Login(t, s, lb, PublicClientID, lb.redirectURI(), "")
		var opts []oauth2.AuthCodeOption
		if wrong != "" {
			opts = append(opts, oauth2.VerifierOption(wrong))
		}
		_, err := cfg.Exchange(testContext(t), code, opts...)
		if status, ec, desc := tokenErr(t, err); status != 400 || ec != "invalid_grant" || desc != "PKCE verification failed" {
			t.Errorf("wrong verifier %q: %d %s %q", wrong, status, ec, desc)
		}
		_, err = cfg.Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
		if status, ec, desc := tokenErr(t, err); status != 400 || ec != "invalid_grant" || desc != "Invalid or expired authorization code" {
			t.Errorf("right verifier after a wrong one: %d %s %q", status, ec, desc)
		}
	}
}

func TestGen2ExpiredCode(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true, CodeTTL: 100 * time.Millisecond})
	lb := newLoopback(t)
	code, verifier := gen2Login(t, s, lb, PublicClientID, lb.redirectURI(), "")
	time.Sleep(150 * time.Millisecond)
	_, err := gen2Config(s, PublicClientID, lb.redirectURI()).Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if status, ec, desc := tokenErr(t, err); status != 400 || ec != "invalid_grant" || desc != "Invalid or expired authorization code" {
		t.Errorf("expired code: %d %s %q", status, ec, desc)
	}
	if got := s.Options().CodeTTL; got != 100*time.Millisecond {
		t.Errorf("CodeTTL = %s", got)
	}
	if got := startServer(t, Options{Generation: 2}).Options(); got.CodeTTL != DefaultCodeTTL || got.RegisterRateLimit != DefaultRegisterRateLimit {
		t.Errorf("defaults: CodeTTL %s, RegisterRateLimit %d", got.CodeTTL, got.RegisterRateLimit)
	}
}

func TestGen2AuthorizeValidation(t *testing.T) {
	s := startServer(t, Options{Generation: 2})
	lb := newLoopback(t)
	reg := mustRegisterAtServer(t, s, lb.redirectURI())
	port := lb.srv.URL[strings.LastIndex(lb.srv.URL, ":")+1:]
	otherPort := strconv.Itoa((mustAtoi(t, port) % 60000) + 1024)
	_, challenge := pkcePair()
	tests := []struct {
		name, clientID, redirectURI, state, challenge, scope string
		status                                               int
		errCode                                              string
	}{
		{"registered, exact", reg.ClientID, lb.redirectURI(), "s", challenge, "", 302, ""},
		{"registered, other port", reg.ClientID, "http://127.0.0.1:" + otherPort + "/callback", "s", challenge, "", 400, "invalid_request"},
		{"registered, localhost for 127.0.0.1", reg.ClientID, "http://localhost:" + port + "/callback", "s", challenge, "", 400, "invalid_request"},
		{"registered, other path", reg.ClientID, "http://127.0.0.1:" + port + "/cb", "s", challenge, "", 400, "invalid_request"},
		{"static, any port", PublicClientID, "http://localhost:" + otherPort + "/anything", "s", challenge, "", 302, ""},
		{"static, port-less", PublicClientID, "http://127.0.0.1/callback", "s", challenge, "", 400, "invalid_request"},
		{"static, https", PublicClientID, "https://127.0.0.1:" + port + "/callback", "s", challenge, "", 400, "invalid_request"},
		{"unknown client", "nobody", lb.redirectURI(), "s", challenge, "", 401, "invalid_client"},
		{"no state", reg.ClientID, lb.redirectURI(), "", challenge, "", 400, "invalid_request"},
		{"no challenge", reg.ClientID, lb.redirectURI(), "s", "", "", 400, "invalid_request"},
		{"unknown scope", reg.ClientID, lb.redirectURI(), "s", challenge, "openid admin", 400, "invalid_scope"},
		{"supported scopes", reg.ClientID, lb.redirectURI(), "s", challenge, "openid profile email offline_access mcp-server:api", 302, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			resp, err := noRedirect.Get(gen2AuthorizeURL(s, tc.clientID, tc.redirectURI, tc.state, tc.challenge, tc.scope))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tc.status != 302 {
				_ = json.NewDecoder(resp.Body).Decode(&e)
			}
			if resp.StatusCode != tc.status || e.Error != tc.errCode {
				t.Fatalf("got %d %s (%s), want %d %s", resp.StatusCode, e.Error, e.Description, tc.status, tc.errCode)
			}
			if tc.errCode == "invalid_client" && e.Description != "Unknown client_id" {
				t.Errorf("description %q", e.Description)
			}
		})
	}
	// plain PKCE is refused.
	u := gen2AuthorizeURL(s, reg.ClientID, lb.redirectURI(), "s", challenge, "") + "&code_challenge_method=plain"
	if resp := getJSON(t, strings.Replace(u, "code_challenge_method=S256&", "", 1), nil); resp.StatusCode != 400 {
		t.Errorf("plain method: %d", resp.StatusCode)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGen2TokenRedirectURIAndClient(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	lb := newLoopback(t)

	// redirect_uri must be the one of the authorization request, exactly.
	code, verifier := gen2Login(t, s, lb, PublicClientID, lb.redirectURI(), "")
	other := strings.Replace(lb.redirectURI(), "127.0.0.1", "localhost", 1)
	_, err := gen2Config(s, PublicClientID, other).Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if status, ec, _ := tokenErr(t, err); status != 400 || ec != "invalid_grant" {
		t.Errorf("other redirect_uri: %d %s", status, ec)
	}
	_, err = gen2Config(s, PublicClientID, lb.redirectURI()).Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if _, _, desc := tokenErr(t, err); desc != "Invalid or expired authorization code" {
		t.Errorf("after a failed exchange: %q", desc)
	}

	// Another known client cannot redeem the code; an unknown one is refused first.
	code, verifier = gen2Login(t, s, lb, PublicClientID, lb.redirectURI(), "")
	_, err = gen2Config(s, ClaudeDesktopClientID, lb.redirectURI()).Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if status, ec, _ := tokenErr(t, err); status != 400 || ec != "invalid_grant" {
		t.Errorf("code of another client: %d %s", status, ec)
	}
	code, verifier = gen2Login(t, s, lb, PublicClientID, lb.redirectURI(), "")
	_, err = gen2Config(s, "nobody", lb.redirectURI()).Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if status, ec, desc := tokenErr(t, err); status != 401 || ec != "invalid_client" || desc != "Unknown client_id" {
		t.Errorf("unknown client: %d %s %q", status, ec, desc)
	}
	_, err = gen2Config(s, "nobody", lb.redirectURI()).TokenSource(testContext(t), &oauth2.Token{RefreshToken: "x"}).Token()
	if status, ec, desc := tokenErr(t, err); status != 401 || ec != "invalid_client" || desc != "Unknown client_id" {
		t.Errorf("refresh, unknown client: %d %s %q", status, ec, desc)
	}
	resp, err := http.PostForm(s.URL()+"/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {PublicClientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("password grant: %d", resp.StatusCode)
	}
}

func TestGen2Denied(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoDeny: true})
	lb := newLoopback(t)
	_, challenge := pkcePair()
	resp, err := browser.Get(gen2AuthorizeURL(s, PublicClientID, lb.redirectURI(), "client-state", challenge, ""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q := lb.last(t)
	if q.Get("error") != "access_denied" || q.Get("state") != "client-state" || q.Get("code") != "" {
		t.Errorf("loopback got %v", q)
	}
}

func TestGen2RestartServer(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	lb := newLoopback(t)
	reg := mustRegisterAtServer(t, s, lb.redirectURI())
	cfg := gen2Config(s, reg.ClientID, lb.redirectURI())
	code, verifier := gen2Login(t, s, lb, reg.ClientID, lb.redirectURI(), "offline_access")
	tok, err := cfg.Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	pending, verifier2 := gen2Login(t, s, lb, reg.ClientID, lb.redirectURI(), "")
	cs := mustMCPSession(t, s, tok.AccessToken)

	s.RestartServer()

	_, err = cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if status, ec, desc := tokenErr(t, err); status != 401 || ec != "invalid_client" || desc != "Unknown client_id" {
		t.Errorf("refresh with a registration from before the restart: %d %s %q", status, ec, desc)
	}
	_, challenge := pkcePair()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if resp := getJSON(t, gen2AuthorizeURL(s, reg.ClientID, lb.redirectURI(), "s", challenge, ""), &e); resp.StatusCode != 401 || e.Description != "Unknown client_id" {
		t.Errorf("authorize after restart: %d %+v", resp.StatusCode, e)
	}
	// Codes are gone too; static clients stay; OP tokens stay valid.
	_, err = gen2Config(s, PublicClientID, lb.redirectURI()).Exchange(testContext(t), pending, oauth2.VerifierOption(verifier2))
	if _, _, desc := tokenErr(t, err); desc != "Invalid or expired authorization code" {
		t.Errorf("code from before the restart: %q", desc)
	}
	if mcpStatus(t, s, tok.AccessToken) != 200 {
		t.Error("the OP's access token no longer works after a server restart")
	}
	tok2, err := gen2Config(s, PublicClientID, lb.redirectURI()).TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || tok2.AccessToken == "" {
		t.Errorf("refresh through a static client after restart: %v", err)
	}
	// MCP sessions are gone: a new one works.
	if _, err := cs.ListTools(testContext(t), nil); err == nil {
		t.Error("an MCP session survived the restart")
	}
	if _, err := mustMCPSession(t, s, tok.AccessToken).ListTools(testContext(t), nil); err != nil {
		t.Errorf("new MCP session after restart: %v", err)
	}
	// A new registration works.
	reg2 := mustRegisterAtServer(t, s, lb.redirectURI())
	code, verifier = gen2Login(t, s, lb, reg2.ClientID, lb.redirectURI(), "")
	if _, err := gen2Config(s, reg2.ClientID, lb.redirectURI()).Exchange(testContext(t), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("login with a new registration: %v", err)
	}
}

func TestGen2RegisterRateLimit(t *testing.T) {
	s := startServer(t, Options{Generation: 2, RegisterRateLimit: 3})
	md := map[string]any{"redirect_uris": []string{"http://127.0.0.1:41000/callback"}}
	for i := range 3 {
		if status, _, r := registerAtServer(t, s, md); status != 201 {
			t.Fatalf("registration %d: %d %+v", i+1, status, r)
		}
	}
	status, h, r := registerAtServer(t, s, md)
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	if status != 429 || err != nil || retry < 1 || retry > 60 || r.Error == "" || r.ErrorDescription == "" {
		t.Fatalf("fourth registration: %d Retry-After %q %+v", status, h.Get("Retry-After"), r)
	}
	s.RestartServer()
	if status, _, _ := registerAtServer(t, s, md); status != 201 {
		t.Errorf("after restart: %d", status)
	}
}

func TestGen2RegisterValidation(t *testing.T) {
	s := startServer(t, Options{Generation: 2})
	tests := []struct {
		name    string
		body    any
		status  int
		errCode string
	}{
		{"not JSON", "x", 400, "invalid_client_metadata"},
		{"no redirect_uris", map[string]any{}, 400, "invalid_redirect_uri"},
		{"port-less", map[string]any{"redirect_uris": []string{"http://127.0.0.1/callback"}}, 400, "invalid_redirect_uri"},
		{"IPv6", map[string]any{"redirect_uris": []string{"http://[::1]:4000/callback"}}, 400, "invalid_redirect_uri"},
		{"https", map[string]any{"redirect_uris": []string{"https://app.example/cb"}}, 400, "invalid_redirect_uri"},
		{"confidential", map[string]any{"redirect_uris": []string{"http://127.0.0.1:4000/callback"}, "token_endpoint_auth_method": "client_secret_post"}, 400, "registration_not_supported"},
		{"web", map[string]any{"redirect_uris": []string{"http://127.0.0.1:4000/callback"}, "application_type": "web"}, 400, "registration_not_supported"},
		{"grant", map[string]any{"redirect_uris": []string{"http://127.0.0.1:4000/callback"}, "grant_types": []string{"client_credentials"}}, 400, "invalid_client_metadata"},
		{"ok", map[string]any{"redirect_uris": []string{"http://localhost:4000/callback"}, "token_endpoint_auth_method": "none", "client_name": "n"}, 201, ""},
	}
	for _, tc := range tests {
		status, _, body := postJSON(t, s.URL()+"/oauth/register", tc.body)
		var r registered
		if err := json.Unmarshal(body, &r); err != nil {
			t.Errorf("%s: not JSON: %s", tc.name, body)
			continue
		}
		if status != tc.status || r.Error != tc.errCode {
			t.Errorf("%s: %d %s (%s), want %d %s", tc.name, status, r.Error, r.ErrorDescription, tc.status, tc.errCode)
		}
		if status == 201 && (r.ClientSecret != "" || r.TokenEndpointAuthMethod != "none" || r.ClientName != "n" ||
			!slices.Equal(r.RedirectURIs, []string{"http://localhost:4000/callback"}) || r.ClientIDIssuedAt == 0) {
			t.Errorf("%s: registration %+v", tc.name, r)
		}
	}
}

func TestGen2Userinfo(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	lb := newLoopback(t)
	code, verifier := gen2Login(t, s, lb, PublicClientID, lb.redirectURI(), "")
	tok, err := gen2Config(s, PublicClientID, lb.redirectURI()).Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/oauth/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui struct {
		Sub               string `json:"sub"`
		PreferredUsername string `json:"preferred_username"`
		Email             string `json:"email"`
		Name              string `json:"name"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ui)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || ui.Sub != DefaultUser.Subject || ui.PreferredUsername != DefaultUser.Username ||
		ui.Email != DefaultUser.Email || ui.Name != DefaultUser.Name {
		t.Errorf("userinfo: %d %+v %v", resp.StatusCode, ui, err)
	}
	for _, auth := range []string{"", "Bearer nope"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/oauth/userinfo", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("userinfo with %q: %d", auth, resp.StatusCode)
		}
	}
}

func TestGen2Flow2AndMCP(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	lb := newLoopback(t)
	code, verifier := gen2Login(t, s, lb, PublicClientID, lb.redirectURI(), "")
	tok, err := gen2Config(s, PublicClientID, lb.redirectURI()).Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	cs := mustMCPSession(t, s, tok.AccessToken)
	var p provisionOut
	callTool(t, cs, ToolProvision, nil, &p)
	resp, err := browser.Get(*p.AuthorizationURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Nextcloud Access Provisioned") {
		t.Fatalf("Flow 2 in generation 2: %d %s", resp.StatusCode, body)
	}
	var st statusOut
	callTool(t, cs, ToolCheckStatus, map[string]any{"user_id": DefaultUser.Subject}, &st)
	if !st.IsProvisioned {
		t.Error("not provisioned")
	}
}

func TestGen2NoOfflineAccess(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true, NoOfflineAccess: true})
	lb := newLoopback(t)
	// /oauth/callback still serves logins through the proxy.
	code, verifier := gen2Login(t, s, lb, PublicClientID, lb.redirectURI(), "")
	tok, err := gen2Config(s, PublicClientID, lb.redirectURI()).Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	res, err := mustMCPSession(t, s, tok.AccessToken).ListTools(testContext(t), &mcp.ListToolsParams{})
	if err != nil || len(res.Tools) != 0 {
		t.Errorf("tools: %v %v", res, err)
	}
	if resp := getJSON(t, s.URL()+"/oauth/authorize-nextcloud?state=x", nil); resp.StatusCode != 404 {
		t.Errorf("authorize-nextcloud: %d", resp.StatusCode)
	}
	if resp := getJSON(t, s.URL()+"/oauth/callback?code=c&state=unknown", nil); resp.StatusCode != 400 {
		t.Errorf("callback with an unknown state: %d", resp.StatusCode)
	}
}

func TestGen2ConfidentialStaticClient(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true, AllowedClients: []string{ConfidentialClientID}})
	lb := newLoopback(t)
	cfg := gen2Config(s, ConfidentialClientID, lb.redirectURI())
	for _, tc := range []struct {
		secret string
		style  oauth2.AuthStyle
		ok     bool
	}{
		{"", oauth2.AuthStyleInParams, false},
		{"wrong", oauth2.AuthStyleInParams, false},
		{ConfidentialClientSecret, oauth2.AuthStyleInParams, true},
		{ConfidentialClientSecret, oauth2.AuthStyleInHeader, true},
	} {
		code, verifier := gen2Login(t, s, lb, ConfidentialClientID, lb.redirectURI(), "offline_access")
		cfg.ClientSecret, cfg.Endpoint.AuthStyle = tc.secret, tc.style
		tok, err := cfg.Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
		if !tc.ok {
			if status, ec, _ := tokenErr(t, err); status != 401 || ec != "invalid_client" {
				t.Errorf("secret %q: %d %s", tc.secret, status, ec)
			}
			continue
		}
		if err != nil {
			t.Fatalf("secret %q, style %d: %v", tc.secret, tc.style, err)
		}
		if _, err := cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
			t.Errorf("refresh: %v", err)
		}
		cfg.ClientSecret = "wrong"
		_, err = cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if status, ec, _ := tokenErr(t, err); status != 401 || ec != "invalid_client" {
			t.Errorf("refresh with a wrong secret: %d %s", status, ec)
		}
	}
}

func TestRequestLogHidesSecretsGen2(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	s := startServer(t, Options{Generation: 2, AutoApprove: true, Logf: func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}})
	lb := newLoopback(t)
	atOP := registerAtOP(t, s, map[string]any{"redirect_uris": []string{lb.redirectURI()}})
	reg := mustRegisterAtServer(t, s, lb.redirectURI())
	code, verifier := gen2Login(t, s, lb, reg.ClientID, lb.redirectURI(), "offline_access")
	cfg := gen2Config(s, reg.ClientID, lb.redirectURI())
	tok, err := cfg.Exchange(testContext(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	cs := mustMCPSession(t, s, tok2.AccessToken)
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
	if status, _ := manage(t, http.MethodGet, atOP.RegistrationClientURI, atOP.RegistrationAccessToken); status != 200 {
		t.Fatalf("RFC 7592 read: %d", status)
	}
	_ = cs.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(lines) < 15 {
		t.Fatalf("only %d log lines: %q", len(lines), lines)
	}
	secrets := map[string]string{
		"server code": code, "verifier": verifier, "access token": tok.AccessToken, "refresh token": tok.RefreshToken,
		"rotated refresh token": tok2.RefreshToken, "provisioned refresh token": pt.RefreshToken,
		"server client secret": s.ServerClientSecret(), "registered secret": atOP.ClientSecret,
		"registration access token": atOP.RegistrationAccessToken, "query string": "?",
	}
	for _, l := range lines {
		for name, secret := range secrets {
			if secret != "" && strings.Contains(l, secret) {
				t.Errorf("log line %q contains the %s", l, name)
			}
		}
	}
}
