package devserver

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestAuthorizeValidation: generation 1's /oauth/authorize in cases beyond
// the recordings' (combinations, the order of the checks).
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
		{"port-less localhost with a colon", map[string]string{"redirect_uri": "http://localhost:/callback"}, 401, "unauthorized_client"},
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
				if !strings.HasPrefix(resp.Header.Get("Location"), s.IssuerURL()+idpAuthPath+"?") {
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
			if base := loc.Scheme + "://" + loc.Host + loc.Path; base != s.IssuerURL()+idpAuthPath {
				t.Errorf("redirect goes to %s", base)
			}
			want := map[string]string{
				"client_id":     PublicClientID,
				"redirect_uri":  cb,
				"response_type": "code",
				"scope":         "openid profile email offline_access audience:server:client_id:nextcloud-mcp-server",
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

// TestProtectedResourceMetadata: the same JSON at both URLs, naming the OP
// (generation 1) or the server (generation 2), or PRMIssuer.
func TestProtectedResourceMetadata(t *testing.T) {
	for _, tc := range []struct {
		opts   Options
		as     func(*Server) string
		scopes []string
	}{
		{Options{}, (*Server).IssuerURL, []string{"email", "openid", "profile"}},
		{Options{Generation: 2}, (*Server).URL, []string{"email", "offline_access", "openid", "profile"}},
		{Options{PRMIssuer: "http://keycloak:8080/realms/nc/"}, func(*Server) string { return "http://keycloak:8080/realms/nc" }, []string{"email", "openid", "profile"}},
	} {
		s := startServer(t, tc.opts)
		for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
			var md map[string]any
			resp := getJSON(t, s.URL()+path, &md)
			want := map[string]any{"resource": s.URL() + "/mcp", "authorization_servers": []string{tc.as(s)}, "scopes_supported": tc.scopes,
				"bearer_methods_supported": []string{"header"}, "resource_signing_alg_values_supported": []string{"RS256"}}
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || mustJSON(md) != mustJSON(want) {
				t.Errorf("%+v %s: %d %s", tc.opts, path, resp.StatusCode, mustJSON(md))
			}
		}
	}
}

// TestUnknownPaths: what neither generation serves is the framework's 404.
func TestUnknownPaths(t *testing.T) {
	for gen, paths := range map[int][]string{
		1: {"/", "/oauth/token", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/oauth/register", "/mcp/x", "/api/v1/status", "/index.php/login/v2/flow/x"},
		2: {"/", "/.well-known/openid-configuration", "/oauth/userinfo", "/mcp/x", "/settings/user/astrolabe"},
	} {
		s := startServer(t, Options{Generation: gen})
		for _, path := range paths {
			resp, err := noRedirect.Get(s.URL() + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || string(body) != "Not Found" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Errorf("generation %d %s: %d %q", gen, path, resp.StatusCode, body)
			}
		}
	}
}

// TestStatusEndpoint: generation 2's public /api/v1/status.
func TestStatusEndpoint(t *testing.T) {
	s := startServer(t, Options{Generation: 2})
	var st map[string]any
	resp := getJSON(t, s.URL()+"/api/v1/status", &st)
	if resp.StatusCode != 200 || st["version"] != "0.181.0-devserver" || st["auth_mode"] != "oauth" || st["vector_sync_enabled"] != false ||
		st["webhooks_enabled"] != false || mustJSON(st["supported_search_types"]) != "[]" || st["management_api_version"] != "1.0" ||
		st["uptime_seconds"] == nil || len(st) != 7 {
		t.Errorf("status: %d %v", resp.StatusCode, st)
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
	if _, err := Start(Options{NextcloudUser: "nobody"}); err == nil {
		t.Error("Start accepted an unknown NextcloudUser")
	}
	s := startServer(t, Options{Addr: "localhost:0", IdPAddr: "127.0.0.1:0"})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasPrefix(s.IssuerURL(), "http://127.0.0.1:") {
		t.Errorf("URL %s, issuer %s", s.URL(), s.IssuerURL())
	}
}
