package discovery

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzSelf in a fuzz input stands for the test server's URL.
const fuzzSelf = "{{self}}"

// fuzzMetadataServer answers the metadata paths with the current fuzz
// input. Its client reaches it whatever host a URL names, so that issuers
// such as http://app or https://idp.example.com are exercised too (https
// fails its handshake).
type fuzzMetadataServer struct {
	srv *httptest.Server
	hc  *http.Client

	mu sync.Mutex
	in fuzzMetadata
}

// fuzzMetadata is what the server answers.
type fuzzMetadata struct {
	prm, asm  []byte
	prmStatus int
	asmStatus int
	noMCPPath bool   // 404 at .../oauth-protected-resource/mcp
	mount     string // the server's base path: its metadata is under it
	other     int    // the status of every other path
	// passThrough makes /oauth/authorize answer as a generation-1 server's
	// pass-through route does to a request without parameters.
	passThrough bool
}

// fuzzFlags decodes the flags argument of FuzzDiscoverMetadata: bits 0-1
// the forced generation, 2 no metadata at .../mcp, 3-5 and 6-8 the status
// of the two documents, 9-10 the mount path, 11-12 what other paths answer
// (as the MCP endpoint's own subtree may), 13 the pass-through route.
func fuzzFlags(flags uint16, prm, asm []byte) (gen int, m fuzzMetadata) {
	mounts := []string{"", "", "/mcp", "/apps/mcp"}
	others := []int{http.StatusNotFound, http.StatusUnauthorized, http.StatusNotAcceptable, http.StatusOK}
	return int(flags&3) % 3, fuzzMetadata{
		prm: prm, asm: asm,
		prmStatus:   fuzzStatuses[int(flags>>3&7)%len(fuzzStatuses)],
		asmStatus:   fuzzStatuses[int(flags>>6&7)%len(fuzzStatuses)],
		noMCPPath:   flags&4 != 0,
		mount:       mounts[flags>>9&3],
		other:       others[flags>>11&3],
		passThrough: flags&(1<<13) != 0,
	}
}

var fuzzStatuses = []int{http.StatusOK, http.StatusOK, http.StatusOK, http.StatusNotFound, http.StatusInternalServerError, http.StatusForbidden, http.StatusNoContent}

func newFuzzMetadataServer(tb testing.TB) *fuzzMetadataServer {
	s := &fuzzMetadataServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.srv.Close)
	addr := s.srv.Listener.Addr().String()
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 4,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	s.hc = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return s
}

func (s *fuzzMetadataServer) set(m fuzzMetadata) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.in = m
}

func (s *fuzzMetadataServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	m := s.in
	s.mu.Unlock()
	var body []byte
	status := m.other
	if status == http.StatusOK {
		body = []byte("<!DOCTYPE html><html><body>Log in to Nextcloud</body></html>")
	}
	rest, mounted := strings.CutPrefix(r.URL.Path, m.mount)
	switch p := r.URL.Path; {
	case r.Method == http.MethodPost && p == m.mount+"/mcp":
		status, body = http.StatusUnauthorized, nil
	case mounted && rest == "/.well-known/oauth-protected-resource/mcp" && m.noMCPPath:
		status, body = http.StatusNotFound, nil
	case mounted && strings.HasPrefix(rest, "/.well-known/oauth-protected-resource"):
		body, status = m.prm, m.prmStatus
	case strings.Contains(p, "/.well-known/openid-configuration"), strings.Contains(p, "/.well-known/oauth-authorization-server"):
		body, status = m.asm, m.asmStatus
	case strings.HasSuffix(p, "/oauth/authorize") && m.passThrough:
		body, status = []byte(`{"error":"invalid_request","error_description":"missing client_id"}`), http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.ReplaceAll(body, []byte(fuzzSelf), []byte(s.srv.URL)))
}

func fuzzIsHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Realistic metadata documents; {{self}} is the test server.
var (
	fuzzGen2PRM     = `{"resource":"{{self}}/mcp","authorization_servers":["{{self}}"],"scopes_supported":["openid","notes.read"],"bearer_methods_supported":["header"]}`
	fuzzGen2ASM     = `{"issuer":"{{self}}","authorization_endpoint":"{{self}}/oauth/authorize","token_endpoint":"{{self}}/oauth/token","registration_endpoint":"{{self}}/oauth/register","revocation_endpoint":"{{self}}/oauth/revoke","code_challenge_methods_supported":["S256"],"token_endpoint_auth_methods_supported":["none","client_secret_post"]}`
	fuzzGen1PRM     = `{"resource":"{{self}}/mcp","authorization_servers":["{{self}}/index.php/apps/oidc"]}`
	fuzzGen1ASM     = `{"issuer":"{{self}}/index.php/apps/oidc","authorization_endpoint":"{{self}}/index.php/apps/oidc/authorize","token_endpoint":"{{self}}/index.php/apps/oidc/token","userinfo_endpoint":"{{self}}/index.php/apps/oidc/userinfo","jwks_uri":"{{self}}/index.php/apps/oidc/jwks","scopes_supported":["openid","profile","email","offline_access"],"id_token_signing_alg_values_supported":["RS256"]}`
	fuzzInternalPRM = `{"resource":"http://app/mcp","authorization_servers":["http://app:8080/realms/nextcloud"]}`
	fuzzInternalASM = `{"issuer":"http://app:8080/realms/nextcloud","authorization_endpoint":"http://app:8080/realms/nextcloud/protocol/openid-connect/auth","token_endpoint":"http://localhost:8080/realms/nextcloud/protocol/openid-connect/token","jwks_uri":"http://app:8080/realms/nextcloud/protocol/openid-connect/certs"}`
)

