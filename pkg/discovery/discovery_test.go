package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/wwwauth"
)

// fakeServer is an MCP server and authorization servers on httptest, whose
// routes a test sets per path; it records every request it gets.
type fakeServer struct {
	srv *httptest.Server

	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	seen   []string
}

func newFake(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{routes: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Method+" "+r.URL.Path)
		h := f.routes[r.Method+" "+r.URL.Path]
		if h == nil {
			h = f.routes[r.URL.Path]
		}
		f.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) URL() string { return f.srv.URL }

func (f *fakeServer) route(key string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[key] = h
}

func (f *fakeServer) json(key string, v any) {
	f.route(key, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	})
}

func (f *fakeServer) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

// challenge makes POST path answer 401 with a Bearer challenge.
func (f *fakeServer) challenge(path, params string) {
	f.route("POST "+path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", "Bearer "+params)
		w.WriteHeader(http.StatusUnauthorized)
	})
}

func asMetadata(issuer string) map[string]any {
	return map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
		"registration_endpoint": issuer + "/register", "code_challenge_methods_supported": []string{"S256"}}
}

// TestSpecDiscoveryOrder follows each metadata layout of the MCP
// authorization specification and checks what was asked for, in order:
// nothing before the document that is there, and no root document when the
// path-aware one answered.
func TestSpecDiscoveryOrder(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(mcp, as *fakeServer)
		issuer  func(as *fakeServer) string
		want    []string // requests to the MCP server, then to the AS
		wantAS  []string
		scope   string
		prmPath string
	}{
		{
			name: "challenge without resource_metadata: path-aware metadata, default AS metadata",
			setup: func(mcp, as *fakeServer) {
				mcp.challenge("/mcp", `error="invalid_token"`)
				mcp.json("/.well-known/oauth-protected-resource/mcp", ProtectedResource{Resource: mcp.URL() + "/mcp", AuthorizationServers: []string{as.URL()}, ScopesSupported: []string{"mcp:basic"}})
				as.json("/.well-known/oauth-authorization-server", asMetadata(as.URL()))
			},
			want:    []string{"POST /mcp", "GET /.well-known/oauth-protected-resource/mcp", "GET /oauth/authorize"},
			wantAS:  []string{"GET /.well-known/oauth-authorization-server"},
			prmPath: "/.well-known/oauth-protected-resource/mcp",
		},
		{
			name: "resource_metadata at a custom place, scope in the challenge, OIDC discovery only",
			setup: func(mcp, as *fakeServer) {
				mcp.challenge("/mcp", `resource_metadata="`+mcp.URL()+`/custom/metadata/location.json", scope="mcp:read mcp:write"`)
				mcp.json("/custom/metadata/location.json", ProtectedResource{Resource: mcp.URL() + "/mcp", AuthorizationServers: []string{as.URL()}})
				as.json("/.well-known/openid-configuration", asMetadata(as.URL()))
			},
			want:    []string{"POST /mcp", "GET /custom/metadata/location.json", "GET /oauth/authorize"},
			wantAS:  []string{"GET /.well-known/oauth-authorization-server", "GET /.well-known/openid-configuration"},
			scope:   "mcp:read mcp:write",
			prmPath: "/custom/metadata/location.json",
		},
		{
			name: "issuer with a path: path insertion, never the root",
			setup: func(mcp, as *fakeServer) {
				mcp.challenge("/mcp", "")
				mcp.json("/.well-known/oauth-protected-resource/mcp", ProtectedResource{Resource: mcp.URL(), AuthorizationServers: []string{as.URL() + "/tenant1"}})
				as.json("/.well-known/oauth-authorization-server/tenant1", asMetadata(as.URL()+"/tenant1"))
			},
			issuer:  func(as *fakeServer) string { return as.URL() + "/tenant1" },
			want:    []string{"POST /mcp", "GET /.well-known/oauth-protected-resource/mcp", "GET /oauth/authorize"},
			wantAS:  []string{"GET /.well-known/oauth-authorization-server/tenant1"},
			prmPath: "/.well-known/oauth-protected-resource/mcp",
		},
		{
			name: "issuer with a path: OIDC with the path appended, as Keycloak and Dex serve it",
			setup: func(mcp, as *fakeServer) {
				mcp.challenge("/mcp", "")
				mcp.json("/.well-known/oauth-protected-resource", ProtectedResource{Resource: mcp.URL() + "/mcp", AuthorizationServers: []string{as.URL() + "/realms/x"}})
				as.json("/realms/x/.well-known/openid-configuration", asMetadata(as.URL()+"/realms/x"))
			},
			issuer: func(as *fakeServer) string { return as.URL() + "/realms/x" },
			want:   []string{"POST /mcp", "GET /.well-known/oauth-protected-resource/mcp", "GET /.well-known/oauth-protected-resource", "GET /oauth/authorize"},
			wantAS: []string{"GET /.well-known/oauth-authorization-server/realms/x", "GET /.well-known/openid-configuration/realms/x",
				"GET /realms/x/.well-known/openid-configuration"},
			prmPath: "/.well-known/oauth-protected-resource",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mcp, as := newFake(t), newFake(t)
			tt.setup(mcp, as)
			res, err := Discover(context.Background(), http.DefaultClient, mcp.URL()+"/mcp")
			if err != nil {
				t.Fatal(err)
			}
			issuer := as.URL()
			if tt.issuer != nil {
				issuer = tt.issuer(as)
			}
			if res.Endpoint != mcp.URL()+"/mcp" || res.ServerURL != mcp.URL() || res.Issuer != issuer || res.Legacy ||
				res.ResourceURL != mcp.URL()+tt.prmPath || res.Generation != GenerationOther || res.Provider.TokenEndpoint != issuer+"/token" {
				t.Fatalf("result %+v", res)
			}
			if res.Challenge.Scope != tt.scope {
				t.Errorf("challenge scope %q, want %q", res.Challenge.Scope, tt.scope)
			}
			if got := mcp.requests(); strings.Join(got, ", ") != strings.Join(tt.want, ", ") {
				t.Errorf("MCP server got\n  %v\nwant\n  %v", got, tt.want)
			}
			if got := as.requests(); strings.Join(got, ", ") != strings.Join(tt.wantAS, ", ") {
				t.Errorf("authorization server got\n  %v\nwant\n  %v", got, tt.wantAS)
			}
			if len(res.Steps) == 0 || !res.Steps[0].Used {
				t.Errorf("steps %+v", res.Steps)
			}
		})
	}
}

