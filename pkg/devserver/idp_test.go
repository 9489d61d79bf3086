package devserver

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// rawToken posts a form to the OP's token endpoint and returns the status,
// headers and decoded JSON body.
func rawToken(t *testing.T, s *Server, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := noRedirect.PostForm(s.IssuerURL()+idpTokenPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, resp.Header, body
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mcpStatus is the status of an MCP initialize with the access token.
func mcpStatus(t *testing.T, s *Server, accessToken string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`))
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestIdPTokens: the OP's tokens are shaped like Dex's, with the audience
// rule of Dex's cross-client scope, and the quirks change what they say.
func TestIdPTokens(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		nonce      string // sent by the client to the server
		wantNonce  string // in both tokens
		wantAud    any    // of the access token
		wantIDAud  any    // of the ID token
		wantAzp    bool
		mcpAccepts bool
	}{
		{name: "default", nonce: "n-1", wantAud: []any{ServerClientID, PublicClientID}, wantIDAud: []any{ServerClientID, PublicClientID}, wantAzp: true, mcpAccepts: true},
		{name: "forward nonce", opts: Options{ForwardNonce: true}, nonce: "n-1", wantNonce: "n-1",
			wantAud: []any{ServerClientID, PublicClientID}, wantIDAud: []any{ServerClientID, PublicClientID}, wantAzp: true, mcpAccepts: true},
		{name: "nonce override", opts: Options{NonceOverride: "other"}, nonce: "n-1", wantNonce: "other",
			wantAud: []any{ServerClientID, PublicClientID}, wantIDAud: []any{ServerClientID, PublicClientID}, wantAzp: true, mcpAccepts: true},
		{name: "wrong ID token audience", opts: Options{IDTokenAudience: "someone-else"},
			wantAud: []any{ServerClientID, PublicClientID}, wantIDAud: "someone-else", wantAzp: true, mcpAccepts: true},
		{name: "no cross-client scope", opts: Options{Scopes: "offline_access"}, wantAud: PublicClientID, wantIDAud: PublicClientID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.AutoApprove = true
			s := startServer(t, tc.opts)
			lb := newLoopback(t)
			var extra url.Values
			if tc.nonce != "" {
				extra = url.Values{"nonce": {tc.nonce}}
			}
			code := login(t, s, lb, PublicClientID, "challenge-not-forwarded", extra)
			status, header, body := rawToken(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {lb.redirectURI()}, "client_id": {PublicClientID}})
			if status != 200 || header.Get("Cache-Control") != "no-store" || header.Get("Pragma") != "no-cache" {
				t.Fatalf("token response %d %v %v", status, header, body)
			}
			if got := keys(body); !slices.Equal(got, []string{"access_token", "expires_in", "id_token", "refresh_token", "token_type"}) {
				t.Errorf("token response keys %v", got)
			}
			if exp, _ := body["expires_in"].(float64); body["token_type"] != "bearer" || exp < 3598 || exp > 3600 {
				t.Errorf("token_type %v, expires_in %v", body["token_type"], body["expires_in"])
			}
			at, id := body["access_token"].(string), body["id_token"].(string)
			for _, raw := range []string{at, id} {
				if h := keys(jwtPart(t, raw, 0)); !slices.Equal(h, []string{"alg", "kid"}) {
					t.Errorf("JWT header %v, want alg and kid", h)
				}
			}
			want := []string{"at_hash", "aud", "auth_time", "email", "email_verified", "exp", "iat", "iss", "jti", "name", "preferred_username", "sid", "sub"}
			if tc.wantNonce != "" {
				want = append(want, "nonce")
			}
			wantAt := slices.Clone(want)
			if tc.wantAzp {
				wantAt = append(wantAt, "azp")
			}
			sort.Strings(wantAt)
			claims := jwtClaims(t, at)
			if got := keys(claims); !slices.Equal(got, wantAt) {
				t.Errorf("access token claims %v, want %v", got, wantAt)
			}
			if mustJSON(claims["aud"]) != mustJSON(tc.wantAud) || claims["iss"] != s.IssuerURL() || claims["sub"] != DefaultUser.Subject ||
				claims["email"] != DefaultUser.Email || claims["name"] != DefaultUser.Name || claims["preferred_username"] != DefaultUser.PreferredUsername {
				t.Errorf("access token claims %v", claims)
			}
			if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3600 {
				t.Errorf("exp - iat = %v", exp-iat)
			}
			idClaims := jwtClaims(t, id)
			if mustJSON(idClaims["aud"]) != mustJSON(tc.wantIDAud) || idClaims["c_hash"] == nil || idClaims["nonce"] != claims["nonce"] ||
				idClaims["sid"] != claims["sid"] || idClaims["auth_time"] != claims["auth_time"] {
				t.Errorf("ID token claims %v", idClaims)
			}
			if tc.wantNonce != "" && claims["nonce"] != tc.wantNonce {
				t.Errorf("nonce %v, want %q", claims["nonce"], tc.wantNonce)
			}

			// The ID token verifies with the OP's discovery and keys.
			ctx := testContext(t)
			provider, err := oidc.NewProvider(ctx, s.IssuerURL())
			if err != nil {
				t.Fatalf("discovery: %v", err)
			}
			audience := PublicClientID
			if s, ok := tc.wantIDAud.(string); ok {
				audience = s
			}
			if _, err := provider.Verifier(&oidc.Config{ClientID: audience}).Verify(ctx, id); err != nil {
				t.Errorf("ID token: %v", err)
			}
			// userinfo answers for the access token.
			ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: at, TokenType: "bearer"}))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if ui.Subject != DefaultUser.Subject || ui.Email != DefaultUser.Email {
				t.Errorf("userinfo = %+v", ui)
			}
			// The MCP endpoint takes the access token (if it names the
			// server's client), never the ID token.
			if got := mcpStatus(t, s, at); (got == 200) != tc.mcpAccepts {
				t.Errorf("/mcp with the access token: %d", got)
			}
			if got := mcpStatus(t, s, id); got != http.StatusUnauthorized {
				t.Errorf("/mcp with the ID token: %d", got)
			}
		})
	}
}

// TestRecordedUserTokens: RecordedUser's tokens carry no preferred_username.
func TestRecordedUserTokens(t *testing.T) {
	s := startServer(t, Options{Generation: 2})
	ctx := testContext(t)
	lb := newLoopback(t)
	verifier, challenge := pkcePair()
	resp, err := noRedirect.Get(authorizeURL(s, PublicClientID, lb.redirectURI(), "st", challenge, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loginPage, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	// The browser follows to the login page and signs in as kilgore.
	resp, err = browser.Get(loginPage.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = browser.PostForm(s.IssuerURL()+loginPath, url.Values{"id": {resp.Request.URL.Query().Get("id")},
		"username": {RecordedUser.Username}, "password": {RecordedUser.Password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tok, err := gen2Config(s, PublicClientID, lb.redirectURI()).Exchange(ctx, lb.last(t).Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	claims := jwtClaims(t, tok.AccessToken)
	if _, ok := claims["preferred_username"]; ok || claims["sub"] != RecordedUser.Subject || claims["aud"] != ServerClientID || claims["azp"] != nil {
		t.Errorf("claims %v", claims)
	}
}

// TestRefreshReuseInterval: refresh tokens rotate as Dex's do, with a 3 s
// reuse interval.
func TestRefreshReuseInterval(t *testing.T) {
	opts, clock := clockOptions(Options{AutoApprove: true})
	s := startServer(t, opts)
	lb := newLoopback(t)
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	tok, err := exchange(t, cfg, login(t, s, lb, PublicClientID, "x", nil), "")
	if err != nil {
		t.Fatal(err)
	}
	rt0 := tok.RefreshToken
	refresh := func(rt string) string {
		t.Helper()
		tok, err := refreshWith(t, cfg, rt)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		return tok.RefreshToken
	}
	refused := func(rt string) {
		t.Helper()
		_, err := refreshWith(t, cfg, rt)
		if err == nil {
			t.Fatal("refresh succeeded")
		}
		if status, code, desc := tokenErr(t, err); status != 400 || code != "invalid_request" ||
			desc != "Refresh token is invalid or has already been claimed by another client." {
			t.Fatalf("refused refresh: %d %s %q", status, code, desc)
		}
	}
	if got := refresh(rt0); got != rt0 {
		t.Fatal("a refresh within the reuse interval rotated the token")
	}
	clock.advance(DefaultRefreshReuseInterval + time.Second)
	rt1 := refresh(rt0)
	if rt1 == rt0 {
		t.Fatal("a refresh after the reuse interval did not rotate the token")
	}
	if got := refresh(rt0); got != rt1 {
		t.Fatal("the replaced token did not yield the new one within the reuse interval")
	}
	clock.advance(DefaultRefreshReuseInterval + time.Second)
	refused(rt0)
	refused("bogus")
	if rt2 := refresh(rt1); rt2 == rt1 {
		t.Fatal("the current token did not rotate")
	}
	if got := s.TokenRequests("refresh_token"); got != 6 {
		t.Errorf("TokenRequests(refresh_token) = %d, want 6", got)
	}
}

// TestOneRefreshTokenPerUserAndClient: a new login of the same user with
// the same client invalidates the earlier refresh token, as with Dex,
// unless MultipleRefreshTokens is set.
func TestOneRefreshTokenPerUserAndClient(t *testing.T) {
	for _, multiple := range []bool{false, true} {
		s := startServer(t, Options{AutoApprove: true, MultipleRefreshTokens: multiple})
		lb := newLoopback(t)
		cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
		first, err := exchange(t, cfg, login(t, s, lb, PublicClientID, "x", nil), "")
		if err != nil {
			t.Fatal(err)
		}
		other, err := exchange(t, oauthConfig(s, ClaudeDesktopClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams),
			login(t, s, lb, ClaudeDesktopClientID, "x", nil), "")
		if err != nil {
			t.Fatal(err)
		}
		second, err := exchange(t, cfg, login(t, s, lb, PublicClientID, "x", nil), "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = refreshWith(t, cfg, first.RefreshToken)
		if multiple != (err == nil) {
			t.Errorf("MultipleRefreshTokens %t: refresh with the first login's token: %v", multiple, err)
		}
		if _, err := refreshWith(t, cfg, second.RefreshToken); err != nil {
			t.Errorf("refresh with the newest login's token: %v", err)
		}
		otherCfg := oauthConfig(s, ClaudeDesktopClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
		if _, err := refreshWith(t, otherCfg, other.RefreshToken); err != nil {
			t.Errorf("another client's token died: %v", err)
		}
	}
}

// TestNoRefreshTokenWithoutOfflineAccess: a generation-1 server configured
// without offline_access gets no refresh token for its clients.
func TestNoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, Scopes: crossClientScopePrefix + ServerClientID})
	tok := tokens(t, s)
	if tok.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
	if got := s.IdPScopes(); !slices.Equal(got, []string{"openid", "profile", "email", crossClientScopePrefix + ServerClientID}) {
		t.Errorf("IdPScopes = %v", got)
	}
}

// TestIdPRefusesUnknownScopes: as Dex, the OP sends unknown scopes and a
// missing openid back to the client as invalid_scope.
func TestIdPRefusesUnknownScopes(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, Scopes: "offline_access notes.read"})
	lb := newLoopback(t)
	resp, err := browser.Get(authorizeURL(s, PublicClientID, lb.redirectURI(), "st-1", "x", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if q := lb.last(t); q.Get("error") != "invalid_scope" || q.Get("error_description") != `Unrecognized scope(s) ["notes.read"]` || q.Get("state") != "st-1" {
		t.Errorf("unknown scope: %v", q)
	}
	resp, err = browser.Get(s.IssuerURL() + idpAuthPath + "?" + url.Values{"client_id": {PublicClientID}, "redirect_uri": {lb.redirectURI()},
		"response_type": {"code"}, "scope": {"profile"}, "state": {"st-2"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if q := lb.last(t); q.Get("error") != "invalid_scope" || q.Get("error_description") != `Missing required scope(s) ["openid"].` || q.Get("state") != "st-2" {
		t.Errorf("no openid: %v", q)
	}
}

func TestDiscovery(t *testing.T) {
	s := startServer(t, Options{})
	var d map[string]any
	getJSON(t, s.IssuerURL()+"/.well-known/openid-configuration", &d)
	is := s.IssuerURL()
	for k, v := range map[string]string{
		"issuer": is, "authorization_endpoint": is + "/auth", "token_endpoint": is + "/token", "jwks_uri": is + "/keys",
		"userinfo_endpoint": is + "/userinfo", "revocation_endpoint": is + "/token/revoke", "registration_endpoint": is + "/register",
		"introspection_endpoint": is + "/token/introspect", "end_session_endpoint": is + "/logout",
	} {
		if d[k] != v {
			t.Errorf("%s = %v, want %s", k, d[k], v)
		}
	}
	for k, v := range map[string]string{
		"scopes_supported":                      `["openid","email","groups","profile","offline_access"]`,
		"code_challenge_methods_supported":      `["S256","plain"]`,
		"response_types_supported":              `["code"]`,
		"grant_types_supported":                 `["authorization_code","refresh_token"]`,
		"token_endpoint_auth_methods_supported": `["client_secret_basic","client_secret_post"]`,
	} {
		if got := mustJSON(d[k]); got != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}
	// The keys verify the tokens.
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	getJSON(t, is+"/keys", &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kid != s.store.key.id {
		t.Errorf("keys %+v", jwks)
	}
}

func TestRevocation(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	lb := newLoopback(t)
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	tok, err := exchange(t, cfg, login(t, s, lb, PublicClientID, "x", nil), "")
	if err != nil {
		t.Fatal(err)
	}
	revoke := func(token, hint string) int {
		t.Helper()
		resp, err := http.PostForm(s.IssuerURL()+idpRevokePath, url.Values{
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
		req, _ := http.NewRequest(http.MethodGet, s.IssuerURL()+idpUserinfoPath, nil)
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
	if _, err := refreshWith(t, cfg, tok.RefreshToken); err == nil {
		t.Fatal("a revoked refresh token still works")
	}
	// Revoking the refresh token revoked its access token too (RFC 7009, 2.1).
	if got := userinfo(); got == 200 {
		t.Error("userinfo accepts the access token of a revoked grant")
	}
	if got := mcpStatus(t, s, tok.AccessToken); got != http.StatusUnauthorized {
		t.Errorf("/mcp with a revoked access token: %d", got)
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
			code := login(t, s, lb, ConfidentialClientID, "x", nil)
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
	// The server's default registry does not know the confidential client.
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
	} else if status, code, desc := tokenErr(t, err); status != 400 || code != "invalid_request" || desc != "redirect_uri did not match URI from initial request." {
		t.Errorf("exchange with a different redirect_uri: %d %s %q", status, code, desc)
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

// TestConcurrentRefresh: concurrent refreshes with one token after its
// reuse interval all get the same new token: the first rotates it, the
// others use the replaced token within the new token's reuse interval.
func TestConcurrentRefresh(t *testing.T) {
	opts, clock := clockOptions(Options{AutoApprove: true})
	s := startServer(t, opts)
	lb := newLoopback(t)
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	tok, err := exchange(t, cfg, login(t, s, lb, PublicClientID, "x", nil), "")
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(DefaultRefreshReuseInterval + time.Second)
	const n = 8
	type result struct {
		rt  string
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			tok, err := refreshWith(t, cfg, tok.RefreshToken)
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{rt: tok.RefreshToken}
		}()
	}
	seen := map[string]bool{}
	for range n {
		r := <-results
		if r.err != nil {
			t.Errorf("concurrent refresh: %v", r.err)
			continue
		}
		seen[r.rt] = true
	}
	if len(seen) != 1 || seen[tok.RefreshToken] {
		t.Errorf("concurrent refreshes returned %d different tokens (the old one among them: %t), want one new token", len(seen), seen[tok.RefreshToken])
	}
	if got := s.TokenRequests("refresh_token"); got != n {
		t.Errorf("TokenRequests(refresh_token) = %d, want %d", got, n)
	}
}
