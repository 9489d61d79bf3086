package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// loggedIn returns an env logged in to dev with file storage.
func loggedIn(t *testing.T, dev *devserver.Server) *env {
	t.Helper()
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun(loginArgs(dev)...)
	return e
}

// freshRefreshToken logs in once in a throw-away env and returns the
// refresh token it got, as a user would copy it into a CI secret.
func freshRefreshToken(t *testing.T, dev *devserver.Server) string {
	t.Helper()
	e := loggedIn(t, dev)
	rt := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject).RefreshToken
	if rt == "" {
		t.Fatal("no refresh token")
	}
	return rt
}

// TestPasteMode: the browser cannot reach the loopback listener; the user
// pastes the address it ended on. A pasted address of another login is
// refused and nothing is stored.
func TestPasteMode(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	for _, tc := range []struct {
		name   string
		mangle func(string) string
		code   int
	}{
		{"right address", func(s string) string { return s }, 0},
		{"address of another login", func(s string) string {
			return strings.Replace(s, "state=", "state=forged", 1)
		}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ended := filepath.Join(t.TempDir(), "ended")
			e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_E2E_STOP_BEFORE_CALLBACK", ended)
			p := e.start(loginArgs(dev, "--paste", "--timeout", "4s")...)
			var addr []byte
			for i := 0; i < 300 && len(addr) == 0; i++ {
				time.Sleep(10 * time.Millisecond)
				addr, _ = os.ReadFile(ended)
			}
			if len(addr) == 0 {
				t.Fatal("the browser never got to the callback address")
			}
			fmt.Fprintln(p.Stdin, tc.mangle(string(addr)))
			if tc.code != 0 {
				p.Stdin.Close()
			}
			r := p.wait(t)
			if r.Code != tc.code {
				t.Fatalf("exit %d, want %d", r.Code, tc.code)
			}
			if !strings.Contains(r.Stderr, "ssh -L ") {
				t.Error("no ssh -L hint")
			}
			if tc.code == 0 {
				if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token").Stdout)) {
					t.Fatal("token refused")
				}
				return
			}
			if !strings.Contains(r.Stderr, "Not accepted: the response does not belong to this login (state mismatch)") {
				t.Errorf("no state mismatch message:\n%s", r.Stderr)
			}
			assertNothingStored(t, e, nil)
		})
	}
}

// TestEnvRefreshToken: NCMCP_REFRESH_TOKEN + NCMCP_CLIENT_ID + NCMCP_SERVER
// give a token with no stored login. The dev server's IdP rotates refresh
// tokens: without storage the next run fails (and ncmcp said so); with
// --storage file the rotated token is kept and used by later runs.
func TestEnvRefreshToken(t *testing.T) {
	t.Parallel()
	// Rotation on every refresh, as Nextcloud's oidc app does.
	dev := startDev(t, devserver.Options{AutoApprove: true, RefreshReuseInterval: -1})
	ci := func(rt string) *env {
		return newEnv(t).set("NCMCP_REFRESH_TOKEN", rt).set("NCMCP_CLIENT_ID", devserver.PublicClientID).set("NCMCP_SERVER", dev.URL())
	}

	rt := freshRefreshToken(t, dev)
	e := ci(rt)
	r := e.mustRun("token")
	if !mcpAccepts(t, dev, strings.TrimSpace(r.Stdout)) {
		t.Fatal("token from NCMCP_REFRESH_TOKEN refused")
	}
	if !strings.Contains(r.Stderr, "rotated the refresh token and the new one was not stored") {
		t.Errorf("no rotation warning:\n%s", r.Stderr)
	}
	if _, err := os.Stat(store.ConfigPath(e.configDir())); err == nil {
		t.Error("env-only mode wrote a config")
	}
	e.expectCode(4, "NCMCP_REFRESH_TOKEN", "token")

	e = ci(freshRefreshToken(t, dev)).set("NCMCP_STORAGE", "file")
	first := e.mustRun("token", "--json")
	before := dev.TokenRequests("refresh_token")
	second := e.mustRun("token", "--json")
	if dev.TokenRequests("refresh_token") != before {
		t.Error("the second run refreshed again instead of using the stored tokens")
	}
	var a, b TokenOut
	if json.Unmarshal([]byte(first.Stdout), &a) != nil || json.Unmarshal([]byte(second.Stdout), &b) != nil || a.AccessToken != b.AccessToken || !mcpAccepts(t, dev, b.AccessToken) {
		t.Fatalf("runs printed %q and %q", first.Stdout, second.Stdout)
	}
	cfg, _ := os.ReadFile(store.ConfigPath(e.configDir()))
	if strings.Contains(string(cfg), e.vars["NCMCP_REFRESH_TOKEN"]) {
		t.Fatal("the refresh token is in the config file")
	}
}

// TokenOut is 'ncmcp token --json'.
type TokenOut struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	Scopes      []string  `json:"scopes"`
}