// TestLegacyServers: without protected-resource metadata the server's own
// origin is the authorization server (MCP 2025-03-26): its metadata where
// it has some (whatever issuer it names), else the default endpoints.
func TestLegacyServers(t *testing.T) {
	mcp := newFake(t)
	mcp.challenge("/mcp", "")
	res, err := Discover(context.Background(), http.DefaultClient, mcp.URL()+"/mcp")
	if err != nil || !res.Legacy || res.Issuer != mcp.URL() || res.Provider.AuthorizationEndpoint != mcp.URL()+"/authorize" ||
		res.Provider.TokenEndpoint != mcp.URL()+"/token" || res.Provider.RegistrationEndpoint != mcp.URL()+"/register" || res.ResourceIndicator() != "" {
		t.Fatalf("no metadata at all: %+v, %v", res, err)
	}
	md := asMetadata(mcp.URL() + "/oauth")
	md["authorization_endpoint"] = mcp.URL() + "/oauth/authorize"
	mcp.json("/.well-known/oauth-authorization-server", md)
	res, err = Discover(context.Background(), http.DefaultClient, mcp.URL()+"/mcp")
	if err != nil || !res.Legacy || res.Provider.AuthorizationEndpoint != mcp.URL()+"/oauth/authorize" {
		t.Fatalf("metadata with its own issuer: %+v, %v", res, err)
	}
}

