package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// jwtSub returns the sub claim of a JWT access token (not verified: the
// dev server's /mcp verifies it).
func jwtSub(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Sub
}

type clientRow struct {
	Server       string   `json:"server"`
	ClientID     string   `json:"client_id"`
	Type         string   `json:"type"`
	Source       string   `json:"source"`
	RedirectPort int      `json:"redirect_port"`
	Accounts     []string `json:"accounts"`
	// RegistrationURI is RFC 7592's registration_client_uri.
	RegistrationURI string `json:"registration_client_uri"`
}

func clientsList(t *testing.T, e *env) []clientRow {
	t.Helper()
	var rows []clientRow
	if err := json.Unmarshal([]byte(e.mustRun("clients", "list", "--json").Stdout), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// refreshAs uses a refresh token at the OP as the given client and returns
// the OAuth error code, or "" on success.
func refreshAs(t *testing.T, dev *devserver.Server, clientID, rt string) string {
	t.Helper()
	resp, err := http.PostForm(dev.IssuerURL()+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
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
	return body.Error
}

// TestClientsRegisterLoginRemove: a dynamically registered client is used
// by login, listed, and removed with its registration deleted at the OP.
func TestClientsRegisterLoginRemove(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	r := e.mustRun("clients", "register", "--server", dev.URL())
	m := regexp.MustCompile(`Registered client (\S+) at .*fixes port (\d+)`).FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("register said:\n%s", r.Stderr)
	}
	id := m[1]
	rows := clientsList(t, e)
	if len(rows) != 1 || rows[0].ClientID != id || rows[0].Source != "registered" || rows[0].Type != "public" || rows[0].RedirectPort == 0 {
		t.Fatalf("clients list: %+v", rows)
	}
	login := e.mustRun("login", "--server", dev.URL())
	if !strings.Contains(login.Stderr, "with client "+id) || !strings.Contains(login.Stderr, "127.0.0.1:"+m[2]+"/callback") {
		t.Fatalf("login did not use the registered client on its port:\n%s", login.Stderr)
	}
	rt := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject).RefreshToken
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token").Stdout)) {
		t.Fatal("token refused")
	}

	rm := e.mustRun("clients", "remove", id)
	if !strings.Contains(rm.Stderr, "Deleted the registration") || !strings.Contains(rm.Stderr, "alice logged in with this client") {
		t.Errorf("remove said:\n%s", rm.Stderr)
	}
	if got := refreshAs(t, dev, id, rt); got != "invalid_client" {
		t.Fatalf("refresh as the removed client: %q, want invalid_client", got)
	}
	if rows := clientsList(t, e); len(rows) != 0 {
		t.Fatalf("still listed: %+v", rows)
	}
	secrets, _ := os.ReadFile(store.SecretsPath(e.configDir()))
	if strings.Contains(string(secrets), "registration-token:") {
		t.Error("the registration access token is still stored")
	}
}

// TestLoginRegistersWhenNeeded: with no client given or stored, login
// registers one when the IdP offers registration, and otherwise names the
// ways out.
func TestLoginRegistersWhenNeeded(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	r := e.mustRun("login", "--server", dev.URL())
	if !strings.Contains(r.Stderr, "No client is stored") || !strings.Contains(r.Stderr, "Registered client") {
		t.Fatalf("login said:\n%s", r.Stderr)
	}

	none := startDev(t, devserver.Options{AutoApprove: true, NoRegistration: true})
	e2 := newEnv(t).set("NCMCP_STORAGE", "file")
	r = e2.expectCode(2, "no OAuth client is known", "login", "--server", none.URL())
	for _, way := range []string{"--client-id", "ncmcp clients add", "ncmcp clients register"} {
		if !strings.Contains(r.Stderr, way) {
			t.Errorf("the hint does not name %q", way)
		}
	}
}

