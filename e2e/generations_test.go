package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// TestBothGenerations runs the main path against a generation-1 server
// (pass-through to the IdP) and a generation-2 one (the server is its own
// authorization server): login, token, status, refresh with rotation,
// logout. The IdP rotates on every refresh here, as Nextcloud's oidc app
// does (Dex's reuse interval is TestRefreshReuseInterval's).
func TestBothGenerations(t *testing.T) {
	t.Parallel()
	for _, gen := range []int{1, 2} {
		t.Run(fmt.Sprintf("generation %d", gen), func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true, Generation: gen, RefreshReuseInterval: -1})
			e := newEnv(t).set("NCMCP_STORAGE", "file")
			r := e.mustRun(loginArgs(dev)...)
			if !strings.Contains(r.Stderr, "as alice") || !strings.Contains(r.Stderr, "Refresh token: yes") {
				t.Fatalf("login:\n%s", r.Stderr)
			}
			first := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
			if got := strings.TrimSpace(e.mustRun("token").Stdout); got != first.AccessToken || !mcpAccepts(t, dev, got) {
				t.Fatal("token")
			}
			var s struct {
				Servers []struct {
					Generation int    `json:"generation"`
					Issuer     string `json:"issuer"`
					Accounts   []struct {
						Username        string `json:"username"`
						HasRefreshToken bool   `json:"has_refresh_token"`
					} `json:"accounts"`
				} `json:"servers"`
			}
			if err := json.Unmarshal([]byte(e.mustRun("status", "--json", "--offline").Stdout), &s); err != nil {
				t.Fatal(err)
			}
			wantIssuer := dev.IssuerURL()
			if gen == 2 {
				wantIssuer = dev.URL()
			}
			if len(s.Servers) != 1 || s.Servers[0].Generation != gen || s.Servers[0].Issuer != wantIssuer || s.Servers[0].Accounts[0].Username != "alice" {
				t.Fatalf("status: %+v", s)
			}
			fresh := strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)
			second := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
			if fresh == first.AccessToken || !mcpAccepts(t, dev, fresh) || second.RefreshToken == first.RefreshToken {
				t.Fatal("refresh did not rotate and store the tokens")
			}
			if n := dev.TokenRequests("refresh_token"); n != 1 {
				t.Errorf("%d refresh requests, want 1", n)
			}
			e.mustRun("logout")
			e.expectCode(4, "not logged in", "token")
		})
	}
}

// TestGeneration2BurnedCode: the server's code is single-use and a wrong
// verifier burns it; ncmcp does not retry a failed exchange, says to start
// over, and stores nothing.
func TestGeneration2BurnedCode(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	ended := filepath.Join(t.TempDir(), "ended")
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_E2E_STOP_BEFORE_CALLBACK", ended)
	p := e.start(loginArgs(dev, "--paste", "--timeout", "20s")...)
	var cb []byte
	for i := 0; i < 500 && len(cb) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		cb, _ = os.ReadFile(ended)
	}
	u, err := url.Parse(string(cb))
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("callback %q", cb)
	}
	// Someone else tries the code with a wrong verifier: refused, and the
	// code is gone.
	resp, err := http.PostForm(dev.URL()+"/oauth/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {u.Scheme + "://" + u.Host + u.Path},
		"client_id": {devserver.PublicClientID}, "code_verifier": {strings.Repeat("x", 43)},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong verifier: HTTP %d", resp.StatusCode)
	}
	fmt.Fprintln(p.Stdin, string(cb))
	r := p.wait(t)
	if r.Code != 1 || !strings.Contains(r.Stderr, "Invalid or expired authorization code") || !strings.Contains(r.Stderr, "it was not retried") {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	if n := dev.TokenRequests("authorization_code"); n != 2 {
		t.Errorf("%d code exchanges at the server, want 2 (the thief's and ncmcp's single one)", n)
	}
	assertNothingStored(t, e, nil)
}