// TestResourceMismatch: metadata for another resource is not used (RFC 9728
// section 3.3); a base-URL resource for the endpoint is fine.
func TestResourceMismatch(t *testing.T) {
	mcp, as := newFake(t), newFake(t)
	as.json("/.well-known/oauth-authorization-server", asMetadata(as.URL()))
	mcp.challenge("/mcp", "")
	mcp.json("/.well-known/oauth-protected-resource/mcp", ProtectedResource{Resource: "https://evil.example.com/mcp", AuthorizationServers: []string{as.URL()}})
	_, err := Discover(context.Background(), http.DefaultClient, mcp.URL()+"/mcp")
	var rm *ResourceMismatchError
	if !errorsAs(err, &rm) || rm.Resource != "https://evil.example.com/mcp" {
		t.Fatalf("err = %v, want a ResourceMismatchError", err)
	}
	for _, r := range as.requests() {
		t.Errorf("the authorization server was asked %s", r)
	}
	res, err := DiscoverWith(context.Background(), http.DefaultClient, mcp.URL()+"/mcp", Options{Issuer: as.URL()})
	if err != nil || res.ResourceIndicator() != mcp.URL()+"/mcp" || len(res.Warnings) == 0 {
		t.Fatalf("with --issuer: %+v, %v", res, err)
	}
	cases := map[string]bool{
		mcp.URL() + "/mcp": true, mcp.URL(): true, mcp.URL() + "/": true, mcp.URL() + "/mc": false,
		mcp.URL() + "/mcp/x": false, strings.Replace(mcp.URL(), "http:", "https:", 1) + "/mcp": false, "": false, "/mcp": false,
	}
	for resource, want := range cases {
		if got := resourceMatches(resource, mcp.URL()+"/mcp"); got != want {
			t.Errorf("resourceMatches(%q) = %v, want %v", resource, got, want)
		}
	}
}

