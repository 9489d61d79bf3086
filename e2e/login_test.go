package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// startDev runs a dev server (real OP + generation-1 stand-in) for one test.
func startDev(t testing.TB, o devserver.Options) *devserver.Server {
	t.Helper()
	dev, err := devserver.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	return dev
}

func loginArgs(dev *devserver.Server, extra ...string) []string {
	return append([]string{"login", "--server", dev.URL(), "--client-id", devserver.PublicClientID}, extra...)
}

func loadConfig(t *testing.T, e *env) *store.Config {
	t.Helper()
	c, err := store.LoadConfig(e.configDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mcpAccepts reports whether the dev server's MCP endpoint accepts the
// token: an MCP initialize request succeeds with it.
func mcpAccepts(t testing.TB, dev *devserver.Server, token string) bool {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}`
	req, _ := http.NewRequest(http.MethodPost, dev.URL()+"/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// assertNothingStored checks that a failed login left no account and no secret.
func assertNothingStored(t *testing.T, e *env, k *keyringSession) {
	t.Helper()
	c := loadConfig(t, e)
	for u, s := range c.Servers {
		if len(s.Accounts) > 0 {
			t.Errorf("server %s has accounts after a failed login: %v", u, s.AccountIDs())
		}
	}
	if b, err := os.ReadFile(store.SecretsPath(e.configDir())); err == nil && strings.Contains(string(b), "token:") {
		t.Errorf("the secrets file holds tokens after a failed login")
	}
	if k != nil {
		if items := k.items(); len(items) > 0 {
			t.Errorf("keyring holds items after a failed login: %v", items)
		}
	}
}

// tokensIn reads an account's stored tokens straight from the secrets file.
func tokensInFile(t testing.TB, e *env, serverURL, sub string) store.Tokens {
	t.Helper()
	b, err := os.ReadFile(store.SecretsPath(e.configDir()))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var tok store.Tokens
	if err := json.Unmarshal([]byte(m[store.TokenKey(serverURL, sub)]), &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLoginTokenStatusInRealKeyring is the main path: login through a
// redirect-following browser, then token and status, with the secrets in a
// real gnome-keyring and only metadata in the config file.
func TestLoginTokenStatusInRealKeyring(t *testing.T) {
	t.Parallel()
	k := startKeyring(t)
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := k.use(newEnv(t))
	log := filepath.Join(t.TempDir(), "browser.log")
	e.set("NCMCP_E2E_BROWSER_LOG", log)

	r := e.mustRun(loginArgs(dev, "--storage", "keyring")...)
	if r.Stdout != "" {
		t.Fatalf("login wrote to stdout: %q", r.Stdout)
	}
	for _, want := range []string{"Logged in to " + dev.URL() + " as alice", "Identity: verified ID token", "Refresh token: yes", "the OS keyring", dev.URL() + "/oauth/authorize?"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("login stderr lacks %q", want)
		}
	}
	if b := browserLog(t, log); !strings.Contains(b, "final: 200 /callback") {
		t.Fatalf("the browser did not end on the loopback success page: %s", b)
	}

	tok := e.mustRun("token")
	access := strings.TrimSpace(tok.Stdout)
	if strings.Count(access, ".") != 2 || strings.Contains(tok.Stdout, " ") || tok.Stderr != "" {
		t.Fatalf("token printed %q (stderr %q), want one JWT and nothing else", tok.Stdout, tok.Stderr)
	}
	if !mcpAccepts(t, dev, access) {
		t.Fatal("the MCP server refuses the printed token")
	}
	if strings.Contains(r.Stderr, access) {
		t.Fatal("login printed the access token on stderr")
	}

	st := e.mustRun("status", "--json")
	var s struct {
		DefaultServer string `json:"default_server"`
		Servers       []struct {
			URL        string `json:"url"`
			Generation int    `json:"generation"`
			Issuer     string `json:"issuer"`
			Accounts   []struct {
				Sub                string    `json:"sub"`
				Username           string    `json:"username"`
				ClientID           string    `json:"client_id"`
				Scopes             []string  `json:"scopes"`
				Expiry             time.Time `json:"access_token_expiry"`
				HasRefreshToken    bool      `json:"has_refresh_token"`
				Storage            string    `json:"storage"`
				Active             bool      `json:"active"`
				AccessTokenExpired bool      `json:"access_token_expired"`
			} `json:"accounts"`
		} `json:"servers"`
	}
	if err := json.Unmarshal([]byte(st.Stdout), &s); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, st.Stdout)
	}
	if len(s.Servers) != 1 || len(s.Servers[0].Accounts) != 1 {
		t.Fatalf("status: %+v", s)
	}
	srv, a := s.Servers[0], s.Servers[0].Accounts[0]
	if srv.URL != dev.URL() || srv.Generation != 1 || srv.Issuer != dev.IssuerURL() || s.DefaultServer != dev.URL() {
		t.Errorf("server status %+v", srv)
	}
	if a.Sub != devserver.DefaultUser.Subject || a.Username != "alice" || a.ClientID != devserver.PublicClientID || !a.HasRefreshToken ||
		a.Storage != "keyring" || !a.Active || a.AccessTokenExpired || time.Until(a.Expiry) < 50*time.Minute {
		t.Errorf("account status %+v", a)
	}

	// The secrets are in the keyring, under the documented item name, and
	// nowhere in the config directory.
	item := store.TokenKey(dev.URL(), devserver.DefaultUser.Subject)
	secret := k.secret(item)
	if !strings.Contains(secret, access) || !strings.Contains(secret, `"refresh_token":"`) {
		t.Fatalf("keyring item %q does not hold the tokens (items: %v)", item, k.items())
	}
	var stored store.Tokens
	if err := json.Unmarshal([]byte(secret), &stored); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(e.configDir(), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), access) || strings.Contains(string(b), stored.RefreshToken) {
			t.Errorf("%s holds a token", p)
		}
		return nil
	})
	if _, err := os.Stat(store.SecretsPath(e.configDir())); err == nil {
		t.Error("a secrets file exists although the keyring works")
	}

	// logout forgets the account and its keyring item.
	e.mustRun("logout")
	if items := k.items(); len(items) != 0 {
		t.Errorf("keyring items after logout: %v", items)
	}
	e.expectCode(4, "not logged in", "token")
}

