package devserver

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestPKCEModes(t *testing.T) {
	type step struct {
		code     int    // which code of the test to redeem
		verifier string // "none", "right" or "wrong"
		status   int    // 200, or the error status
		errCode  string
	}
	tests := []struct {
		mode  string
		codes int
		steps []step
	}{
		{PKCEReject, 1, []step{
			{0, "right", 400, "invalid_request"}, // code_verifier unexpectedly provided
			{0, "none", 200, ""},                 // the failed attempt left the code usable
			{0, "none", 400, "invalid_grant"},    // a redeemed code is gone
		}},
		{PKCEIgnore, 2, []step{
			{0, "right", 200, ""},
			{1, "none", 200, ""},
		}},
		{PKCERequire, 1, []step{
			{0, "none", 400, "invalid_request"}, // code_verifier required
			{0, "wrong", 400, "invalid_grant"},
			{0, "right", 200, ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			s := startServer(t, Options{AutoApprove: true, PKCE: tc.mode})
			lb := newLoopback(t)
			cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
			var codes, verifiers []string
			for range tc.codes {
				v, c := pkcePair()
				codes = append(codes, login(t, s, lb, PublicClientID, c, nil))
				verifiers = append(verifiers, v)
			}
			for i, st := range tc.steps {
				verifier := ""
				switch st.verifier {
				case "right":
					verifier = verifiers[st.code]
				case "wrong":
					verifier = oauth2.GenerateVerifier()
				}
				tok, err := exchange(t, cfg, codes[st.code], verifier)
				if st.status == 200 {
					if err != nil {
						t.Fatalf("step %d (%s verifier): %v", i, st.verifier, err)
					}
					if tok.AccessToken == "" || tok.Extra("id_token") == nil {
						t.Fatalf("step %d: incomplete token response", i)
					}
					continue
				}
				if err == nil {
					t.Fatalf("step %d (%s verifier): exchange succeeded, want %d %s", i, st.verifier, st.status, st.errCode)
				}
				status, code := oauthErr(t, err)
				if status != st.status || code != st.errCode {
					t.Fatalf("step %d (%s verifier): got %d %s, want %d %s", i, st.verifier, status, code, st.status, st.errCode)
				}
			}
			if got := s.TokenRequests("authorization_code"); got != len(tc.steps) {
				t.Errorf("TokenRequests(authorization_code) = %d, want %d", got, len(tc.steps))
			}
		})
	}
}

func TestRefreshRotation(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	lb := newLoopback(t)
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	_, challenge := pkcePair()
	tok, err := exchange(t, cfg, login(t, s, lb, PublicClientID, challenge, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token although offline_access was asked for")
	}
	refresh := func(rt string) (*oauth2.Token, error) {
		return cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: rt}).Token()
	}

	tok2, err := refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	if _, err := refresh(tok.RefreshToken); err == nil {
		t.Fatal("a used refresh token worked again")
	} else if status, code := oauthErr(t, err); status != 400 || code != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %s, want 400 invalid_grant", status, code)
	}
	tok3, err := refresh(tok2.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the new token: %v", err)
	}
	if got := s.TokenRequests("refresh_token"); got != 3 {
		t.Errorf("TokenRequests(refresh_token) = %d, want 3", got)
	}
	if got := s.TokenRequests("authorization_code"); got != 1 {
		t.Errorf("TokenRequests(authorization_code) = %d, want 1", got)
	}
	claims := jwtClaims(t, tok3.AccessToken)
	if claims["scope"] != "openid profile email mcp-server:api offline_access" {
		t.Errorf("refreshed access token scope = %v", claims["scope"])
	}
	if status := mcpStatus(t, s, tok3.AccessToken); status != 200 {
		t.Errorf("/mcp with a refreshed token: %d", status)
	}
}

func TestNoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, Scopes: "mcp-server:api"})
	lb := newLoopback(t)
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	_, challenge := pkcePair()
	tok, err := exchange(t, cfg, login(t, s, lb, PublicClientID, challenge, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
	if got := jwtClaims(t, tok.AccessToken)["scope"]; got != "openid profile email mcp-server:api" {
		t.Errorf("scope claim = %v", got)
	}
}

func mcpStatus(t *testing.T, s *Server, accessToken string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTokens(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		nonce     string // sent by the client to the stand-in
		wantNonce string // expected in the ID token
		wantAudOK bool
	}{
		{name: "default: nonce not forwarded", nonce: "n-1", wantAudOK: true},
		{name: "forward nonce", opts: Options{ForwardNonce: true}, nonce: "n-1", wantNonce: "n-1", wantAudOK: true},
		{name: "nonce override", opts: Options{NonceOverride: "other"}, nonce: "n-1", wantNonce: "other", wantAudOK: true},
		{name: "wrong ID token audience", opts: Options{IDTokenAudience: "someone-else"}, wantAudOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.AutoApprove = true
			s := startServer(t, tc.opts)
			lb := newLoopback(t)
			cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
			_, challenge := pkcePair()
			var extra url.Values
			if tc.nonce != "" {
				extra = url.Values{"nonce": {tc.nonce}}
			}
			tok, err := exchange(t, cfg, login(t, s, lb, PublicClientID, challenge, extra), "")
			if err != nil {
				t.Fatal(err)
			}
			rawID, _ := tok.Extra("id_token").(string)

			ctx := testContext(t)
			provider, err := oidc.NewProvider(ctx, s.IssuerURL())
			if err != nil {
				t.Fatalf("discovery: %v", err)
			}
			idt, err := provider.Verifier(&oidc.Config{ClientID: PublicClientID}).Verify(ctx, rawID)
			if !tc.wantAudOK {
				if err == nil || !strings.Contains(err.Error(), "audience") {
					t.Fatalf("Verify = %v, want an audience error", err)
				}
				// The signature and issuer are still right: only aud is off.
				idt, err = provider.Verifier(&oidc.Config{ClientID: tc.opts.IDTokenAudience}).Verify(ctx, rawID)
				if err != nil {
					t.Fatalf("Verify with the configured wrong audience: %v", err)
				}
			} else if err != nil {
				t.Fatalf("Verify: %v", err)
			} else if !slices.Equal(idt.Audience, []string{PublicClientID}) {
				t.Errorf("ID token aud = %v, want the client id alone", idt.Audience)
			}
			var claims struct {
				Sub               string `json:"sub"`
				PreferredUsername string `json:"preferred_username"`
				Email             string `json:"email"`
				Name              string `json:"name"`
				Nonce             string `json:"nonce"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if claims.Sub != DefaultUser.Subject || claims.PreferredUsername != DefaultUser.Username ||
				claims.Email != DefaultUser.Email || claims.Name != DefaultUser.Name {
				t.Errorf("ID token claims = %+v", claims)
			}
			if claims.Nonce != tc.wantNonce {
				t.Errorf("nonce = %q, want %q", claims.Nonce, tc.wantNonce)
			}

			// The access token is a JWT for the MCP server, whatever the ID token fault.
			at := jwtClaims(t, tok.AccessToken)
			aud, _ := at["aud"].([]any)
			if !slices.Contains(aud, any(MCPAudience)) || !slices.Contains(aud, any(PublicClientID)) {
				t.Errorf("access token aud = %v", at["aud"])
			}
			if at["iss"] != s.IssuerURL() || at["sub"] != DefaultUser.Subject || at["client_id"] != PublicClientID ||
				at["scope"] != "openid profile email mcp-server:api offline_access" {
				t.Errorf("access token claims = %v", at)
			}
			if status := mcpStatus(t, s, tok.AccessToken); status != 200 {
				t.Errorf("/mcp: %d", status)
			}

			// userinfo answers for the access token.
			ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if ui.Subject != DefaultUser.Subject || ui.Email != DefaultUser.Email {
				t.Errorf("userinfo = %+v", ui)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	s := startServer(t, Options{})
	var d struct {
		Issuer               string   `json:"issuer"`
		AuthorizationEP      string   `json:"authorization_endpoint"`
		TokenEP              string   `json:"token_endpoint"`
		RevocationEP         string   `json:"revocation_endpoint"`
		UserinfoEP           string   `json:"userinfo_endpoint"`
		JWKS                 string   `json:"jwks_uri"`
		GrantTypes           []string `json:"grant_types_supported"`
		CodeChallengeMethods []string `json:"code_challenge_methods_supported"`
		Scopes               []string `json:"scopes_supported"`
	}
	getJSON(t, s.IssuerURL()+"/.well-known/openid-configuration", &d)
	if d.Issuer != s.IssuerURL() || d.AuthorizationEP != s.IssuerURL()+"/authorize" ||
		d.TokenEP != s.IssuerURL()+"/oauth/token" || d.RevocationEP == "" || d.UserinfoEP == "" || d.JWKS == "" {
		t.Errorf("discovery = %+v", d)
	}
	if !slices.Contains(d.GrantTypes, "refresh_token") || !slices.Contains(d.CodeChallengeMethods, "S256") ||
		!slices.Contains(d.Scopes, "offline_access") || !slices.Contains(d.Scopes, "mcp-server:api") {
		t.Errorf("discovery = %+v", d)
	}
}

func TestRevocation(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	lb := newLoopback(t)
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	_, challenge := pkcePair()
	tok, err := exchange(t, cfg, login(t, s, lb, PublicClientID, challenge, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	revoke := func(token, hint string) int {
		t.Helper()
		resp, err := http.PostForm(s.IssuerURL()+"/revoke", url.Values{
			"token": {token}, "token_type_hint": {hint}, "client_id": {PublicClientID},
		})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	userinfo := func() int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.IssuerURL()+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := userinfo(); got != 200 {
		t.Fatalf("userinfo before revocation: %d", got)
	}
	if got := revoke(tok.RefreshToken, "refresh_token"); got != 200 {
		t.Fatalf("revoke refresh token: %d", got)
	}
	_, err = cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err == nil {
		t.Fatal("a revoked refresh token still works")
	}
	if status, code := oauthErr(t, err); status != 400 || code != "invalid_grant" {
		t.Fatalf("revoked refresh token: %d %s", status, code)
	}
	// Revoking the refresh token revoked its access token too (RFC 7009, 2.1).
	if got := userinfo(); got == 200 {
		t.Error("userinfo accepts the access token of a revoked grant")
	}
	if got := revoke("no-such-token", ""); got != 200 {
		t.Errorf("revoking an unknown token: %d, want 200", got)
	}
}

func TestConfidentialClient(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, AllowedClients: []string{ConfidentialClientID}})
	lb := newLoopback(t)
	tests := []struct {
		name    string
		secret  string
		style   oauth2.AuthStyle
		status  int
		errCode string
	}{
		{"client_secret_basic", ConfidentialClientSecret, oauth2.AuthStyleInHeader, 200, ""},
		{"client_secret_post", ConfidentialClientSecret, oauth2.AuthStyleInParams, 200, ""},
		{"wrong secret", "nope", oauth2.AuthStyleInHeader, 401, "invalid_client"},
		{"no secret", "", oauth2.AuthStyleInParams, 401, "invalid_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, challenge := pkcePair()
			code := login(t, s, lb, ConfidentialClientID, challenge, nil)
			tok, err := exchange(t, oauthConfig(s, ConfidentialClientID, tc.secret, lb.redirectURI(), tc.style), code, "")
			if tc.status == 200 {
				if err != nil {
					t.Fatal(err)
				}
				if tok.RefreshToken == "" {
					t.Error("no refresh token")
				}
				return
			}
			if err == nil {
				t.Fatal("exchange succeeded")
			}
			if status, code := oauthErr(t, err); status != tc.status || code != tc.errCode {
				t.Fatalf("got %d %s, want %d %s", status, code, tc.status, tc.errCode)
			}
		})
	}
	// The stand-in's default registry does not know the confidential client.
	if slices.Contains(DefaultAllowedClients, ConfidentialClientID) {
		t.Error("the confidential client is in the default registry")
	}
}

func TestNativeRedirects(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	lb := newLoopback(t)
	_, port, _ := net.SplitHostPort(lb.srv.Listener.Addr().String())

	// Any port on both loopback host names works for a native client.
	for _, redirectURI := range []string{
		"http://127.0.0.1:" + port + "/callback",
		"http://localhost:" + port + "/callback",
	} {
		code := loginAt(t, s, lb, redirectURI, PublicClientID, "x", nil)
		cfg := oauthConfig(s, PublicClientID, "", redirectURI, oauth2.AuthStyleInParams)
		if _, err := exchange(t, cfg, code, ""); err != nil {
			t.Errorf("%s: %v", redirectURI, err)
		}
	}

	// The path must match the registered one: the OP refuses to redirect.
	before := lb.count()
	resp, err := browser.Get(authorizeURL(s, PublicClientID, "http://127.0.0.1:"+port+"/elsewhere", "st", "x", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || lb.count() != before {
		t.Errorf("unregistered path: status %d, loopback hits %d -> %d", resp.StatusCode, before, lb.count())
	}

	// The code is bound to its redirect_uri.
	code := login(t, s, lb, PublicClientID, "x", nil)
	cfg := oauthConfig(s, PublicClientID, "", "http://localhost:"+port+"/callback", oauth2.AuthStyleInParams)
	if _, err := exchange(t, cfg, code, ""); err == nil {
		t.Error("exchange with a different redirect_uri succeeded")
	}
}

func TestStopIdP(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	lb := newLoopback(t)
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	tok, err := exchange(t, cfg, login(t, s, lb, PublicClientID, "x", nil), "")
	if err != nil {
		t.Fatal(err)
	}
	code := login(t, s, lb, PublicClientID, "x", nil)
	if err := s.StopIdP(); err != nil {
		t.Fatal(err)
	}
	_, err = exchange(t, cfg, code, "")
	var re *oauth2.RetrieveError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("exchange with the IdP down: %v, want a connection error", err)
	}
	if status := mcpStatus(t, s, tok.AccessToken); status != 200 {
		t.Errorf("/mcp after StopIdP: %d", status)
	}
	if err := s.StopIdP(); err != nil {
		t.Errorf("second StopIdP: %v", err)
	}
}

func TestConcurrentRefreshUsesTokenOnce(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	lb := newLoopback(t)
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	tok, err := exchange(t, cfg, login(t, s, lb, PublicClientID, "x", nil), "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	results := make(chan error, n)
	for range n {
		go func() {
			_, err := cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			results <- err
		}()
	}
	ok := 0
	for range n {
		if err := <-results; err == nil {
			ok++
		} else if status, code := oauthErr(t, err); status != 400 || code != "invalid_grant" {
			t.Errorf("losing refresh: %d %s", status, code)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent refreshes with one token succeeded, want 1", ok, n)
	}
	if got := s.TokenRequests("refresh_token"); got != n {
		t.Errorf("TokenRequests(refresh_token) = %d, want %d", got, n)
	}
}