// TestGeneration2Restart: today's servers map registrations to a static
// client and keep what they provisioned in a database, so a restart costs
// the login nothing: the next refresh and MCP request work.
func TestGeneration2Restart(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun("login", "--server", dev.URL())
	if rows := clientsList(t, e); len(rows) != 1 || rows[0].ClientID != devserver.PublicClientID || rows[0].Source != "registered" {
		t.Fatalf("clients: %+v (a registration maps to the static client)", rows)
	}
	dev.RestartServer()
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)) {
		t.Fatal("token after the restart")
	}
	if ss := serverSide(t, e); ss.State != "not_provisioned" {
		t.Fatalf("status after the restart: %+v", ss)
	}
}

// TestForgottenClient: an authorization server that forgets a client ncmcp
// registered (older generation-2 servers kept registrations in memory) is
// met by registering a new client and asking to log in again, which then
// works; the registration is deleted here out of band, at the IdP.
func TestForgottenClient(t *testing.T) {
	t.Parallel()
	dev, e, before := forgottenClient(t)

	r := e.expectCode(4, "no longer knows client "+before[0].ClientID, "token", "--min-ttl", "2h")
	if !strings.Contains(r.Stderr, "log in again") {
		t.Errorf("no hint:\n%s", r.Stderr)
	}
	after := clientsList(t, e)
	if len(after) != 1 || after[0].ClientID == before[0].ClientID {
		t.Fatalf("clients after: %+v", after)
	}
	e.mustRun("login", "--server", dev.URL())
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)) {
		t.Fatal("token after logging in again")
	}
}

// forgottenClient logs in with a client registered dynamically, then
// deletes its registration at the server (RFC 7592), as a server that
// restarted forgets it; it returns the clients as they were.
func forgottenClient(t *testing.T) (*devserver.Server, *env, []clientRow) {
	t.Helper()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun("clients", "register", "--server", dev.URL())
	e.mustRun("login", "--server", dev.URL())
	before := clientsList(t, e)
	if len(before) != 1 || before[0].RegistrationURI == "" {
		t.Fatalf("clients: %+v", before)
	}
	var secrets map[string]string
	b, _ := os.ReadFile(store.SecretsPath(e.configDir()))
	_ = json.Unmarshal(b, &secrets)
	req, _ := http.NewRequest(http.MethodDelete, before[0].RegistrationURI, nil)
	req.Header.Set("Authorization", "Bearer "+secrets[store.RegistrationTokenKey(dev.URL(), before[0].ClientID)])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("deleting the registration: %v %v", resp, err)
	}
	resp.Body.Close()
	return dev, e, before
}

// TestReadOnlyCommandsNeverRegister: when the server forgot the stored
// client, status, doctor and tokens list report it and change nothing:
// only commands meant to change state register a replacement.
func TestReadOnlyCommandsNeverRegister(t *testing.T) {
	t.Parallel()
	dev, e, before := forgottenClient(t)
	// The access token has expired: every command must refresh, and the
	// refresh is refused for the unknown client.
	expireStoredToken(t, e, nil, dev.URL())
	refreshes := dev.TokenRequests("refresh_token")
	for _, args := range [][]string{{"status"}, {"doctor"}, {"tokens", "list"}} {
		r := e.run(args...)
		if after := clientsList(t, e); len(after) != 1 || after[0].ClientID != before[0].ClientID {
			t.Fatalf("ncmcp %v registered a client: %+v\n%s", args, after, r.Stderr)
		}
	}
	if dev.TokenRequests("refresh_token") == refreshes {
		t.Fatal("no command tried to refresh: the test proves nothing")
	}
}

// TestGeneration2RateLimitedRegistration: past the server's limit, a 429
// with a long Retry-After is reported with when to try again.
func TestGeneration2RateLimitedRegistration(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2, RegisterRateLimit: 1})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun("clients", "register", "--server", dev.URL())
	r := e.expectCode(1, "HTTP 429", "clients", "register", "--server", dev.URL())
	if !strings.Contains(r.Stderr, "try again in") {
		t.Errorf("no retry hint:\n%s", r.Stderr)
	}
	if rows := clientsList(t, e); len(rows) != 1 {
		t.Fatalf("%d clients stored, want 1", len(rows))
	}
}