// TestLoginThroughHeadlessChromium runs the same login with a real browser.
func TestLoginThroughHeadlessChromium(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("chromium"); err != nil {
		need(t, "chromium", "chromium is not installed (apt-get install chromium)")
	}
	script, err := filepath.Abs("../scripts/headless-chromium")
	if err != nil {
		t.Fatal(err)
	}
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := newEnv(t).set("NCMCP_BROWSER", script).set("NCMCP_STORAGE", "file")
	r := e.mustRun(loginArgs(dev, "--timeout", "60s")...)
	if !strings.Contains(r.Stderr, "as alice") {
		t.Fatalf("login did not report the user:\n%s", r.Stderr)
	}
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token").Stdout)) {
		t.Fatal("the MCP server refuses the token obtained through chromium")
	}
}

// TestRefreshRotatesRefreshToken: an access token inside --min-ttl is
// refreshed at the OP, the rotated refresh token is stored, and the old one
// no longer works there.
func TestRefreshRotatesRefreshToken(t *testing.T) {
	t.Parallel()
	// Rotation on every refresh, as Nextcloud's oidc app does.
	dev := startDev(t, devserver.Options{AutoApprove: true, RefreshReuseInterval: -1})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun(loginArgs(dev)...)
	before := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)

	cached := strings.TrimSpace(e.mustRun("token").Stdout)
	if cached != before.AccessToken || dev.TokenRequests("refresh_token") != 0 {
		t.Fatal("a valid cached token was not served from storage without a refresh")
	}
	fresh := strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)
	after := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	if n := dev.TokenRequests("refresh_token"); n != 1 {
		t.Fatalf("%d refresh requests at the OP, want 1", n)
	}
	if fresh == before.AccessToken || fresh != after.AccessToken || !mcpAccepts(t, dev, fresh) {
		t.Fatal("the refreshed access token was not printed, stored or accepted")
	}
	if after.RefreshToken == "" || after.RefreshToken == before.RefreshToken {
		t.Fatal("the rotated refresh token was not stored")
	}
	// The old refresh token is dead at the OP (refused as Dex does); the
	// new one works.
	if code := refreshAtOP(t, dev, before.RefreshToken); code != "invalid_request" {
		t.Fatalf("old refresh token at the OP: %q, want invalid_request", code)
	}
	if code := refreshAtOP(t, dev, after.RefreshToken); code != "" {
		t.Fatalf("stored refresh token at the OP: %q, want success", code)
	}
}