func errorsAs(err error, target **ResourceMismatchError) bool {
	for err != nil {
		if e, ok := err.(*ResourceMismatchError); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// TestNextcloudGenerations: a generation-2 server is its own authorization
// server; a generation-1 server names its IdP and has the pass-through
// route /oauth/authorize, whose OAuth error to a bare request says so; the
// IdP's discovery may redirect on its own origin, as Nextcloud's does.
func TestNextcloudGenerations(t *testing.T) {
	gen2 := newFake(t)
	gen2.challenge("/mcp", `error="invalid_token", error_description="Authentication required", resource_metadata="`+gen2.URL()+`/.well-known/oauth-protected-resource"`)
	gen2.json("/.well-known/oauth-protected-resource", ProtectedResource{Resource: gen2.URL() + "/mcp", AuthorizationServers: []string{gen2.URL()}})
	gen2.json("/.well-known/oauth-authorization-server", asMetadata(gen2.URL()))
	res, err := Discover(context.Background(), http.DefaultClient, gen2.URL())
	if err != nil || res.Generation != Generation2 || res.ServerURL != gen2.URL() || res.Endpoint != gen2.URL()+"/mcp" || res.ResourceIndicator() != gen2.URL()+"/mcp" {
		t.Fatalf("generation 2: %+v, %v", res, err)
	}

	idp, gen1 := newFake(t), newFake(t)
	idp.route("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/index.php/.well-known/openid-configuration", http.StatusMovedPermanently)
	})
	idp.json("/index.php/.well-known/openid-configuration", asMetadata(idp.URL()))
	gen1.challenge("/mcp", `resource_metadata="`+gen1.URL()+`/.well-known/oauth-protected-resource"`)
	gen1.json("/.well-known/oauth-protected-resource", ProtectedResource{Resource: gen1.URL() + "/mcp", AuthorizationServers: []string{idp.URL()}})
	gen1.route("GET /oauth/authorize", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"redirect_uri is required"}`))
	})
	res, err = Discover(context.Background(), http.DefaultClient, gen1.URL()+"/mcp/")
	if err != nil || res.Generation != Generation1 || res.Issuer != idp.URL() || res.ServerURL != gen1.URL() || res.Provider.TokenEndpoint != idp.URL()+"/token" {
		t.Fatalf("generation 1: %+v, %v", res, err)
	}
	res, err = DiscoverWith(context.Background(), http.DefaultClient, gen1.URL(), Options{Generation: Generation2, Issuer: gen1.URL()})
	if err == nil || res != nil {
		t.Fatalf("a forced generation 2 with an issuer without metadata: %+v", res)
	}
}

// TestRedirectsStayHome: a metadata document reached through a redirect to
// another origin is refused, whatever it says.
func TestRedirectsStayHome(t *testing.T) {
	mcp, evil := newFake(t), newFake(t)
	evil.json("/prm", ProtectedResource{Resource: mcp.URL() + "/mcp", AuthorizationServers: []string{evil.URL()}})
	mcp.challenge("/mcp", "")
	mcp.route("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.URL()+"/prm", http.StatusFound)
	})
	_, err := Discover(context.Background(), http.DefaultClient, mcp.URL())
	if err == nil || !strings.Contains(err.Error(), "refusing a redirect") {
		t.Fatalf("err = %v", err)
	}
}

// TestDiscoverBasePath: the URL given may be the MCP endpoint ({base}/mcp)
// or the base of a server mounted under a path, whose metadata may be
// under the same path.
func TestDiscoverBasePath(t *testing.T) {
	as := newFake(t)
	as.json("/.well-known/oauth-authorization-server", asMetadata(as.URL()))
	for _, mount := range []string{"", "/mcp", "/apps/mcp"} {
		mcp := newFake(t)
		mcp.challenge(mount+"/mcp", "")
		mcp.json(mount+"/.well-known/oauth-protected-resource/mcp", ProtectedResource{Resource: mcp.URL() + mount + "/mcp", AuthorizationServers: []string{as.URL()}})
		base := mcp.URL() + mount
		for _, given := range []string{base, base + "/", base + "/mcp"} {
			res, err := Discover(context.Background(), http.DefaultClient, given)
			if err != nil || res.ServerURL != base || res.Endpoint != base+"/mcp" {
				t.Errorf("mount %q, given %s: %+v, %v; want the server %s", mount, given, res, err, base)
			}
		}
	}
}

func TestDiscoverBadMetadata(t *testing.T) {
	tests := []struct {
		name string
		prm  http.HandlerFunc
		want string
	}{
		{"HTML instead of JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>Nextcloud</html>"))
		}, "not JSON (Content-Type text/html)"},
		{"no authorization servers", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"resource":"x"}`))
		}, "names no authorization_servers"},
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, "HTTP 500 boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mcp := newFake(t)
			mcp.challenge("/mcp", `resource_metadata="`+mcp.URL()+`/prm"`)
			mcp.route("/prm", tt.prm)
			_, err := Discover(context.Background(), http.DefaultClient, mcp.URL())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Discover error = %v, want it to say %q", err, tt.want)
			}
		})
	}
	mcp := newFake(t)
	mcp.challenge("/mcp", `resource_metadata="`+mcp.URL()+`/prm"`)
	if _, err := Discover(context.Background(), http.DefaultClient, mcp.URL()); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("a named resource_metadata that is not there: %v", err)
	}
	mcp.json("/prm", ProtectedResource{Resource: mcp.URL() + "/mcp", AuthorizationServers: []string{mcp.URL() + "/other"}})
	if _, err := Discover(context.Background(), http.DefaultClient, mcp.URL()); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("an authorization server without metadata: %v", err)
	}
	if _, err := Discover(context.Background(), http.DefaultClient, "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("a server that is not running: %v", err)
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
	for in, want := range map[string]string{"https://x/mcp": "https://x", "https://x/a/mcp": "https://x/a", "https://x/v1": "https://x/v1", "https://x": "https://x"} {
		if got := ServerKey(in); got != want {
			t.Errorf("ServerKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestInternalHostNames: a server behind a proxy whose metadata names
// internal hosts is reported, and the overrides make it usable.
func TestInternalHostNames(t *testing.T) {
	op := newFake(t)
	// The IdP believes it is http://app (its name inside the network).
	op.json("/.well-known/openid-configuration", map[string]any{
		"issuer": "http://app", "authorization_endpoint": "http://app/authorize", "token_endpoint": "http://app/token",
		"jwks_uri": "http://app/keys", "revocation_endpoint": "https://elsewhere.example/revoke",
	})
	mcp := newFake(t)
	mcp.challenge("/mcp", "")
	mcp.json("/.well-known/oauth-protected-resource/mcp", ProtectedResource{Resource: mcp.URL() + "/mcp", AuthorizationServers: []string{"http://app"}})

	_, err := Discover(context.Background(), http.DefaultClient, mcp.URL())
	if err == nil || !strings.Contains(err.Error(), `names the host "app"`) || !strings.Contains(err.Error(), "--issuer") {
		t.Fatalf("Discover = %v, want an error naming the internal host and the overrides", err)
	}
	// --issuer alone: metadata is found, but it names another issuer.
	_, err = DiscoverWith(context.Background(), http.DefaultClient, mcp.URL(), Options{Issuer: op.URL()})
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

func TestMetadataURLs(t *testing.T) {
	if got := metadataURLs("https://as.example.com/"); strings.Join(got, " ") != "https://as.example.com/.well-known/oauth-authorization-server https://as.example.com/.well-known/openid-configuration" {
		t.Errorf("no path: %v", got)
	}
	if got := metadataURLs("https://as.example.com/t/1"); len(got) != 3 || got[2] != "https://as.example.com/t/1/.well-known/openid-configuration" || got[0] != "https://as.example.com/.well-known/oauth-authorization-server/t/1" {
		t.Errorf("path: %v", got)
	}
	_ = httptest.NewRecorder
}

// TestScopes: the scope selection of the MCP authorization specification
// (challenge, then scopes_supported, then none) with offline_access only
// where the authorization server lists it.
func TestScopes(t *testing.T) {
	prm := func(s ...string) ProtectedResource {
		return ProtectedResource{Resource: "r", AuthorizationServers: []string{"a"}, ScopesSupported: s}
	}
	for _, tt := range []struct {
		name       string
		res        Result
		challenged []string
		want       string
	}{
		{"challenge first", Result{Challenge: wwwauth.Challenge{Scope: "mcp:basic"}, Resource: prm("mcp:basic", "mcp:write")}, nil, "mcp:basic"},
		{"then scopes_supported", Result{Resource: prm("mcp:basic", "mcp:read", "mcp:write")}, nil, "mcp:basic mcp:read mcp:write"},
		{"else none", Result{Resource: prm()}, nil, ""},
		{"step-up", Result{Challenge: wwwauth.Challenge{Scope: "mcp:basic"}}, []string{"mcp:basic", "mcp:write"}, "mcp:basic mcp:write"},
		{"offline_access where listed", Result{Resource: prm("mcp:basic"), Provider: Provider{ScopesSupported: []string{"mcp:basic", "offline_access"}}}, nil, "mcp:basic offline_access"},
		{"no offline_access where not listed", Result{Resource: prm("mcp:basic", "offline_access"), Provider: Provider{ScopesSupported: []string{"mcp:basic"}}}, nil, "mcp:basic"},
		{"legacy servers name none", Result{Legacy: true, Resource: prm("x")}, nil, ""},
		{"Nextcloud generation 2", Result{Resource: prm("email", "offline_access", "openid", "profile", "notes.read"),
			Provider: Provider{ScopesSupported: []string{"email", "offline_access", "openid", "profile", "notes.read"}}}, nil, "email offline_access openid profile notes.read"},
		{"identity where the AS is an OpenID provider", Result{Resource: prm("mcp:tools"), Provider: Provider{ScopesSupported: []string{"openid", "email", "offline_access"}}}, nil, "mcp:tools openid email offline_access"},
	} {
		if got := strings.Join(tt.res.Scopes(tt.challenged), " "); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestNotAnMCPServer: a plain file server (404 and 501 pages in HTML, no
// metadata) is reported as not an MCP server, naming what was tried,
// instead of being taken for an MCP server of the 2025-03-26 revision.
func TestNotAnMCPServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprint(w, "<html>Unsupported method ('POST')</html>")
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<html>File not found</html>")
	}))
	defer srv.Close()
	_, err := Discover(context.Background(), srv.Client(), srv.URL)
	var nm *NotMCPError
	if !errors.As(err, &nm) {
		t.Fatalf("Discover = %v, want NotMCPError", err)
	}
	for _, want := range []string{"not an MCP server", "POST " + srv.URL + "/mcp answered HTTP 501 (text/html)", "POST " + srv.URL + " answered HTTP 501"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}
