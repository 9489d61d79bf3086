package devserver

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// ncStart starts a Login Flow at the stand-in.
func ncStart(t *testing.T, s *Server) (pollToken, loginURL string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.NextcloudURL()+ncLoginPath, nil)
	req.Header.Set("User-Agent", "some-client")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var init struct {
		Poll struct {
			Token    string `json:"token"`
			Endpoint string `json:"endpoint"`
		} `json:"poll"`
		Login string `json:"login"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&init); err != nil || resp.StatusCode != 200 ||
		init.Poll.Endpoint != s.NextcloudURL()+ncPollPath || !strings.HasPrefix(init.Login, s.NextcloudURL()+ncFlowPath) {
		t.Fatalf("initiate: %d %+v %v", resp.StatusCode, init, err)
	}
	return init.Poll.Token, init.Login
}

// ncPoll polls once.
func ncPoll(t *testing.T, s *Server, pollToken string) (int, map[string]any) {
	t.Helper()
	resp, err := noRedirect.PostForm(s.NextcloudURL()+ncPollPath, url.Values{"token": {pollToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 404 {
		if string(b) != "[]" {
			t.Errorf("poll 404 body %s", b)
		}
		return 404, nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// ncBrowser is a user's browser on the stand-in's pages: it keeps
// cookies and follows redirects.
type ncBrowser struct {
	t *testing.T
	c *http.Client
}

func newNCBrowser(t *testing.T) *ncBrowser {
	jar, _ := cookiejar.New(nil)
	return &ncBrowser{t: t, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

func (b *ncBrowser) get(target string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(target)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// open opens a login URL and, on the "Connect to your account" page,
// clicks "Log in"; it returns the page it ends on.
func (b *ncBrowser) open(loginURL string) (int, string) {
	b.t.Helper()
	status, page := b.get(loginURL)
	if m := regexp.MustCompile(`<a id="login" href="([^"]+)">`).FindStringSubmatch(page); status == 200 && m != nil {
		u, _ := url.Parse(loginURL)
		next, _ := u.Parse(html.UnescapeString(m[1]))
		return b.get(next.String())
	}
	return status, page
}