// TestRefreshReuseInterval: Dex gives back the same refresh token for a
// refresh within 3 s of its issue, and a new one later; ncmcp stores
// whatever came back, and what it stores keeps working.
func TestRefreshReuseInterval(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := loggedIn(t, dev)
	before := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	fresh := strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)
	after := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	if fresh == before.AccessToken || after.RefreshToken != before.RefreshToken || !mcpAccepts(t, dev, fresh) {
		t.Fatal("a refresh within the reuse interval did not give a new access token with the same refresh token")
	}
	if code := refreshAtOP(t, dev, after.RefreshToken); code != "" {
		t.Fatalf("stored refresh token at the OP: %q, want success", code)
	}
}

// refreshAtOP uses a refresh token directly at the OP and returns the OAuth
// error code, or "" on success.
func refreshAtOP(t *testing.T, dev *devserver.Server, rt string) string {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {devserver.PublicClientID}}
	resp, err := http.PostForm(dev.IssuerURL()+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusOK {
		return ""
	}
	if body.Error == "" {
		return "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return body.Error
}

// TestVerifierBehaviours: the IdP ignores, rejects or requires a
// code_verifier for a code issued without a challenge; login works in all
// three, and only "reject" costs a second exchange.
func TestVerifierBehaviours(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode      string
		exchanges int
	}{{devserver.PKCEIgnore, 1}, {devserver.PKCEReject, 2}, {devserver.PKCERequire, 1}} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true, PKCE: tc.mode})
			e := newEnv(t).set("NCMCP_STORAGE", "file")
			e.mustRun(loginArgs(dev)...)
			if n := dev.TokenRequests("authorization_code"); n != tc.exchanges {
				t.Fatalf("%d code exchanges at the OP, want %d", n, tc.exchanges)
			}
			if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token").Stdout)) {
				t.Fatal("token refused")
			}
		})
	}
}

// TestConfidentialClient: NCMCP_CLIENT_SECRET authenticates the exchange, and
// the stored secret authenticates later refreshes without the variable.
func TestConfidentialClient(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, AllowedClients: []string{devserver.ConfidentialClientID}})
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_CLIENT_SECRET", devserver.ConfidentialClientSecret)
	r := e.mustRun("login", "--server", dev.URL(), "--client-id", devserver.ConfidentialClientID)
	if strings.Contains(r.Stderr, devserver.ConfidentialClientSecret) {
		t.Fatal("the client secret was printed")
	}
	delete(e.vars, "NCMCP_CLIENT_SECRET")
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)) {
		t.Fatal("refresh with the stored client secret failed")
	}
	cfg, _ := os.ReadFile(store.ConfigPath(e.configDir()))
	if strings.Contains(string(cfg), devserver.ConfidentialClientSecret) {
		t.Fatal("the client secret is in the config file")
	}
}

// TestClientsAdd: a pre-registered confidential client recorded with
// 'clients add --secret-stdin' (its fixed port too) is what login uses, with
// the secret from storage; the secret never shows and lives only in the
// secrets storage.
func TestClientsAdd(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, AllowedClients: []string{devserver.ConfidentialClientID}})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	port := freeLoopbackPort(t)
	r := e.runIn(strings.NewReader(devserver.ConfidentialClientSecret+"\n"), "clients", "add", devserver.ConfidentialClientID,
		"--server", dev.URL(), "--secret-stdin", "--redirect-port", strconv.Itoa(port))
	if r.Code != 0 || !strings.Contains(r.Stderr, "Recorded confidential client "+devserver.ConfidentialClientID) {
		t.Fatalf("clients add: exit %d\n%s", r.Code, r.Stderr)
	}
	rows := clientsList(t, e)
	if len(rows) != 1 || rows[0].Type != "confidential" || rows[0].Source != "added" || rows[0].RedirectPort != port {
		t.Fatalf("clients list: %+v", rows)
	}
	human := e.mustRun("clients", "list").Stdout
	if !strings.Contains(human, devserver.ConfidentialClientID+"\tconfidential, added, port "+strconv.Itoa(port)) {
		t.Errorf("clients list:\n%s", human)
	}
	login := e.mustRun("login", "--server", dev.URL())
	if !strings.Contains(login.Stderr, "with client "+devserver.ConfidentialClientID) || !strings.Contains(login.Stderr, "127.0.0.1:"+strconv.Itoa(port)+"/callback") {
		t.Fatalf("login did not use the recorded client on its port:\n%s", login.Stderr)
	}
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)) {
		t.Fatal("refresh with the recorded secret failed")
	}
	cfg, _ := os.ReadFile(store.ConfigPath(e.configDir()))
	if strings.Contains(string(cfg), devserver.ConfidentialClientSecret) || strings.Contains(login.Stderr+r.Stderr, devserver.ConfidentialClientSecret) {
		t.Fatal("the client secret is in the config or was printed")
	}
	e.expectCode(2, "no secret on stdin", "clients", "add", "other", "--server", dev.URL(), "--secret-stdin")
}