// TestTokenJSON: token --json has the token, its type and expiry, and the
// scopes: a token response without a scope parameter grants what was asked
// for (RFC 6749 section 5.1): a generation-2 login asks for the scopes the
// server's metadata lists, in its order; a
// generation-1 login asks for none (the server decides), so they are unknown.
func TestTokenJSON(t *testing.T) {
	t.Parallel()
	for gen, want := range map[int]string{1: "", 2: "email offline_access openid profile"} {
		dev := startDev(t, devserver.Options{AutoApprove: true, Generation: gen})
		e := loggedIn(t, dev)
		var out TokenOut
		r := e.mustRun("token", "--json")
		if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
			t.Fatal(err)
		}
		if !mcpAccepts(t, dev, out.AccessToken) || !strings.EqualFold(out.TokenType, "bearer") || time.Until(out.ExpiresAt) < 50*time.Minute ||
			out.Scopes == nil || strings.Join(out.Scopes, " ") != want || !strings.Contains(r.Stdout, `"scopes": [`) && !strings.Contains(r.Stdout, `"scopes":[`) {
			t.Fatalf("generation %d: token --json: %+v\n%s", gen, out, r.Stdout)
		}
	}
}

// TestLoginWithRefreshToken: a refresh token piped on stdin becomes a stored
// login; a bad one is refused with exit 4 and nothing stored.
func TestLoginWithRefreshToken(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	args := []string{"login", "--with-refresh-token", "--server", dev.URL(), "--client-id", devserver.PublicClientID}
	r := e.runIn(strings.NewReader("not-a-refresh-token\n"), args...)
	if r.Code != 4 || !strings.Contains(r.Stderr, "refused the refresh token") {
		t.Fatalf("bad token: exit %d\n%s", r.Code, r.Stderr)
	}
	assertNothingStored(t, e, nil)

	r = e.runIn(strings.NewReader(freshRefreshToken(t, dev)+"\n"), args...)
	if r.Code != 0 || !strings.Contains(r.Stderr, "as alice") {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token").Stdout)) {
		t.Fatal("token refused")
	}
}

// expireStoredToken makes the stored access token look expired, as it is
// after an hour, without waiting an hour.
func expireStoredToken(t testing.TB, e *env, k *keyringSession, serverURL string) {
	t.Helper()
	key := store.TokenKey(serverURL, devserver.DefaultUser.Subject)
	if k == nil {
		expireTokensInFile(t, e, key)
		return
	}
	k.store(key, expiredTokens(t, k.secret(key)))
}

// expireTokensInFile makes access tokens in the secrets file look
// expired: those under the given keys, or every stored token when no key
// is given (a test's only account, whatever its subject).
func expireTokensInFile(t testing.TB, e *env, keys ...string) {
	t.Helper()
	path := store.SecretsPath(e.configDir())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("secrets file: %v", err)
	}
	if len(keys) == 0 {
		for k := range m {
			if strings.HasPrefix(k, "token:") {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			t.Fatal("no tokens in the secrets file")
		}
	}
	for _, k := range keys {
		m[k] = expiredTokens(t, m[k])
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// expiredTokens is the stored tokens raw with their expiry a minute ago.
func expiredTokens(t testing.TB, raw string) string {
	t.Helper()
	var tok store.Tokens
	if err := json.Unmarshal([]byte(raw), &tok); err != nil {
		t.Fatalf("stored tokens: %v", err)
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRefreshStorm: N processes asking for a token when it has expired
// cause exactly one refresh at the OP, and all print the same valid token;
// with the real keyring and with file storage.
func TestRefreshStorm(t *testing.T) {
	t.Parallel()
	const n = 8
	for _, storage := range []string{"keyring", "file"} {
		t.Run(storage, func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true})
			e := newEnv(t).set("NCMCP_STORAGE", storage)
			var k *keyringSession
			if storage == "keyring" {
				k = startKeyring(t)
				k.use(e)
			}
			e.mustRun(loginArgs(dev)...)
			expireStoredToken(t, e, k, dev.URL())

			results := make([]result, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() { defer wg.Done(); results[i] = e.run("token") }()
			}
			wg.Wait()
			if got := dev.TokenRequests("refresh_token"); got != 1 {
				t.Fatalf("%d refresh requests at the OP for %d concurrent processes, want 1", got, n)
			}
			first := strings.TrimSpace(results[0].Stdout)
			for i, r := range results {
				if r.Code != 0 || strings.TrimSpace(r.Stdout) != first {
					t.Fatalf("process %d: exit %d, token differs: %s", i, r.Code, r.Stderr)
				}
			}
			if !mcpAccepts(t, dev, first) {
				t.Fatal("the refreshed token is refused")
			}
		})
	}
}

// TestKilledWhileHoldingLock: a token process killed with SIGKILL in the
// middle of a refresh (holding the lock) does not block the next one.
func TestKilledWhileHoldingLock(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := loggedIn(t, dev)
	expireStoredToken(t, e, nil, dev.URL())

	reached := make(chan struct{}, 1)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		<-release
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	setTokenEndpoint(t, e, dev.URL(), hang.URL+"/token")

	p := e.start("token")
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatal("the refresh never reached the token endpoint")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	setTokenEndpoint(t, e, dev.URL(), dev.IssuerURL()+"/token")
	done := make(chan result, 1)
	go func() { done <- e.run("token") }()
	select {
	case r := <-done:
		if r.Code != 0 || !mcpAccepts(t, dev, strings.TrimSpace(r.Stdout)) {
			t.Fatalf("token after the kill: exit %d\n%s", r.Code, r.Stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("token deadlocked on the lock of a killed process")
	}
}

// setTokenEndpoint points the stored server at another token endpoint.
func setTokenEndpoint(t *testing.T, e *env, serverURL, endpoint string) {
	t.Helper()
	c := loadConfig(t, e)
	c.Servers[serverURL].TokenEndpoint = endpoint
	if err := store.SaveConfig(e.configDir(), c); err != nil {
		t.Fatal(err)
	}
}

// TestKeyringHangs: a keyring daemon that stops answering (SIGSTOP keeps its
// bus name but answers nothing, as a keyring waiting for an unlock prompt
// does) costs at most NCMCP_KEYRING_TIMEOUT, then --storage decides.
func TestKeyringHangs(t *testing.T) {
	t.Parallel()
	k := startKeyring(t)
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := k.use(newEnv(t)).set("NCMCP_KEYRING_TIMEOUT", "1s")
	e.mustRun(loginArgs(dev, "--storage", "keyring")...)

	pid := k.secretServicePID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })

	start := time.Now()
	e.expectCode(1, "no answer within 1s", "token")
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("token took %s with a 1s keyring timeout", d)
	}
	e.expectCode(1, "nothing was stored", loginArgs(dev, "--storage", "keyring")...)
	r := e.mustRun(loginArgs(dev, "--storage", "auto")...)
	if !strings.Contains(r.Stderr, "warning: the OS keyring is not usable (OS keyring write: no answer within 1s") {
		t.Errorf("auto did not explain the fallback:\n%s", r.Stderr)
	}
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token").Stdout)) {
		t.Fatal("token after falling back to the file refused")
	}
}

