package discovery

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// idp serves OIDC discovery for its own URL, answering the well-known path
// with a redirect (as Nextcloud does with /index.php/...).
func idp(t *testing.T, redirect bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		self := "http://" + r.Host
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			if redirect {
				http.Redirect(w, r, "/index.php/.well-known/openid-configuration", http.StatusMovedPermanently)
				return
			}
			fallthrough
		case "/index.php/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer": self, "authorization_endpoint": self + "/authorize", "token_endpoint": self + "/token",
				"jwks_uri": self + "/keys", "code_challenge_methods_supported": []string{"S256"},
			})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// mcpServer serves protected-resource metadata naming issuer.
func mcpServer(t *testing.T, prm func(w http.ResponseWriter, r *http.Request, self string)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { prm(w, r, "http://"+r.Host) }))
	t.Cleanup(srv.Close)
	return srv
}

func TestDiscoverGeneration1(t *testing.T) {
	for _, redirect := range []bool{false, true} {
		op := idp(t, redirect)
		srv := mcpServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
			if r.URL.Path != "/.well-known/oauth-protected-resource/mcp" {
				http.NotFound(w, r)
				return
			}
			_ = json.NewEncoder(w).Encode(ProtectedResource{Resource: self + "/mcp", AuthorizationServers: []string{op.URL}})
		})
		res, err := Discover(context.Background(), http.DefaultClient, srv.URL+"/mcp/")
		if err != nil {
			t.Fatalf("redirect=%v: %v", redirect, err)
		}
		if res.Generation != Generation1 || res.Issuer != op.URL || res.Provider.TokenEndpoint != op.URL+"/token" || res.ServerURL != srv.URL {
			t.Fatalf("redirect=%v: %+v", redirect, res)
		}
		if !res.Provider.SupportsS256() {
			t.Fatal("S256 not seen")
		}
	}
}

func TestDiscoverFallsBackToPathWithoutMCP(t *testing.T) {
	op := idp(t, false)
	srv := mcpServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		if r.URL.Path != "/.well-known/oauth-protected-resource" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(ProtectedResource{AuthorizationServers: []string{op.URL}})
	})
	res, err := Discover(context.Background(), http.DefaultClient, srv.URL)
	if err != nil || res.ResourceURL != srv.URL+"/.well-known/oauth-protected-resource" {
		t.Fatalf("Discover = %+v, %v", res, err)
	}
}

func TestDiscoverGeneration2(t *testing.T) {
	srv := mcpServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource/mcp":
			_ = json.NewEncoder(w).Encode(ProtectedResource{AuthorizationServers: []string{self}})
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": self, "authorization_endpoint": self + "/oauth/authorize", "token_endpoint": self + "/oauth/token"})
		default:
			http.NotFound(w, r)
		}
	})
	res, err := Discover(context.Background(), http.DefaultClient, srv.URL)
	if err != nil || res.Generation != Generation2 || res.Provider.TokenEndpoint != srv.URL+"/oauth/token" {
		t.Fatalf("Discover = %+v, %v", res, err)
	}
}