// freeLoopbackPort returns a loopback port that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestLoginScopes: --scopes reaches the authorization request: a
// generation-2 server passes it on to its IdP, which refuses a scope it
// does not know, and the hint is about --scopes; a generation-1 server
// takes no scopes from the client.
func TestLoginScopes(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	r := e.expectCode(1, `invalid_scope: Unrecognized scope(s) ["notes.read"]`, loginArgs(dev, "--scopes", "notes.read")...)
	if !strings.Contains(r.Stderr, "a scope you asked for with --scopes is refused") {
		t.Errorf("no hint about --scopes:\n%s", r.Stderr)
	}
	assertNothingStored(t, e, nil)
	gen1 := startDev(t, devserver.Options{AutoApprove: true})
	e.expectCode(2, "a generation-1 server does not take scopes from the client", loginArgs(gen1, "--scopes", "notes.read")...)
}

// TestNonceChecked: a server that forwards the nonce gets it checked; a
// forged nonce is refused and nothing is stored.
func TestNonceChecked(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, ForwardNonce: true})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun(loginArgs(dev)...)

	bad := startDev(t, devserver.Options{AutoApprove: true, NonceOverride: "forged-nonce"})
	e2 := newEnv(t).set("NCMCP_STORAGE", "file")
	e2.expectCode(1, "nonce does not match", loginArgs(bad)...)
	assertNothingStored(t, e2, nil)
}