// secretServicePID returns the process that owns org.freedesktop.secrets.
func (k *keyringSession) secretServicePID() int {
	k.t.Helper()
	out, err := k.dbusSend("--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.GetConnectionUnixProcessID", "string:org.freedesktop.secrets")
	if err != nil {
		k.t.Fatalf("%v: %s", err, out)
	}
	f := strings.Fields(out)
	pid, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		k.t.Fatalf("pid in %q: %v", out, err)
	}
	return pid
}

// store writes an ncmcp item with secret-tool.
func (k *keyringSession) store(user, value string) {
	k.t.Helper()
	cmd := exec.Command("secret-tool", "store", "--label=ncmcp test", "service", "ncmcp", "username", user)
	cmd.Env = k.env
	cmd.Stdin = strings.NewReader(value)
	if out, err := cmd.CombinedOutput(); err != nil {
		k.t.Fatalf("secret-tool store: %v\n%s", err, out)
	}
}

// TestCachedTokenNeedsNoNetwork: a valid cached token is served with the
// server and IdP gone, and, where unshare(1) can make one, inside a network
// namespace with no network at all.
func TestCachedTokenNeedsNoNetwork(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := loggedIn(t, dev)
	want := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject).AccessToken
	_ = dev.Close()
	if got := strings.TrimSpace(e.mustRun("token").Stdout); got != want {
		t.Fatal("the cached token was not served with the server down")
	}
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 || exec.Command("unshare", "--net", "true").Run() != nil {
		need(t, "netns", "unshare --net cannot make a network namespace here (it needs root and util-linux); the closed server above passed")
	}
	cmd := exec.Command("unshare", "--net", ncmcpBin, "token")
	cmd.Env = e.list()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("token without a network: %v", err)
	}
	if strings.TrimSpace(string(out)) != want {
		t.Fatal("token without a network printed something else")
	}
}

// TestProxyFromEnvironment: HTTPS_PROXY is honoured (a CI runner behind a
// proxy reaches the server through it).
func TestProxyFromEnvironment(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 4)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Method + " " + r.Host
		http.Error(w, "no upstream here", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	e := newEnv(t).set("HTTPS_PROXY", proxy.URL).set("NO_PROXY", "")
	e.expectCode(1, "", "doctor", "--server", "https://mcp.example.test", "--storage", "file")
	select {
	case got := <-seen:
		if got != "CONNECT mcp.example.test:443" {
			t.Fatalf("the proxy saw %q", got)
		}
	default:
		t.Fatal("the request did not go through HTTPS_PROXY")
	}
}