// TestRefreshAfterNewerLogin: a generation-2 server logs every user in
// through its one client at the IdP, and the IdP (Dex) keeps one refresh
// token per user and client: another login of the same user through the
// server (here Flow 2 in a browser) ends ncmcp's. The refusal says so and
// what to run.
func TestRefreshAfterNewerLogin(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := loggedIn(t, dev)
	if code := followRedirects(dev.Flow2URL()); code != 0 {
		t.Fatalf("the other login through the server failed: %d", code)
	}
	r := e.expectCode(4, "refused the refresh token", "token", "--min-ttl", "2h")
	for _, want := range []string{"Token refresh failed", "one refresh token per user", "a later login of alice through the server", "ncmcp login --server " + dev.URL()} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
	e.mustRun("login", "--server", dev.URL(), "--client-id", devserver.PublicClientID)
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)) {
		t.Fatal("token after logging in again")
	}
}

// TestMCPRefusals: the MCP endpoint's refusals are exit 4 with what to do:
// a 401 (the token is no longer valid) means logging in again; a 403
// insufficient_scope names the scope to log in with.
func TestMCPRefusals(t *testing.T) {
	t.Parallel()
	t.Run("insufficient scope", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2, RequiredScope: "notes.read"})
		e := loggedIn(t, dev)
		// Without logging in again: the hint names the scope.
		r := e.expectCode(4, "HTTP 403 insufficient_scope", "provision", "--no-login")
		if !strings.Contains(r.Stderr, "ncmcp login --server "+dev.URL()+" --scopes notes.read") {
			t.Errorf("no hint naming the scope:\n%s", r.Stderr)
		}
		if n := dev.TokenRequests("authorization_code"); n != 1 {
			t.Fatalf("--no-login logged in: %d code exchanges", n)
		}
		// With it: one new authorization asking for the granted scopes and
		// notes.read, which this IdP refuses; the server's refusal stands.
		r = e.expectCode(4, "HTTP 403 insufficient_scope", "provision")
		if !strings.Contains(r.Stderr, "logging in again to get them") || strings.Count(r.Stderr, "scope=email+offline_access+openid+profile+notes.read&") != 1 ||
			!strings.Contains(r.Stderr, "logging in again for notes.read failed") || !strings.Contains(r.Stderr, "invalid_scope") {
			t.Errorf("stderr:\n%s", r.Stderr)
		}
	})
	t.Run("token revoked at the IdP", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true})
		e := loggedIn(t, dev)
		revoke := func() {
			tok := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
			for _, v := range []string{tok.AccessToken, tok.RefreshToken} {
				resp, err := http.PostForm(dev.IssuerURL()+"/token/revoke", url.Values{"token": {v}, "client_id": {devserver.PublicClientID}})
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("revoke: %v %v", resp, err)
				}
				resp.Body.Close()
			}
		}
		revoke()
		perLogin := dev.TokenRequests("authorization_code")
		r := e.expectCode(4, "the IdP refused the refresh token", "provision", "--no-login")
		if !strings.Contains(r.Stderr, "log in again") {
			t.Errorf("stderr:\n%s", r.Stderr)
		}
		if !strings.Contains(e.mustRun("status").Stderr, "server-side:   unknown: ") {
			t.Error("status does not say the server could not be asked")
		}
		// Without --no-login the refused refresh leads to a new login in
		// the browser, and provisioning goes on.
		e.mustRun("provision")
		if n := dev.TokenRequests("authorization_code"); n != 2*perLogin {
			t.Fatalf("%d code exchanges, want those of the login and one more (%d each)", n, perLogin)
		}
	})
}