// TestLoginFailures: each bad input gives a clear message, the documented
// exit code, and stores nothing.
func TestLoginFailures(t *testing.T) {
	t.Parallel()
	htmlServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>Welcome to nginx</body></html>"))
	}))
	t.Cleanup(htmlServer.Close)

	tests := []struct {
		name    string
		dev     devserver.Options
		env     map[string]string
		args    func(dev *devserver.Server) []string
		code    int
		want    []string
		opened  bool // whether the browser may have been opened
		prepare func(t *testing.T, dev *devserver.Server, e *env)
	}{
		{
			name: "unknown client is refused in the browser: the terminal says to look there, then times out",
			args: func(dev *devserver.Server) []string {
				return []string{"login", "--server", dev.URL(), "--client-id", "unknown-client", "--timeout", "3s"}
			},
			code: 8, want: []string{"If the browser shows an error from the authorization server", "timed out after 3s"}, opened: true,
		},
		{
			name: "metadata that is not JSON",
			args: func(*devserver.Server) []string {
				return []string{"login", "--server", htmlServer.URL, "--client-id", "x"}
			},
			code: 1, want: []string{"not JSON (Content-Type text/html)", "base URL"},
		},
		{
			name: "server not running",
			args: func(*devserver.Server) []string {
				return []string{"login", "--server", "http://127.0.0.1:1", "--client-id", "x"}
			},
			code: 1, want: []string{"discover http://127.0.0.1:1", "unreachable"},
		},
		{
			name: "ID token for another audience",
			dev:  devserver.Options{IDTokenAudience: "some-other-client"},
			code: 1, want: []string{"verify ID token", "audience"}, opened: true,
		},
		{
			name: "wrong state only: keeps waiting, then times out",
			env:  map[string]string{"NCMCP_E2E_FORGE_ONLY": "1"},
			args: func(dev *devserver.Server) []string { return loginArgs(dev, "--timeout", "3s") },
			code: 8, want: []string{"timed out after 3s", "nothing was stored"}, opened: true,
		},
		{
			name: "no browser and nobody opens the URL",
			args: func(dev *devserver.Server) []string { return loginArgs(dev, "--no-browser", "--timeout", "1s") },
			code: 8, want: []string{"timed out after 1s", "Open this URL"},
		},
		{
			name: "OP down during the exchange",
			code: 1, want: []string{"token endpoint", "unreachable"}, opened: true,
			prepare: func(t *testing.T, dev *devserver.Server, e *env) {
				hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { _ = dev.StopIdP() }))
				t.Cleanup(hook.Close)
				e.set("NCMCP_E2E_BEFORE_CALLBACK", hook.URL)
			},
		},
		{
			name: "port already in use",
			code: 1, want: []string{"already in use", "--port"},
			prepare: func(t *testing.T, dev *devserver.Server, e *env) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				e.set("NCMCP_E2E_PORT", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := tt.dev
			o.AutoApprove = true
			dev := startDev(t, o)
			e := newEnv(t).set("NCMCP_STORAGE", "file")
			log := filepath.Join(t.TempDir(), "browser.log")
			e.set("NCMCP_E2E_BROWSER_LOG", log)
			for k, v := range tt.env {
				e.set(k, v)
			}
			if tt.prepare != nil {
				tt.prepare(t, dev, e)
			}
			args := loginArgs(dev)
			if tt.args != nil {
				args = tt.args(dev)
			}
			if p := e.vars["NCMCP_E2E_PORT"]; p != "" {
				args = append(args, "--port", p)
			}
			r := e.expectCode(tt.code, "", args...)
			for _, w := range tt.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			if n := strings.Count(r.Stderr, "ncmcp: "); n != 1 {
				t.Errorf("the error was printed %d times", n)
			}
			if r.Stdout != "" {
				t.Errorf("stdout: %q", r.Stdout)
			}
			if b := browserLog(t, log); !tt.opened && len(b) > 0 {
				t.Errorf("the browser was opened: %s", b)
			}
			assertNothingStored(t, e, nil)
		})
	}
}

// TestWrongStateThenRealCallback: a forged callback gets an error page and
// the login still completes with the real one.
func TestWrongStateThenRealCallback(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	log := filepath.Join(t.TempDir(), "browser.log")
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_E2E_FORGE_FIRST", "1").set("NCMCP_E2E_BROWSER_LOG", log)
	e.mustRun(loginArgs(dev)...)
	b := browserLog(t, log)
	if !strings.Contains(b, "forged callback: 400") || !strings.Contains(b, "final: 200 /callback") {
		t.Fatalf("browser log:\n%s", b)
	}
}

// TestKeyringUnavailable: with --storage keyring a missing or locked keyring
// fails the login closed, with a clear message and nothing stored; with
// auto, the secrets go to an owner-only file with a warning.
func TestKeyringUnavailable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T, e *env) *keyringSession
		want  string
	}{
		{"no session bus", func(t *testing.T, e *env) *keyringSession { return nil }, "OS keyring write"},
		{"bus without a Secret Service", func(t *testing.T, e *env) *keyringSession {
			k := startBus(t)
			k.use(e)
			return nil
		}, "org.freedesktop.secrets"},
		{"locked collection", func(t *testing.T, e *env) *keyringSession {
			k := startKeyring(t)
			k.lock()
			k.use(e)
			return k
		}, "OS keyring write"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true})
			e := newEnv(t)
			k := tc.setup(t, e)
			start := time.Now()
			r := e.expectCode(1, tc.want, loginArgs(dev, "--storage", "keyring")...)
			if !strings.Contains(r.Stderr, "nothing was stored") || !strings.Contains(r.Stderr, "--storage") {
				t.Errorf("message does not say what happened and what to do:\n%s", r.Stderr)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %s", d)
			}
			assertNothingStored(t, e, nil)
			if k != nil {
				_ = k // the locked keyring cannot be listed without unlocking it
			}

			// auto falls back to the owner-only file and says so.
			r = e.mustRun(loginArgs(dev)...)
			if !strings.Contains(r.Stderr, "warning: the OS keyring is not usable") {
				t.Errorf("no fallback warning:\n%s", r.Stderr)
			}
			fi, err := os.Stat(store.SecretsPath(e.configDir()))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("secrets file: %v %v", fi, err)
			}
			if got := strings.TrimSpace(e.mustRun("token").Stdout); !mcpAccepts(t, dev, got) {
				t.Fatal("token from the file fallback refused")
			}
		})
	}
}