// TestRegistrationFaults: refused, rate limited and malformed registrations
// are reported clearly, and nothing half-registered is stored.
func TestRegistrationFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault string
		code  int
		want  string
	}{
		{devserver.RegistrationFaultRefuse, 1, "invalid_client_metadata"},
		{devserver.RegistrationFaultMalformed, 1, "the answer is not JSON"},
		{devserver.RegistrationFaultRateLimit, 0, "rate limited; retrying once in 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true, RegistrationFault: tt.fault})
			e := newEnv(t).set("NCMCP_STORAGE", "file")
			e.expectCode(tt.code, tt.want, "clients", "register", "--server", dev.URL())
			want := 0
			if tt.code == 0 {
				want = 1
			}
			if rows := clientsList(t, e); len(rows) != want {
				t.Fatalf("%d clients stored, want %d", len(rows), want)
			}
		})
	}
}

// TestServersAndAccounts: two servers, two accounts on one of them; status,
// tokens list, selection with --server/--account, the default server and
// the active account.
func TestServersAndAccounts(t *testing.T) {
	t.Parallel()
	dev1 := startDev(t, devserver.Options{})
	dev2 := startDev(t, devserver.Options{AutoApprove: true})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.set("NCMCP_E2E_LOGIN_AS", "alice:alice")
	e.mustRun(loginArgs(dev1)...)
	e.set("NCMCP_E2E_LOGIN_AS", "bob:bob")
	e.mustRun(loginArgs(dev1)...)
	delete(e.vars, "NCMCP_E2E_LOGIN_AS")
	e.mustRun(loginArgs(dev2)...)

	var rows []struct {
		Server          string   `json:"server"`
		Sub             string   `json:"sub"`
		Username        string   `json:"username"`
		Kind            string   `json:"kind"`
		ClientID        string   `json:"client_id"`
		Scopes          []string `json:"scopes"`
		HasRefreshToken bool     `json:"has_refresh_token"`
		Storage         string   `json:"storage"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("tokens", "list", "--json", "--offline").Stdout), &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range rows {
		// A generation-1 login asks for no scopes and the IdP reports none.
		if r.Kind != "flow1" || r.ClientID != devserver.PublicClientID || !r.HasRefreshToken || r.Storage != "file" || r.Scopes == nil {
			t.Errorf("row %+v", r)
		}
		got[r.Server+" "+r.Username] = true
	}
	want := []string{dev1.URL() + " alice", dev1.URL() + " bob", dev2.URL() + " alice"}
	if len(rows) != len(want) {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no row for %s", w)
		}
	}
	for _, secret := range []string{tokensInFile(t, e, dev1.URL(), devserver.SecondUser.Subject).RefreshToken} {
		if strings.Contains(e.mustRun("tokens", "list", "--json", "--offline").Stdout, secret) {
			t.Fatal("tokens list printed a secret")
		}
	}

	// The first server stays the default; bob is active there (last login).
	if sub := jwtSub(t, e.mustRun("token").Stdout); sub != devserver.SecondUser.Subject {
		t.Errorf("default token is %s's", sub)
	}
	if sub := jwtSub(t, e.mustRun("token", "--account", "alice").Stdout); sub != devserver.DefaultUser.Subject {
		t.Errorf("--account alice gave %s", sub)
	}
	e.mustRun("config", "set", "active-account", "alice")
	if sub := jwtSub(t, e.mustRun("token").Stdout); sub != devserver.DefaultUser.Subject {
		t.Errorf("after config set active-account alice: %s", sub)
	}
	e.mustRun("config", "set", "default-server", dev2.URL())
	tok := strings.TrimSpace(e.mustRun("token").Stdout)
	if !mcpAccepts(t, dev2, tok) || mcpAccepts(t, dev1, tok) {
		t.Error("the default server did not switch to the second one")
	}
	if strings.TrimSpace(e.mustRun("config", "get", "default-server").Stdout) != dev2.URL() {
		t.Error("config get default-server")
	}
	e.expectCode(4, "no account \"carol\"", "token", "--server", dev1.URL(), "--account", "carol")
}

// TestTokensRevoke: revocation makes the refresh token useless at the OP and
// removes the account; without a revocation endpoint it says the tokens
// were only removed locally; with the IdP unreachable nothing is removed.
func TestTokensRevoke(t *testing.T) {
	t.Parallel()
	t.Run("revoked at the IdP", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true})
		e := loggedIn(t, dev)
		rt := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject).RefreshToken
		r := e.mustRun("tokens", "revoke")
		for _, want := range []string{"refresh token revoked at " + dev.IssuerURL(), "access token revoked at", "removed from storage"} {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
			}
		}
		// The IdP answers a dead refresh token as Dex does.
		if got := refreshAs(t, dev, devserver.PublicClientID, rt); got != "invalid_request" {
			t.Fatalf("revoked refresh token at the OP: %q, want invalid_request", got)
		}
		e.expectCode(4, "not logged in", "token")
	})
	t.Run("no revocation endpoint", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true, NoRevocation: true})
		e := loggedIn(t, dev)
		e.expectCode(1, "removed locally only", "logout", "--revoke") // asked to revoke, nothing was: partial
		e.expectCode(4, "not logged in", "token")
	})
	t.Run("IdP unreachable", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true})
		e := loggedIn(t, dev)
		before := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
		_ = dev.StopIdP()
		r := e.expectCode(1, "NOT revoked", "tokens", "revoke", "--all")
		if !strings.Contains(r.Stderr, "kept in storage") {
			t.Errorf("stderr:\n%s", r.Stderr)
		}
		if got := strings.TrimSpace(e.mustRun("token").Stdout); got != before.AccessToken {
			t.Fatal("the unrevoked tokens are no longer stored")
		}
	})
}

// TestRevokeServerSide: --server-side also makes the server forget its own
// token for the account.
func TestRevokeServerSide(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := loggedIn(t, dev)
	e.mustRun("provision", "--interval", "200ms")
	if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); !ok {
		t.Fatal("not provisioned")
	}
	var rows []struct {
		Kind string `json:"kind"`
	}
	_ = json.Unmarshal([]byte(e.mustRun("tokens", "list", "--json").Stdout), &rows)
	if len(rows) != 2 || rows[1].Kind != "flow2-server-side" {
		t.Fatalf("tokens list: %+v", rows)
	}
	r := e.mustRun("tokens", "revoke", "--server-side")
	if !strings.Contains(r.Stderr, "the server's own access revoked by the server") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); ok {
		t.Fatal("the server still holds its token")
	}
}

// TestCompletionOfServersAndAccounts: shell completion offers the
// configured servers and the selected server's accounts.
func TestCompletionOfServersAndAccounts(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := loggedIn(t, dev)
	r := e.mustRun("__complete", "token", "--server", "")
	if !strings.Contains(r.Stdout, dev.URL()+"\t1 account(s), default") {
		t.Errorf("--server completion:\n%s", r.Stdout)
	}
	r = e.mustRun("__complete", "token", "--account", "")
	if !strings.Contains(r.Stdout, "alice\tsub "+devserver.DefaultUser.Subject) {
		t.Errorf("--account completion:\n%s", r.Stdout)
	}
}

// TestServerGivenAsMCPEndpoint: --server may name the MCP endpoint
// ({base}/mcp); the server is stored under its base URL and found again
// either way.
func TestServerGivenAsMCPEndpoint(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun("login", "--server", dev.URL()+"/mcp", "--client-id", devserver.PublicClientID)
	if c := loadConfig(t, e); c.Servers[dev.URL()] == nil {
		t.Fatalf("stored under %v", c.ServerURLs())
	}
	for _, s := range []string{dev.URL(), dev.URL() + "/mcp", dev.URL() + "/mcp/"} {
		if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token", "--server", s).Stdout)) {
			t.Fatalf("token --server %s", s)
		}
	}
}
