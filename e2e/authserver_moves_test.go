package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// handAS is an authorization server with dynamic registration, written by
// hand because the dev server has one authorization server for good and
// does not send RFC 9207's iss. It registers client NAME-client and
// records each client id it is shown (at /authorize, and at /token in the
// body or Basic authentication); iss is what its redirects carry as iss.
type handAS struct {
	*httptest.Server
	name string
	iss  atomic.Pointer[string]
	mu   sync.Mutex
	seen []string
}

func (as *handAS) shown() []string {
	as.mu.Lock()
	defer as.mu.Unlock()
	return append([]string(nil), as.seen...)
}

func newHandAS(t *testing.T, name string) *handAS {
	t.Helper()
	as := &handAS{name: name}
	saw := func(id string) {
		as.mu.Lock()
		as.seen = append(as.seen, id)
		as.mu.Unlock()
	}
	// Unstarted until as.Server is set: its handler reads as.URL.
	as.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]any{"issuer": as.URL, "authorization_endpoint": as.URL + "/authorize",
				"token_endpoint": as.URL + "/token", "registration_endpoint": as.URL + "/register",
				"code_challenge_methods_supported": []string{"S256"}, "authorization_response_iss_parameter_supported": true})
		case "/register":
			var req struct {
				RedirectURIs []string `json:"redirect_uris"`
			}
			json.NewDecoder(r.Body).Decode(&req)
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"client_id": name + "-client", "client_secret": name + "-secret", "redirect_uris": req.RedirectURIs})
		case "/authorize":
			q := r.URL.Query()
			saw(q.Get("client_id"))
			iss := as.URL
			if p := as.iss.Load(); p != nil {
				iss = *p
			}
			back, _ := url.Parse(q.Get("redirect_uri"))
			back.RawQuery = url.Values{"code": {"c"}, "state": {q.Get("state")}, "iss": {iss}}.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
		case "/token":
			r.ParseForm()
			if id := r.PostForm.Get("client_id"); id != "" {
				saw(id)
			}
			if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Basic "); ok {
				b, _ := base64.StdEncoding.DecodeString(h)
				id, _, _ := strings.Cut(string(b), ":")
				id, _ = url.QueryUnescape(id)
				saw(id)
			}
			w.Write([]byte(`{"access_token":"` + name + `-at","token_type":"Bearer","expires_in":3600}`))
		default:
			http.NotFound(w, r)
		}
	}))
	as.Start()
	t.Cleanup(as.Close)
	return as
}

// protectedBy is an MCP endpoint that answers 401 and whose
// protected-resource metadata names the authorization server current
// gives at each request.
func protectedBy(t *testing.T, current func() string) *httptest.Server {
	t.Helper()
	// Unstarted until srv is set: its handler reads srv.URL.
	var srv *httptest.Server
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/mcp":
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "/.well-known/oauth-protected-resource/mcp":
			json.NewEncoder(w).Encode(map[string]any{"resource": srv.URL + "/mcp", "authorization_servers": []string{current()}})
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestAuthorizationServerMoves: logged in through AS1, the server's
// metadata names AS2: 'ncmcp login' says so, forgets AS1's login and
// client, registers at AS2 and logs in there, and AS2 never sees AS1's
// client id; status names AS2.
func TestAuthorizationServerMoves(t *testing.T) {
	t.Parallel()
	as1, as2 := newHandAS(t, "as1"), newHandAS(t, "as2")
	var current atomic.Pointer[handAS]
	current.Store(as1)
	mcp := protectedBy(t, func() string { return current.Load().URL })
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_SERVER", mcp.URL)

	e.mustRun("login")
	current.Store(as2)
	r := e.mustRun("login")
	if !strings.Contains(r.Stderr, "is now "+as2.URL+", no longer "+as1.URL) || !strings.Contains(r.Stderr, "as2-client") {
		t.Errorf("second login's stderr:\n%s", r.Stderr)
	}
	if shown := as2.shown(); len(shown) == 0 || strings.Contains(strings.Join(shown, " "), "as1") {
		t.Errorf("AS2 was shown client ids %q", shown)
	}
	var st struct {
		Servers []struct {
			Issuer   string `json:"issuer"`
			Accounts []struct {
				ClientID string `json:"client_id"`
			} `json:"accounts"`
		} `json:"servers"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("status", "--json", "--offline").Stdout), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Servers) != 1 || st.Servers[0].Issuer != as2.URL || len(st.Servers[0].Accounts) != 1 || st.Servers[0].Accounts[0].ClientID != "as2-client" {
		t.Errorf("status: %+v", st)
	}
	secrets, _ := os.ReadFile(filepath.Join(e.configDir(), "secrets.json"))
	if strings.Contains(string(secrets), "as1-") {
		t.Errorf("secrets of AS1 still stored: %s", secrets)
	}
}

// TestLoginRefusesAnotherIssuer: a redirect whose iss names another
// authorization server ends 'ncmcp login' with exit 1, says why, and
// stores nothing; the code never reaches the token endpoint.
func TestLoginRefusesAnotherIssuer(t *testing.T) {
	t.Parallel()
	as := newHandAS(t, "as")
	evil := "https://evil.example.com"
	as.iss.Store(&evil)
	mcp := protectedBy(t, func() string { return as.URL })
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_SERVER", mcp.URL)
	r := e.expectCode(1, "mix-up attack", "login")
	if !strings.Contains(r.Stderr, evil) || !strings.Contains(r.Stderr, "nothing was stored") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	if shown := as.shown(); len(shown) != 1 {
		t.Errorf("the authorization server was shown %q: want the authorization request's client only, no token request", shown)
	}
	if b, err := os.ReadFile(filepath.Join(e.configDir(), "secrets.json")); err == nil && strings.Contains(string(b), "as-at") {
		t.Errorf("tokens stored: %s", b)
	}
}

// TestAuthorizationServerMovesWithoutBrowser: a login without a browser
// (client credentials here) follows the move as a browser login does: the
// logins of AS1 are forgotten before AS2 is asked, and AS2 sees only the
// client it was given.
func TestAuthorizationServerMovesWithoutBrowser(t *testing.T) {
	t.Parallel()
	as1, as2 := newHandAS(t, "as1"), newHandAS(t, "as2")
	var current atomic.Pointer[handAS]
	current.Store(as1)
	mcp := protectedBy(t, func() string { return current.Load().URL })
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_SERVER", mcp.URL)

	e.mustRun("login")
	current.Store(as2)
	r := e.set("NCMCP_CLIENT_SECRET", "cc-secret").mustRun("login", "--client-credentials", "--client-id", "as2-cc")
	if !strings.Contains(r.Stderr, "is now "+as2.URL+", no longer "+as1.URL) {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	if shown := as2.shown(); strings.Join(shown, " ") != "as2-cc" {
		t.Errorf("AS2 was shown client ids %q, want only as2-cc", shown)
	}
	secrets, _ := os.ReadFile(filepath.Join(e.configDir(), "secrets.json"))
	if strings.Contains(string(secrets), "as1-") {
		t.Errorf("secrets of AS1 still stored: %s", secrets)
	}
}
