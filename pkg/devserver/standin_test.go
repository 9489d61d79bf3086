package devserver

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestAuthorizeValidation(t *testing.T) {
	s := startServer(t, Options{})
	const cb = "http://127.0.0.1:53682/callback"
	_, challenge := pkcePair()
	valid := url.Values{
		"response_type":         {"code"},
		"client_id":             {PublicClientID},
		"redirect_uri":          {cb},
		"state":                 {"xyz"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	with := func(changes map[string]string) url.Values {
		q := url.Values{}
		for k, v := range valid {
			q[k] = slices.Clone(v)
		}
		for k, v := range changes {
			if v == "<del>" {
				q.Del(k)
			} else {
				q.Set(k, v)
			}
		}
		return q
	}
	tests := []struct {
		name    string
		changes map[string]string
		status  int
		errCode string
	}{
		{"missing response_type", map[string]string{"response_type": "<del>"}, 400, "unsupported_response_type"},
		{"response_type token", map[string]string{"response_type": "token"}, 400, "unsupported_response_type"},
		{"missing redirect_uri", map[string]string{"redirect_uri": "<del>"}, 400, "invalid_request"},
		{"https redirect_uri", map[string]string{"redirect_uri": "https://127.0.0.1:53682/callback"}, 400, "invalid_request"},
		{"port-less loopback", map[string]string{"redirect_uri": "http://127.0.0.1/callback"}, 400, "invalid_request"},
		{"port-less localhost", map[string]string{"redirect_uri": "http://localhost/callback"}, 400, "invalid_request"},
		{"IPv6 loopback", map[string]string{"redirect_uri": "http://[::1]:53682/callback"}, 400, "invalid_request"},
		{"non-loopback host", map[string]string{"redirect_uri": "http://example.com:80/callback"}, 400, "invalid_request"},
		{"missing state", map[string]string{"state": "<del>"}, 400, "invalid_request"},
		{"missing code_challenge", map[string]string{"code_challenge": "<del>"}, 400, "invalid_request"},
		{"plain method", map[string]string{"code_challenge_method": "plain"}, 400, "invalid_request"},
		{"empty method", map[string]string{"code_challenge_method": ""}, 400, "invalid_request"},
		{"missing client_id", map[string]string{"client_id": "<del>"}, 400, "invalid_request"},
		{"unknown client", map[string]string{"client_id": "someone-else"}, 401, "unauthorized_client"},
		{"confidential client not in registry", map[string]string{"client_id": ConfidentialClientID}, 401, "unauthorized_client"},
		{"scope outside registry", map[string]string{"scope": "openid notes:read"}, 401, "unauthorized_client"},
		{"offline_access is outside registry", map[string]string{"scope": "openid offline_access"}, 401, "unauthorized_client"},
		// The server checks in a fixed order: the first failing rule answers.
		{"order: response_type before client", map[string]string{"response_type": "token", "client_id": "someone-else"}, 400, "unsupported_response_type"},
		{"order: state before client_id", map[string]string{"state": "<del>", "client_id": "<del>"}, 400, "invalid_request"},
		{"order: client before scope", map[string]string{"client_id": "someone-else", "scope": "bad"}, 401, "unauthorized_client"},
		{"valid", nil, 302, ""},
		{"valid, method defaults to S256", map[string]string{"code_challenge_method": "<del>"}, 302, ""},
		{"valid, localhost", map[string]string{"redirect_uri": "http://localhost:53682/callback"}, 302, ""},
		{"valid, registry scopes", map[string]string{"scope": "openid profile email mcp-server:api"}, 302, ""},
		{"valid, empty scope is not checked", map[string]string{"scope": ""}, 302, ""},
		{"valid, claude-desktop", map[string]string{"client_id": ClaudeDesktopClientID}, 302, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			u := s.URL() + "/oauth/authorize?" + with(tc.changes).Encode()
			var resp *http.Response
			if tc.status == 302 {
				resp = getJSON(t, u, nil)
			} else {
				resp = getJSON(t, u, &body)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 302 {
				if !strings.HasPrefix(resp.Header.Get("Location"), s.IssuerURL()+"/authorize?") {
					t.Fatalf("Location = %q, want the OP's authorize endpoint", resp.Header.Get("Location"))
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if body.Error != tc.errCode || body.Description == "" {
				t.Fatalf("body = %+v, want error %q with a description", body, tc.errCode)
			}
		})
	}
}

func TestAuthorizeRedirectParams(t *testing.T) {
	_, challenge := pkcePair()
	const cb = "http://127.0.0.1:53682/callback"
	tests := []struct {
		name  string
		opts  Options
		extra url.Values
		want  map[string]string // params beyond the common ones
	}{
		{name: "default forwards neither challenge nor nonce", extra: url.Values{"nonce": {"n-1"}, "scope": {"openid"}}},
		{name: "require forwards the challenge", opts: Options{PKCE: PKCERequire},
			want: map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"}},
		{name: "forward nonce", opts: Options{ForwardNonce: true}, extra: url.Values{"nonce": {"n-1"}},
			want: map[string]string{"nonce": "n-1"}},
		{name: "forward nonce without one", opts: Options{ForwardNonce: true}},
		{name: "nonce override", opts: Options{NonceOverride: "forced"}, extra: url.Values{"nonce": {"n-1"}},
			want: map[string]string{"nonce": "forced"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.opts)
			resp := getJSON(t, authorizeURL(s, PublicClientID, cb, "the-state", challenge, tc.extra), nil)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if base := loc.Scheme + "://" + loc.Host + loc.Path; base != s.IssuerURL()+"/authorize" {
				t.Errorf("redirect goes to %s", base)
			}
			want := map[string]string{
				"client_id":     PublicClientID,
				"redirect_uri":  cb,
				"response_type": "code",
				"scope":         "openid profile email mcp-server:api offline_access",
				"state":         "the-state",
				"prompt":        "consent",
				"resource":      s.URL() + "/mcp",
			}
			for k, v := range tc.want {
				want[k] = v
			}
			got := loc.Query()
			if len(got) != len(want) {
				t.Errorf("params = %v, want exactly %v", got, want)
			}
			for k, v := range want {
				if got.Get(k) != v || len(got[k]) != 1 {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	s := startServer(t, Options{Scopes: "notes:read offline_access"})
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		var md struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			ScopesSupported      []string `json:"scopes_supported"`
			BearerMethods        []string `json:"bearer_methods_supported"`
		}
		resp := getJSON(t, s.URL()+path, &md)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		if md.Resource != s.URL()+"/mcp" || !slices.Equal(md.AuthorizationServers, []string{s.IssuerURL()}) ||
			!slices.Equal(md.ScopesSupported, []string{"openid", "profile", "email", "notes:read", "offline_access"}) ||
			!slices.Equal(md.BearerMethods, []string{"header"}) {
			t.Errorf("%s: metadata = %+v", path, md)
		}
	}
	if s.URL() == s.IssuerURL() {
		t.Error("the issuer must differ from the server URL")
	}
	// The OP's discovery states the same issuer.
	var disc struct {
		Issuer string `json:"issuer"`
	}
	getJSON(t, s.IssuerURL()+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != s.IssuerURL() {
		t.Errorf("discovery issuer = %q, want %q", disc.Issuer, s.IssuerURL())
	}
}

func TestUnknownPaths(t *testing.T) {
	s := startServer(t, Options{})
	for _, path := range []string{"/", "/oauth/token", "/.well-known/oauth-authorization-server", "/oauth/register", "/mcp/x"} {
		resp := getJSON(t, s.URL()+path, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestMCPRequiresToken(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	wantChallenge := `Bearer error="invalid_token", resource_metadata="` + s.URL() + `/.well-known/oauth-protected-resource/mcp"`
	lb := newLoopback(t)
	_, challenge := pkcePair()
	code := login(t, s, lb, PublicClientID, challenge, nil)
	tok, err := exchange(t, oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams), code, "")
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idToken, _ := tok.Extra("id_token").(string)

	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"no header", "", 401},
		{"not bearer", "Basic YWxpY2U6YWxpY2U=", 401},
		{"garbage", "Bearer not-a-token", 401},
		{"ID token is not an access token for the server", "Bearer " + idToken, 401},
		{"expired access token", "Bearer " + forgeAccessToken(t, s, DefaultUser.Subject, []string{MCPAudience}, -time.Minute), 401},
		{"access token for another audience", "Bearer " + forgeAccessToken(t, s, DefaultUser.Subject, []string{"someone-else"}, time.Hour), 401},
		{"access token", "Bearer " + tok.AccessToken, 200},
		{"lower-case scheme", "bearer " + tok.AccessToken, 200},
		{"forged token that is still valid", "Bearer " + forgeAccessToken(t, s, DefaultUser.Subject, []string{MCPAudience}, time.Hour), 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A plain GET (no MCP session, no event stream) checks the token.
			req, _ := http.NewRequest(http.MethodGet, s.URL()+"/mcp", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if www := resp.Header.Get("WWW-Authenticate"); tc.status == 401 && www != wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", www, wantChallenge)
			}
		})
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, tc := range []Options{
		{Addr: "0.0.0.0:0"},
		{Addr: ":0"},
		{Addr: "192.0.2.1:0"},
		{Addr: "example.com:8080"},
		{Addr: "127.0.0.1"},
		{IdPAddr: "0.0.0.0:0"},
		{IdPAddr: "[::]:0"},
	} {
		s, err := Start(tc)
		if err == nil {
			s.Close()
			t.Errorf("Start(%+v) accepted a non-loopback address", tc)
		}
	}
	if _, err := Start(Options{PKCE: "sometimes"}); err == nil {
		t.Error("Start accepted an unknown PKCE mode")
	}
	s := startServer(t, Options{Addr: "localhost:0", IdPAddr: "127.0.0.1:0"})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasPrefix(s.IssuerURL(), "http://127.0.0.1:") {
		t.Errorf("URL %s, issuer %s", s.URL(), s.IssuerURL())
	}
}