func TestDiscoverBadMetadata(t *testing.T) {
	op := idp(t, false)
	tests := []struct {
		name string
		prm  func(w http.ResponseWriter, r *http.Request, self string)
		want string
	}{
		{"HTML instead of JSON", func(w http.ResponseWriter, r *http.Request, _ string) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>Nextcloud</html>"))
		}, "not JSON (Content-Type text/html)"},
		{"no authorization servers", func(w http.ResponseWriter, r *http.Request, _ string) {
			_, _ = w.Write([]byte(`{"resource":"x"}`))
		}, "names no authorization_servers"},
		{"not found anywhere", func(w http.ResponseWriter, r *http.Request, _ string) { http.NotFound(w, r) }, "HTTP 404"},
		{"server error", func(w http.ResponseWriter, r *http.Request, _ string) { http.Error(w, "boom", 500) }, "HTTP 500 boom"},
		{"issuer whose discovery names another issuer", func(w http.ResponseWriter, r *http.Request, _ string) {
			_ = json.NewEncoder(w).Encode(ProtectedResource{AuthorizationServers: []string{op.URL + "/other"}})
		}, "HTTP 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mcpServer(t, tt.prm)
			_, err := Discover(context.Background(), http.DefaultClient, srv.URL)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Discover error = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestNormalizeServerURL(t *testing.T) {
	good := map[string]string{
		"https://MCP.example.com/":        "https://mcp.example.com",
		"https://mcp.example.com/mcp":     "https://mcp.example.com/mcp",
		"http://127.0.0.1:8765/base/mcp/": "http://127.0.0.1:8765/base/mcp",
	}
	for in, want := range good {
		if got, err := NormalizeServerURL(in); err != nil || got != want {
			t.Errorf("NormalizeServerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "mcp.example.com", "ftp://x", "https://x/?a=b", "https://user:pw@x"} {
		if _, err := NormalizeServerURL(bad); err == nil {
			t.Errorf("NormalizeServerURL(%q) accepted", bad)
		}
	}
}

// TestInternalHostNames: a server behind a proxy whose metadata names
// internal hosts is reported, and the overrides make it usable.
func TestInternalHostNames(t *testing.T) {
	op := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		// The IdP believes it is http://app (its name inside the network).
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": "http://app", "authorization_endpoint": "http://app/authorize", "token_endpoint": "http://app/token",
			"jwks_uri": "http://app/keys", "revocation_endpoint": "https://elsewhere.example/revoke",
		})
	}))
	defer op.Close()
	srv := mcpServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		_ = json.NewEncoder(w).Encode(ProtectedResource{AuthorizationServers: []string{"http://app"}})
	})

	_, err := Discover(context.Background(), http.DefaultClient, srv.URL)
	if err == nil || !strings.Contains(err.Error(), `names the host "app"`) || !strings.Contains(err.Error(), "--issuer") {
		t.Fatalf("Discover = %v, want an error naming the internal host and the overrides", err)
	}

	// --issuer alone: metadata is found, but its endpoints are unreachable.
	_, err = DiscoverWith(context.Background(), http.DefaultClient, srv.URL, Options{Issuer: op.URL})
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("DiscoverWith(issuer) = %v, want an issuer mismatch", err)
	}
}

func TestPublicIssuerRewritesInternalEndpoints(t *testing.T) {
	p := Provider{Issuer: "http://app", AuthorizationEndpoint: "http://app/apps/oidc/authorize", TokenEndpoint: "http://app/apps/oidc/token?x=1",
		JWKSURI: "http://app/jwks", RevocationEndpoint: "https://other.example/revoke"}
	if err := p.rewriteHost("https://cloud.example.com"); err != nil {
		t.Fatal(err)
	}
	if p.AuthorizationEndpoint != "https://cloud.example.com/apps/oidc/authorize" || p.TokenEndpoint != "https://cloud.example.com/apps/oidc/token?x=1" ||
		p.JWKSURI != "https://cloud.example.com/jwks" || p.RevocationEndpoint != "https://other.example/revoke" || p.Issuer != "http://app" {
		t.Fatalf("rewritten: %+v", p)
	}
	if err := p.rewriteHost("cloud.example.com"); err == nil {
		t.Fatal("a public issuer without scheme was accepted")
	}
}

func TestInternalHostHint(t *testing.T) {
	cases := map[[2]string]bool{
		{"http://app/token", "https://mcp.example.com"}:              true,
		{"http://localhost:8000/token", "https://mcp.example.com"}:   true,
		{"http://localhost:8000/token", "http://127.0.0.1:8765"}:     false,
		{"https://idp.example.com/token", "https://mcp.example.com"}: false,
		{"http://10.0.0.5/token", "https://mcp.example.com"}:         false,
		{"http://127.0.0.1:9000/token", "https://mcp.example.com"}:   true,
	}
	for in, want := range cases {
		if got := internalHostHint(in[0], in[1]) != ""; got != want {
			t.Errorf("internalHostHint(%q, %q) = %v, want %v", in[0], in[1], got, want)
		}
	}
}

// TestDiscoverBasePath: the URL given may be the MCP endpoint ({base}/mcp)
// or the base of a server mounted under /mcp; discovery finds which.
func TestDiscoverBasePath(t *testing.T) {
	op := idp(t, false)
	for _, mount := range []string{"", "/mcp", "/apps/mcp"} {
		srv := mcpServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
			if r.URL.Path != mount+"/.well-known/oauth-protected-resource/mcp" {
				http.NotFound(w, r)
				return
			}
			_ = json.NewEncoder(w).Encode(ProtectedResource{Resource: self + mount + "/mcp", AuthorizationServers: []string{op.URL}})
		})
		base := srv.URL + mount
		for _, given := range []string{base, base + "/", base + "/mcp"} {
			res, err := Discover(context.Background(), http.DefaultClient, given)
			if err != nil || res.ServerURL != base {
				t.Errorf("mount %q, given %s: ServerURL %v, %v; want %s", mount, given, res, err, base)
			}
		}
	}
}