// FuzzDiscoverMetadata serves fuzzed protected-resource and
// authorization-server metadata to DiscoverWith.
func FuzzDiscoverMetadata(f *testing.F) {
	type seed struct {
		server, issuer, public string
		prm, asm               string
		flags                  uint16
	}
	// mounted moves a document's {{self}} URLs under a base path.
	mounted := func(doc, mount string) string { return strings.ReplaceAll(doc, fuzzSelf, fuzzSelf+mount) }
	for _, s := range []seed{
		{"{{self}}/mcp", "", "", fuzzGen2PRM, fuzzGen2ASM, 0},
		{"{{self}}/", "", "", fuzzGen2PRM, fuzzGen2ASM, 1 << 2}, // only the path without /mcp answers
		{"{{self}}", "", "", fuzzGen1PRM, fuzzGen1ASM, 1 << 13},
		{"{{self}}", "", "", fuzzGen1PRM, strings.Replace(fuzzGen1ASM, `"issuer":"{{self}}/index.php/apps/oidc"`, `"issuer":"{{self}}/index.php/apps/oidc/"`, 1), 0},
		{"{{self}}", "", "", fuzzGen1PRM, strings.Replace(fuzzGen1ASM, `"token_endpoint":"{{self}}`, `"token_endpoint":"javascript:`, 1), 0},
		{"{{self}}", "", "", fuzzGen1PRM, strings.Replace(fuzzGen1ASM, `"{{self}}/index.php/apps/oidc/authorize"`, `"/authorize"`, 1), 0},
		{"{{self}}", "", "", fuzzGen1PRM, `{"issuer":"https://evil.example.com","authorization_endpoint":"{{self}}/a","token_endpoint":"{{self}}/t"}`, 0},
		{"{{self}}", "", "", fuzzInternalPRM, fuzzInternalASM, 0},
		{"{{self}}", "http://app:8080/realms/nextcloud/", "{{self}}", fuzzInternalPRM, fuzzInternalASM, 0},
		{"{{self}}", "", "https://cloud.example.com", fuzzInternalPRM, fuzzInternalASM, 0},
		{"{{self}}", "{{self}}", "", fuzzGen1PRM, fuzzGen2ASM, 2}, // --issuer and --generation 2
		{"{{self}}", "", "", fuzzGen2PRM, fuzzGen1ASM, 1},         // --generation 1
		{"{{self}}", "", "", `{"resource":"x","authorization_servers":[]}`, fuzzGen2ASM, 0},
		{"{{self}}", "", "", `{"resource":"x","authorization_servers":[""]}`, fuzzGen2ASM, 0},
		{"{{self}}", "", "", `{"authorization_servers":"{{self}}"}`, fuzzGen2ASM, 0},
		{"{{self}}", "", "", `<!DOCTYPE html><html><body>Nextcloud</body></html>`, fuzzGen2ASM, 0},
		{"{{self}}", "", "", fuzzGen2PRM, `{"issuer":"{{self}}"}`, 0},
		{"{{self}}", "", "", fuzzGen2PRM, `null`, 0},
		{"{{self}}", "", "", `null`, fuzzGen2ASM, 0},
		{"{{self}}", "", "", fuzzGen2PRM, fuzzGen2ASM, 4 << 3},      // the metadata answers 500
		{"{{self}}", "", "", fuzzGen2PRM, fuzzGen2ASM, 3<<3 | 4<<6}, // 404 for the metadata, 500 for the authorization server
		{"https://cloud.example.com/mcp", "", "", fuzzGen2PRM, fuzzGen2ASM, 0},
		{"{{self}}/mcp?x=1", "", "", fuzzGen2PRM, fuzzGen2ASM, 0},
		{"ftp://{{self}}", "", "", fuzzGen2PRM, fuzzGen2ASM, 0},
		// Servers mounted under a base path, given by base or MCP endpoint.
		{"{{self}}/apps/mcp", "", "", mounted(fuzzGen2PRM, "/apps/mcp"), mounted(fuzzGen2ASM, "/apps/mcp"), 3 << 9},
		{"{{self}}/apps/mcp/mcp", "", "", mounted(fuzzGen2PRM, "/apps/mcp"), mounted(fuzzGen2ASM, "/apps/mcp"), 3 << 9},
		{"{{self}}/mcp/", "", "", mounted(fuzzGen1PRM, "/mcp"), fuzzGen1ASM, 2 << 9},
		{"{{self}}/mcp", "", "", fuzzGen1PRM, fuzzGen1ASM, 2 << 11}, // the MCP endpoint answers 406 below itself
		{"{{self}}/mcp", "", "", fuzzGen1PRM, fuzzGen1ASM, 3 << 11}, // a catch-all login page
	} {
		f.Add(s.server, s.issuer, s.public, []byte(s.prm), []byte(s.asm), s.flags)
	}
	ms := newFuzzMetadataServer(f)
	f.Fuzz(func(t *testing.T, serverURL, issuer, public string, prm, asm []byte, flags uint16) {
		self := ms.srv.URL
		serverURL = strings.ReplaceAll(serverURL, fuzzSelf, self)
		gen, m := fuzzFlags(flags, prm, asm)
		o := Options{
			Issuer:       strings.ReplaceAll(issuer, fuzzSelf, self),
			PublicIssuer: strings.ReplaceAll(public, fuzzSelf, self),
			Generation:   gen, // the CLI allows 0 (detect), 1 and 2
		}
		ms.set(m)

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := DiscoverWith(ctx, ms.hc, serverURL, o)
		if err != nil {
			if res != nil {
				t.Fatalf("DiscoverWith returned a result with the error %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if res == nil {
			t.Fatal("DiscoverWith returned neither result nor error")
		}
		// The URL given is the MCP endpoint, or a base URL below which
		// the endpoint is /mcp; the server's key is the endpoint without /mcp.
		given, nerr := NormalizeServerURL(serverURL)
		base := res.ServerURL
		if nerr != nil || (res.Endpoint != given && res.Endpoint != given+"/mcp") || base != ServerKey(res.Endpoint) {
			t.Fatalf("endpoint %q, ServerURL %q for %q (normalised %q, %v)", res.Endpoint, base, serverURL, given, nerr)
		}
		if n, err := NormalizeServerURL(base); err != nil || n != base {
			t.Fatalf("ServerURL %q is not normal (%q, %v)", base, n, err)
		}
		if res.Legacy != (res.ResourceURL == "") {
			t.Fatalf("Legacy %v with ResourceURL %q", res.Legacy, res.ResourceURL)
		}
		if !res.Legacy && !slices.Contains(resourceMetadataURLs(res.Endpoint, base), res.ResourceURL) {
			t.Fatalf("ResourceURL %q for the endpoint %q", res.ResourceURL, res.Endpoint)
		}
		if !res.Legacy && !resourceMatches(res.Resource.Resource, res.Endpoint) {
			t.Fatalf("went on with metadata for the resource %q at %q", res.Resource.Resource, res.Endpoint)
		}
		if res.Issuer == "" {
			t.Fatalf("success with an empty Issuer: %+v", res)
		}
		if res.Generation != GenerationOther && res.Generation != Generation1 && res.Generation != Generation2 {
			t.Fatalf("Generation %d", res.Generation)
		}
		if o.Generation == 0 && sameURL(res.Issuer, base) && res.Generation != Generation2 {
			t.Fatalf("Generation %d for a server that is its own authorization server", res.Generation)
		}
		if o.Generation != 0 && res.Generation != o.Generation {
			t.Fatalf("Generation %d, forced %d", res.Generation, o.Generation)
		}
		if !res.Legacy && strings.TrimRight(res.Provider.Issuer, "/") != strings.TrimRight(res.Issuer, "/") {
			t.Fatalf("provider issuer %q, expected %q", res.Provider.Issuer, res.Issuer)
		}
		for name, v := range map[string]string{"authorization_endpoint": res.Provider.AuthorizationEndpoint, "token_endpoint": res.Provider.TokenEndpoint} {
			if !fuzzIsHTTPURL(v) {
				t.Fatalf("success with %s %q, not an http(s) URL", name, v)
			}
		}
		if o.PublicIssuer != "" {
			// Every endpoint on the issuer's host now names the public host.
			iu, _ := url.Parse(res.Provider.Issuer)
			pu, _ := url.Parse(o.PublicIssuer)
			for _, e := range res.Provider.endpoints() {
				u, err := url.Parse(*e.url)
				if *e.url == "" || err != nil || iu == nil || strings.EqualFold(iu.Host, pu.Host) {
					continue
				}
				if strings.EqualFold(u.Host, iu.Host) {
					t.Fatalf("%s %q is still on the issuer's host %q after --public-issuer %q", e.name, *e.url, iu.Host, o.PublicIssuer)
				}
			}
		}
		for _, w := range res.Warnings {
			if w == "" {
				t.Fatal("empty warning")
			}
		}
		// "--server may name either" the base or the MCP endpoint: a server
		// discovered at its base is discovered at {base}/mcp too.
		if res.Endpoint != given+"/mcp" {
			return
		}
		res2, err := DiscoverWith(ctx, ms.hc, res.Endpoint, o)
		if err != nil || res2.ServerURL != base || res2.ResourceURL != res.ResourceURL {
			t.Fatalf("discovered at %s (%s) but not from %s/mcp: %+v, %v", base, res.ResourceURL, base, res2, err)
		}
	})
}

// TestFuzzMetadataServer checks that the harness of FuzzDiscoverMetadata
// serves working metadata, so that the fuzzer's success checks are reached.
func TestFuzzMetadataServer(t *testing.T) {
	ms := newFuzzMetadataServer(t)
	for _, tt := range []struct {
		prm, asm string
		gen      int
		pass     bool
	}{{fuzzGen1PRM, fuzzGen1ASM, Generation1, true}, {fuzzGen1PRM, fuzzGen1ASM, GenerationOther, false}, {fuzzGen2PRM, fuzzGen2ASM, Generation2, false}} {
		ms.set(fuzzMetadata{prm: []byte(tt.prm), asm: []byte(tt.asm), prmStatus: http.StatusOK, asmStatus: http.StatusOK, other: http.StatusNotFound, passThrough: tt.pass})
		res, err := Discover(context.Background(), ms.hc, ms.srv.URL+"/mcp")
		if err != nil || res.Generation != tt.gen {
			t.Fatalf("generation %d: %+v, %v", tt.gen, res, err)
		}
	}
	mount := func(doc string) []byte { return []byte(strings.ReplaceAll(doc, fuzzSelf, fuzzSelf+"/apps/mcp")) }
	ms.set(fuzzMetadata{prm: mount(fuzzGen2PRM), asm: mount(fuzzGen2ASM), prmStatus: http.StatusOK, asmStatus: http.StatusOK, mount: "/apps/mcp", other: http.StatusNotFound})
	for _, given := range []string{"/apps/mcp", "/apps/mcp/", "/apps/mcp/mcp"} {
		res, err := Discover(context.Background(), ms.hc, ms.srv.URL+given)
		if err != nil || res.ServerURL != ms.srv.URL+"/apps/mcp" || res.Generation != Generation2 {
			t.Fatalf("mounted, given %s: %+v, %v", given, res, err)
		}
	}
	ms.set(fuzzMetadata{prm: []byte(fuzzInternalPRM), asm: []byte(fuzzInternalASM), prmStatus: http.StatusOK, asmStatus: http.StatusOK, other: http.StatusNotFound})
	res, err := DiscoverWith(context.Background(), ms.hc, ms.srv.URL, Options{PublicIssuer: ms.srv.URL})
	if err != nil || !strings.HasPrefix(res.Provider.TokenEndpoint, "http://localhost:8080/") || !strings.HasPrefix(res.Provider.AuthorizationEndpoint, ms.srv.URL+"/") {
		t.Fatalf("internal hosts: %+v, %v", res, err)
	}
}

// FuzzNormalizeServerURL: normalising is idempotent and gives an http(s)
// URL without query or trailing slash.
func FuzzNormalizeServerURL(f *testing.F) {
	for _, s := range []string{
		"https://cloud.example.com", "https://cloud.example.com/", "https://cloud.example.com/mcp",
		"https://cloud.example.com/mcp/", "HTTPS://Cloud.Example.COM:8443/nextcloud/mcp", " http://127.0.0.1:8080/ ",
		"http://[::1]:8080/mcp", "https://cloud.example.com/index.php/apps/mcp", "https://cloud.example.com/a%2Fb/mcp",
		"https://user:pw@cloud.example.com", "https://cloud.example.com/?x=1", "https://cloud.example.com/#frag",
		"cloud.example.com", "ftp://cloud.example.com", "https://", "http://%41", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := NormalizeServerURL(raw)
		if err != nil {
			if n != "" {
				t.Fatalf("NormalizeServerURL(%q) = %q with error %v", raw, n, err)
			}
			return
		}
		u, perr := url.Parse(n)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			t.Fatalf("NormalizeServerURL(%q) = %q: not a plain http(s) URL (%v)", raw, n, perr)
		}
		n2, err := NormalizeServerURL(n)
		if err != nil {
			t.Fatalf("NormalizeServerURL(%q) = %q, which does not normalise again: %v", raw, n, err)
		}
		if n2 != n || strings.HasSuffix(u.Path, "/") {
			// Found by this fuzzer's property before 1e3fc59 (which keeps
			// /mcp now): ".../mcp/mcp" normalised to ".../mcp", and that
			// again to "...".
			t.Fatalf("not idempotent or not normal: NormalizeServerURL(%q) = %q, NormalizeServerURL(%q) = %q", raw, n, n, n2)
		}
		if !sameURL(raw, n) {
			t.Fatalf("sameURL(%q, %q) is false", raw, n)
		}
	})
}