func (b *ncBrowser) post(target string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(target, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// getPage opens a login URL in a new browser.
func getPage(t *testing.T, target string) (int, string) {
	t.Helper()
	return newNCBrowser(t).open(target)
}

var hiddenRE = regexp.MustCompile(`name="(\w+)" value="([^"]*)"`)

// postStatus posts a form and returns the status.
func postStatus(t *testing.T, target string, form url.Values) int {
	t.Helper()
	resp, err := noRedirect.PostForm(target, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func ocsStatus(t *testing.T, s *Server, user, password string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.NextcloudURL()+ocsUserPath, nil)
	req.SetBasicAuth(user, password)
	req.Header.Set("OCS-APIRequest", "true")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLoginFlowStandIn: Nextcloud's Login Flow v2, spoken to directly.
func TestLoginFlowStandIn(t *testing.T) {
	s := startServer(t, Options{Generation: 2, NextcloudUser: SecondUser.Username})
	pollToken, loginURL := ncStart(t, s)
	if status, _ := ncPoll(t, s, pollToken); status != 404 {
		t.Fatalf("poll before the grant: %d", status)
	}
	br := newNCBrowser(t)
	status, page := br.open(loginURL)
	if status != 200 || !strings.Contains(page, "Account access") || !strings.Contains(page, SecondUser.Name) ||
		!strings.Contains(page, "some-client") || !strings.Contains(page, "Grant access") {
		t.Fatalf("page: %d %s", status, page)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	wrong := url.Values{"stateToken": {form.Get("stateToken")}, "requesttoken": {"forged"}}
	if got, _ := br.post(s.NextcloudURL()+ncGrantPath, wrong); got != 412 {
		t.Fatalf("grant with a forged request token: %d", got)
	}
	if got := postStatus(t, s.NextcloudURL()+ncGrantPath, form); got != 403 {
		t.Fatalf("grant from another browser: %d", got)
	}
	if status, _ := ncPoll(t, s, pollToken); status != 404 {
		t.Fatalf("poll after a refused grant: %d", status)
	}
	if status, b := br.post(s.NextcloudURL()+ncGrantPath, form); status != 200 || !strings.Contains(b, "Account connected") {
		t.Fatalf("grant: %d %s", status, b)
	}
	status, creds := ncPoll(t, s, pollToken)
	password, _ := creds["appPassword"].(string)
	if status != 200 || creds["server"] != s.NextcloudURL() || creds["loginName"] != SecondUser.Subject || len(password) != 72 {
		t.Fatalf("poll after the grant: %d %v", status, creds)
	}
	if status, _ := ncPoll(t, s, pollToken); status != 404 {
		t.Errorf("second poll after the grant: %d", status)
	}
	if status, page := getPage(t, loginURL); status != 403 || !strings.Contains(page, "Access forbidden") {
		t.Errorf("used login URL: %d", status)
	}
	if got := ocsStatus(t, s, SecondUser.Subject, password); got != 200 {
		t.Errorf("OCS with the app password: %d", got)
	}
	for user, pw := range map[string]string{SecondUser.Subject: "wrong", DefaultUser.Subject: password} {
		if got := ocsStatus(t, s, user, pw); got != 401 {
			t.Errorf("OCS as %s with a wrong password: %d", user, got)
		}
	}
}

// TestLoginFlowAutoApprove: with AutoApprove the page grants at once.
func TestLoginFlowAutoApprove(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	pollToken, loginURL := ncStart(t, s)
	if status, page := getPage(t, loginURL); status != 200 || !strings.Contains(page, "Account connected") {
		t.Fatalf("page: %d %s", status, page)
	}
	if status, creds := ncPoll(t, s, pollToken); status != 200 || creds["loginName"] != DefaultUser.Subject {
		t.Fatalf("poll: %d %v", status, creds)
	}
}

// TestLoginFlowExpiry: flows end after 20 minutes, as in Nextcloud.
func TestLoginFlowExpiry(t *testing.T) {
	opts, clock := clockOptions(Options{Generation: 2, AutoApprove: true})
	s := startServer(t, opts)
	pollToken, loginURL := ncStart(t, s)
	clock.advance(ncFlowTTL + time.Second)
	if status, _ := getPage(t, loginURL); status != 403 {
		t.Errorf("expired login URL: %d", status)
	}
	if status, _ := ncPoll(t, s, pollToken); status != 404 {
		t.Errorf("expired poll: %d", status)
	}
}

// TestNCAuthTools: the nc_auth_* tools, here in generation 1 with
// LoginFlowTools, through a whole provisioning, a scope update and a
// revocation.
func TestNCAuthTools(t *testing.T) {
	s := startServer(t, Options{LoginFlowTools: true})
	cs := mustMCPSession(t, s, tokensAs(t, s, DefaultUser).AccessToken)
	sub := DefaultUser.Subject
	if st := callTool(t, cs, ToolNCAuthCheck, nil); st["status"] != "not_initiated" || st["user_id"] != sub {
		t.Fatalf("before: %v", st)
	}
	p := callTool(t, cs, ToolNCAuthProvision, map[string]any{"scopes": []string{"notes.read", "files.read"}})
	loginURL, _ := p["login_url"].(string)
	if p["status"] != "login_required" || mustJSON(p["requested_scopes"]) != `["notes.read","files.read"]` {
		t.Fatalf("provision: %v", p)
	}
	if st := callTool(t, cs, ToolNCAuthCheck, nil); st["status"] != "pending" {
		t.Fatalf("pending: %v", st)
	}
	// The page shows the user of the tool call (not NextcloudUser).
	br := newNCBrowser(t)
	status, page := br.open(loginURL)
	if status != 200 || !strings.Contains(page, DefaultUser.Name) || !strings.Contains(page, ServerClientID) {
		t.Fatalf("page: %d %s", status, page)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	if got, _ := br.post(s.NextcloudURL()+ncGrantPath, form); got != 200 {
		t.Fatalf("grant: %d", got)
	}
	st := callTool(t, cs, ToolNCAuthCheck, nil)
	if st["status"] != "provisioned" || st["username"] != sub || mustJSON(st["scopes"]) != `["notes.read","files.read"]` {
		t.Fatalf("provisioned: %v", st)
	}
	pt, ok := s.ProvisionedToken(sub)
	if !ok || pt.CredentialType != CredentialAppPassword || pt.FlowType != FlowTypeLoginFlowV2 || pt.Username != sub ||
		!slices.Equal(pt.Scopes, []string{"notes.read", "files.read"}) || ocsStatus(t, s, sub, pt.AppPassword) != 200 {
		t.Fatalf("ProvisionedToken = %+v, %t", pt, ok)
	}
	again := callTool(t, cs, ToolNCAuthProvision, nil)
	if again["status"] != "already_provisioned" ||
		again["message"] != "Nextcloud access already provisioned for "+sub+". Scopes: ['notes.read', 'files.read']. Use nc_auth_update_scopes to modify permissions." {
		t.Errorf("provision again: %v", again)
	}
	for args, want := range map[string]string{
		`{}`:                            "error",
		`{"add_scopes":["nope"]}`:       "error",
		`{"add_scopes":["notes.read"]}`: "unchanged",
		`{"remove_scopes":["notes.read","files.read"]}`: "error",
		`{"add_scopes":["talk.read"]}`:                  "login_required",
	} {
		var a map[string]any
		_ = json.Unmarshal([]byte(args), &a)
		if up := callTool(t, cs, ToolNCAuthUpdate, a); up["status"] != want {
			t.Errorf("update %s: %v, want %s", args, up, want)
		}
	}
	// The scope update keeps the old app password until it is replaced.
	if st := callTool(t, cs, ToolNCAuthCheck, nil); st["status"] != "provisioned" {
		t.Errorf("during the update: %v", st)
	}
	// Generation 1's revoke_nextcloud_access knows only Flow 2 tokens.
	if r := callTool(t, cs, ToolRevoke, map[string]any{"user_id": sub}); r["success"] != true || r["message"] != "No Nextcloud access to revoke." {
		t.Errorf("revoke: %v", r)
	}
	if got := s.ToolCalls(ToolNCAuthUpdate); got != 5 {
		t.Errorf("ToolCalls(update) = %d", got)
	}
}

// TestProvisionURLFault: the fault replaces the URL the tools give.
func TestProvisionURLFault(t *testing.T) {
	const fault = "javascript:alert(1)"
	for gen, field := range map[int]string{1: "authorization_url", 2: "provisioning_url"} {
		s := startServer(t, Options{AutoApprove: true, Generation: gen, LoginFlowTools: true, ProvisionURL: fault})
		cs := mustMCPSession(t, s, tokens(t, s).AccessToken)
		if p := callTool(t, cs, ToolProvision, nil); p[field] != fault {
			t.Errorf("generation %d: %s = %v", gen, field, p[field])
		}
		if p := callTool(t, cs, ToolNCAuthProvision, nil); p["login_url"] != fault || !strings.Contains(p["message"].(string), fault) {
			t.Errorf("generation %d: login_url = %v", gen, p["login_url"])
		}
	}
}

// TestLoginFlowLoginForm: with NextcloudLoginForm the browser logs in
// first, and the login name is what the user typed, in its case, while
// OCS names the user by its id; every showing of the picker has a new
// stateToken and the old one is refused.
func TestLoginFlowLoginForm(t *testing.T) {
	s := startServer(t, Options{Generation: 2, NextcloudLoginForm: true})
	pollToken, loginURL := ncStart(t, s)
	br := newNCBrowser(t)
	stateRE := regexp.MustCompile(`stateToken=(\w+)`)
	_, first := br.get(loginURL)
	_, second := br.get(loginURL)
	m1, m2 := stateRE.FindStringSubmatch(first), stateRE.FindStringSubmatch(second)
	if m1 == nil || m2 == nil || m1[1] == m2[1] {
		t.Fatalf("the picker's stateTokens: %v, %v", m1, m2)
	}
	if status, page := br.get(s.NextcloudURL() + ncGrantPath + "?stateToken=" + m1[1]); status != 403 || !strings.Contains(page, "State token does not match") {
		t.Fatalf("the first showing's stateToken: %d %s", status, page)
	}
	status, page := br.open(loginURL)
	if status != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("no login form: %d %s", status, page)
	}
	form := url.Values{"user": {"Alice"}, "password": {DefaultUser.Password}}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	status, page = br.post(s.NextcloudURL()+ncUserLoginPath, form)
	if status != 200 || !strings.Contains(page, "Currently logged in as "+DefaultUser.Name) {
		t.Fatalf("after the login: %d %s", status, page)
	}
	grant := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		grant.Set(m[1], m[2])
	}
	if status, _ := br.post(s.NextcloudURL()+ncGrantPath, grant); status != 200 {
		t.Fatalf("grant: %d", status)
	}
	status, creds := ncPoll(t, s, pollToken)
	password, _ := creds["appPassword"].(string)
	if status != 200 || creds["loginName"] != "Alice" {
		t.Fatalf("poll: %d %v", status, creds)
	}
	for _, login := range []string{"Alice", "alice", DefaultUser.Subject} {
		if got := ocsStatus(t, s, login, password); got != 200 {
			t.Errorf("OCS as %q: %d", login, got)
		}
	}
}

// TestNextcloudLayouts: Nextcloud on its own origin (the default, over
// http or https), or on the MCP server's; the server's tools and requests
// follow it.
func TestNextcloudLayouts(t *testing.T) {
	own := startServer(t, Options{Generation: 2, AutoApprove: true})
	if own.NextcloudURL() == own.URL() || !strings.HasPrefix(own.NextcloudURL(), "http://127.0.0.1:") {
		t.Errorf("own origin: %s (server %s)", own.NextcloudURL(), own.URL())
	}
	if status, _ := getPage(t, own.URL()+ncFlowPath+"x"); status != 404 {
		t.Errorf("the MCP server serves Nextcloud's pages too: %d", status)
	}
	same := startServer(t, Options{Generation: 2, AutoApprove: true, NextcloudSameOrigin: true})
	if same.NextcloudURL() != same.URL() {
		t.Errorf("same origin: %s (server %s)", same.NextcloudURL(), same.URL())
	}
	secure := startServer(t, Options{Generation: 2, AutoApprove: true, NextcloudTLS: true})
	if !strings.HasPrefix(secure.NextcloudURL(), "https://127.0.0.1:") || len(secure.NextcloudCACertPEM()) == 0 {
		t.Fatalf("https: %s", secure.NextcloudURL())
	}
	for _, s := range []*Server{own, same, secure} {
		cs := mustMCPSession(t, s, tokens(t, s).AccessToken)
		p := callTool(t, cs, ToolNCAuthProvision, nil)
		if loginURL, _ := p["login_url"].(string); !strings.HasPrefix(loginURL, s.NextcloudURL()+ncFlowPath) {
			t.Errorf("%s: login_url %v", s.NextcloudURL(), p["login_url"])
		}
	}
	if _, err := Start(Options{Generation: 2, NextcloudSameOrigin: true, NextcloudTLS: true}); err == nil {
		t.Error("https on the MCP server's origin was accepted")
	}
}