// TestIdPRefusesLogin: the user denies at the IdP (error=access_denied at the
// loopback): ncmcp says so, with the IdP's description, and stores nothing.
func TestIdPRefusesLogin(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoDeny: true})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	r := e.expectCode(1, "access_denied: The user refused to grant access.", loginArgs(dev)...)
	if !strings.Contains(r.Stderr, "run 'ncmcp login' again") {
		t.Errorf("no hint:\n%s", r.Stderr)
	}
	assertNothingStored(t, e, nil)
}

// TestDebugTraceHidesSecrets: --debug traces every request of a login and a
// refresh without printing a token or the client secret.
func TestDebugTraceHidesSecrets(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, AllowedClients: []string{devserver.ConfidentialClientID}})
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_CLIENT_SECRET", devserver.ConfidentialClientSecret)
	login := e.mustRun("login", "--debug", "--server", dev.URL(), "--client-id", devserver.ConfidentialClientID)
	first := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	refresh := e.mustRun("token", "--debug", "--min-ttl", "2h")
	second := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	trace := login.Stderr + refresh.Stderr
	for _, want := range []string{"debug: > POST " + dev.URL() + "/mcp", "debug: > GET " + dev.URL() + "/.well-known/oauth-protected-resource", "debug: > POST " + dev.IssuerURL() + "/token", "debug: < 200"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q", want)
		}
	}
	secrets := map[string]string{
		"access token": first.AccessToken, "refresh token": first.RefreshToken, "client secret": devserver.ConfidentialClientSecret,
		"new access token": second.AccessToken, "new refresh token": second.RefreshToken,
	}
	verifiers := dev.CodeVerifiers()
	if len(verifiers) == 0 {
		t.Fatal("the OP saw no code_verifier")
	}
	for i, v := range verifiers {
		secrets[fmt.Sprintf("code verifier %d", i)] = v
	}
	for name, secret := range secrets {
		if strings.Contains(trace, secret) {
			t.Errorf("the --debug output contains the %s", name)
		}
	}

	// A login whose code is known to the test (pasted), to check the
	// authorization code too.
	ended := filepath.Join(t.TempDir(), "ended")
	e.set("NCMCP_E2E_STOP_BEFORE_CALLBACK", ended)
	p := e.start("login", "--debug", "--paste", "--server", dev.URL(), "--client-id", devserver.ConfidentialClientID)
	var cb []byte
	for i := 0; i < 500 && len(cb) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		cb, _ = os.ReadFile(ended)
	}
	u, err := url.Parse(string(cb))
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("callback %q", cb)
	}
	fmt.Fprintln(p.Stdin, string(cb))
	r := p.wait(t)
	if r.Code != 0 {
		t.Fatalf("pasted login: exit %d", r.Code)
	}
	if strings.Contains(r.Stderr, u.Query().Get("code")) {
		t.Error("the --debug output contains the authorization code")
	}
	for _, v := range dev.CodeVerifiers() {
		if strings.Contains(r.Stderr, v) {
			t.Error("the --debug output contains a code verifier")
		}
	}
}

// TestNoRefreshToken: a server that does not ask for offline_access yields
// no refresh token; login warns and names the fix, and once the access
// token is inside --min-ttl, token exits 4 with the hint to log in again.
func TestNoRefreshToken(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Scopes: "audience:server:client_id:nextcloud-mcp-server"})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	r := e.mustRun(loginArgs(dev)...)
	for _, want := range []string{"warning: the IdP issued no refresh token", "offline_access", "NEXTCLOUD_OIDC_SCOPES"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("login stderr lacks %q", want)
		}
	}
	e.mustRun("token")
	e.expectCode(4, "there is no refresh token", "token", "--min-ttl", "2h")
	if dev.TokenRequests("refresh_token") != 0 {
		t.Error("a refresh was attempted without a refresh token")
	}
}