// FuzzInternalHostHint: no panic, and a hint names the host it is about.
func FuzzInternalHostHint(f *testing.F) {
	for _, s := range [][2]string{
		{"http://app:8080/realms/nc", "https://cloud.example.com"},
		{"http://localhost:8080/token", "https://cloud.example.com"},
		{"http://localhost:8080/token", "http://localhost:8000"},
		{"http://127.0.0.2/token", "http://[::1]:8000"},
		{"http://[::1]/token", "https://cloud.example.com"},
		{"https://idp.example.com/token", "https://cloud.example.com"},
		{"http://10.0.0.5/token", "https://cloud.example.com"},
		{"/relative", "https://cloud.example.com"},
		{"http://[fe80::1%25eth0]/", ":"},
		{"%", "%"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, server string) {
		hint := internalHostHint(raw, server)
		if hint == "" {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			t.Fatalf("internalHostHint(%q, %q) = %q for a URL without host", raw, server, hint)
		}
		if !strings.Contains(hint, `"`+u.Hostname()+`"`) {
			t.Fatalf("internalHostHint(%q, %q) = %q does not name the host %q", raw, server, hint, u.Hostname())
		}
		if ip := net.ParseIP(u.Hostname()); ip != nil && !ip.IsLoopback() {
			t.Fatalf("internalHostHint(%q, %q) = %q for the routable address %s", raw, server, hint, ip)
		}
	})
}
