package login_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/clients"
	"github.com/ncmcp/ncmcp/pkg/devserver/devlogin"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// movingAS is an authorization server with dynamic registration that
// records every client id it is shown: at /authorize, and at /token in
// the body or in Basic authentication. Written by hand, as the dev server
// has one authorization server per MCP server and cannot move to another.
type movingAS struct {
	*httptest.Server
	name       string
	registered atomic.Int32
	mu         sync.Mutex
	seen       []string
}

func (as *movingAS) saw(id string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.seen = append(as.seen, id)
}

func (as *movingAS) ids() []string {
	as.mu.Lock()
	defer as.mu.Unlock()
	return append([]string(nil), as.seen...)
}

func newMovingAS(t *testing.T, name string) *movingAS {
	t.Helper()
	as := &movingAS{name: name}
	as.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": as.URL, "authorization_endpoint": as.URL + "/authorize",
				"token_endpoint": as.URL + "/token", "registration_endpoint": as.URL + "/register",
				"code_challenge_methods_supported": []string{"S256"}, "token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
				"authorization_response_iss_parameter_supported": true})
		case "/register":
			as.registered.Add(1)
			var req struct {
				RedirectURIs []string `json:"redirect_uris"`
			}
			_ = json.NewDecoder(r.Body).Decode(&req)
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{"client_id": as.name + "-client", "client_secret": as.name + "-secret",
				"redirect_uris": req.RedirectURIs, "token_endpoint_auth_method": "client_secret_basic",
				"registration_access_token": as.name + "-rat", "registration_client_uri": as.URL + "/register/" + as.name + "-client"})
		case "/authorize":
			q := r.URL.Query()
			as.saw(q.Get("client_id"))
			back, _ := url.Parse(q.Get("redirect_uri"))
			back.RawQuery = url.Values{"code": {"c"}, "state": {q.Get("state")}, "iss": {as.URL}}.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
		case "/token":
			_ = r.ParseForm()
			if id := r.PostForm.Get("client_id"); id != "" {
				as.saw(id)
			}
			if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Basic "); ok {
				b, _ := base64.StdEncoding.DecodeString(h)
				id, _, _ := strings.Cut(string(b), ":")
				if id, err := url.QueryUnescape(id); err == nil {
					as.saw(id)
				}
			}
			_, _ = w.Write([]byte(`{"access_token":"` + as.name + `-at","refresh_token":"` + as.name + `-rt","token_type":"Bearer","expires_in":3600}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(as.Close)
	return as
}

// TestAuthorizationServerMoves: a login at AS1, then the server's
// protected-resource metadata names AS2. The next browser login forgets
// what came from AS1 (the account and its tokens, the client and its
// secrets), registers a client at AS2 and logs in there; AS2 never sees
// AS1's client id, and the stored server names AS2.
func TestAuthorizationServerMoves(t *testing.T) {
	as1, as2 := newMovingAS(t, "as1"), newMovingAS(t, "as2")
	var current atomic.Pointer[movingAS]
	current.Store(as1)
	var mcp *httptest.Server
	mcp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/mcp":
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+mcp.URL+`/.well-known/oauth-protected-resource/mcp"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "/.well-known/oauth-protected-resource/mcp":
			_ = json.NewEncoder(w).Encode(map[string]any{"resource": mcp.URL + "/mcp", "authorization_servers": []string{current.Load().URL}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer mcp.Close()

	st := devlogin.FileStore(t)
	var notices []string
	f := &login.Flow{Store: st, HTTP: http.DefaultClient, Notice: func(s string) { notices = append(notices, s) },
		Clients: &clients.Manager{Store: st, HTTP: http.DefaultClient}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loginOnce := func() (*discovery.Result, *login.Moved, *login.Result) {
		t.Helper()
		disc, err := discovery.Discover(ctx, http.DefaultClient, mcp.URL)
		if err != nil {
			t.Fatal(err)
		}
		moved, err := f.FollowAuthorizationServer(ctx, disc, "")
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.Pick(ctx, disc, login.ClientRequest{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := f.Start(login.Browser{Disc: disc, Client: c.Client, Port: c.Port})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		devlogin.Browse(a.StartURL)
		res, err := a.Wait(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return disc, moved, res
	}

	disc, moved, first := loginOnce()
	if moved != nil || first.ClientID != "as1-client" {
		t.Fatalf("first login: moved %v, client %s", moved, first.ClientID)
	}
	// The same authorization server again: nothing is forgotten.
	if moved, err := f.FollowAuthorizationServer(ctx, disc, ""); moved != nil || err != nil {
		t.Fatalf("same issuer: %v, %v", moved, err)
	}

	current.Store(as2)
	before := len(notices)
	_, moved, second := loginOnce()
	if moved == nil || moved.From != as1.URL || moved.To != as2.URL || len(moved.Accounts) != 1 || len(moved.Clients) != 1 || moved.Clients[0] != "as1-client" {
		t.Fatalf("moved = %+v", moved)
	}
	if second.ClientID != "as2-client" || as2.registered.Load() != 1 {
		t.Fatalf("second login with %s, %d registrations at AS2", second.ClientID, as2.registered.Load())
	}
	if said := strings.Join(notices[before:], "\n"); !strings.Contains(said, "registering one at "+as2.URL+"/register") || strings.Contains(said, as1.URL) {
		t.Errorf("the second login said %q; want the registration at AS2, and nothing of AS1", notices[before:])
	}
	if len(as2.ids()) < 2 {
		t.Fatalf("AS2 was shown client ids %q: want the authorization and the token request's", as2.ids())
	}
	for _, id := range as2.ids() {
		if id != "as2-client" {
			t.Fatalf("AS2 was shown client %q (all: %q)", id, as2.ids())
		}
	}
	cfg, err := store.LoadConfig(st.Dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.Servers[disc.ServerURL]
	if srv.Issuer != as2.URL || srv.TokenEndpoint != as2.URL+"/token" || len(srv.Clients) != 1 || srv.Clients[0].ID != "as2-client" {
		t.Fatalf("stored server %+v", srv)
	}
	if first.Subject == second.Subject || srv.Accounts[first.Subject] != nil || srv.Accounts[second.Subject] == nil {
		t.Fatalf("accounts %v: want %s only", srv.AccountIDs(), second.Subject)
	}
	// AS1's secrets are gone from the store.
	secrets, _ := st.Backend(store.BackendFile)
	for _, key := range []string{store.ClientSecretKey(disc.ServerURL, "as1-client"), store.RegistrationTokenKey(disc.ServerURL, "as1-client"), store.TokenKey(disc.ServerURL, first.Subject)} {
		if v, err := secrets.Get(key); err == nil {
			t.Errorf("%s still stored: %q", key, v)
		}
	}
}

// TestFollowAuthorizationServerKeepsTheNamedClient: a client id the user
// names (--client-id) and recorded is theirs to use at the new
// authorization server, with its secret; a client ncmcp registered is
// the old one's even when named, and is forgotten.
func TestFollowAuthorizationServerKeepsTheNamedClient(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name       string
		registered bool
		kept       bool
	}{
		{"recorded by the user", false, true},
		{"registered by ncmcp", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := devlogin.FileStore(t)
			f := &login.Flow{Store: st, HTTP: http.DefaultClient}
			const server = "https://mcp.example.com"
			old := store.Server{URL: server, Issuer: "https://as1.example.com", TokenEndpoint: "https://as1.example.com/token"}
			if _, _, err := st.SaveClient(ctx, server, &old, store.Client{ID: "mine", Registered: tt.registered}, store.ClientSecrets{Secret: "mine-secret"}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := st.SaveClient(ctx, server, &old, store.Client{ID: "other", Registered: true}, store.ClientSecrets{Secret: "other-secret"}); err != nil {
				t.Fatal(err)
			}
			disc := &discovery.Result{ServerURL: server, Provider: discovery.Provider{Issuer: "https://as2.example.com", TokenEndpoint: "https://as2.example.com/token"}}
			moved, err := f.FollowAuthorizationServer(ctx, disc, "mine")
			if err != nil || moved == nil {
				t.Fatalf("moved %v, %v", moved, err)
			}
			cfg, _ := store.LoadConfig(st.Dir)
			srv := cfg.Servers[server]
			if srv.Client("other") != nil || srv.Issuer != "https://as2.example.com" {
				t.Fatalf("stored %+v", srv)
			}
			kept := srv.Client("mine")
			if (kept != nil) != tt.kept || (moved.Kept == "mine") != tt.kept {
				t.Fatalf("client mine kept: %v, Moved %+v", kept, moved)
			}
			c, err := f.Pick(ctx, disc, login.ClientRequest{ID: "mine"})
			if err != nil || c.ID != "mine" {
				t.Fatalf("Pick = %+v, %v", c, err)
			}
			if want := map[bool]string{true: "mine-secret", false: ""}[tt.kept]; c.Secret != want {
				t.Fatalf("secret %q, want %q", c.Secret, want)
			}
		})
	}
}
