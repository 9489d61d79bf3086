package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// requestLog collects the dev server's per-request lines.
type requestLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *requestLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// count returns how many lines contain s.
func (l *requestLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// waitRefused waits until the dev server refuses the token at its MCP
// endpoint: the token has really expired there.
func waitRefused(t *testing.T, dev *devserver.Server, token string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for mcpAccepts(t, dev, token) {
		if time.Now().After(deadline) {
			t.Fatal("the dev server still accepts the token after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestProxyRenewsARefusedToken: a token that ncmcp believes valid (its
// stored expiry is an hour late, as with a clock behind the server's) but
// that the dev server refuses as expired (401) is renewed by the proxy,
// and the host's call succeeds.
func TestProxyRenewsARefusedToken(t *testing.T) {
	t.Parallel()
	var reqs requestLog
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2, AccessTokenTTL: 2 * time.Second, Logf: reqs.logf})
	e := loggedIn(t, dev)
	st := store.New(e.configDir(), store.ModeFile, nil, 0)
	tok := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	tok.Expiry = tok.Expiry.Add(time.Hour)
	if err := st.PutTokensIn("file", dev.URL(), devserver.DefaultUser.Subject, &tok); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, dev, tok.AccessToken)
	refused, refreshes := reqs.count("/mcp -> 401"), dev.TokenRequests("refresh_token")
	h, err := proxyHost(t, e, "--server", dev.URL(), "--no-login")
	if err != nil {
		t.Fatal(err)
	}
	if res := h.call(t, devserver.ToolNCAuthCheck, nil); res.IsError {
		t.Fatalf("a call with the expired token: %s\nproxy stderr:\n%s", text(res), h.stderr)
	}
	if n := reqs.count("/mcp -> 401") - refused; n != 1 {
		t.Errorf("%d refusals at /mcp, want the expired token's one", n)
	}
	if n := dev.TokenRequests("refresh_token") - refreshes; n != 1 {
		t.Errorf("%d refreshes after the 401, want 1", n)
	}
}

// TestProxyLogsInAgainWhenTheTokenCannotBeRenewed: with no refresh token
// (servers that issue none), the token is used until it expires; then
// the proxy logs in again in the browser, and the host's call succeeds.
func TestProxyLogsInAgainWhenTheTokenCannotBeRenewed(t *testing.T) {
	t.Parallel()
	// A token renewed within the last quarter of its life must outlast
	// the login, the proxy's start and the first call: 10 s leaves 7.5.
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2, AccessTokenTTL: 10 * time.Second})
	e := loggedIn(t, dev).set("NCMCP_E2E_BROWSER_LOG", t.TempDir()+"/browser.log")
	st := store.New(e.configDir(), store.ModeFile, nil, 0)
	tok := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	tok.RefreshToken = ""
	if err := st.PutTokensIn("file", dev.URL(), devserver.DefaultUser.Subject, &tok); err != nil {
		t.Fatal(err)
	}
	h, err := proxyHost(t, e, "--server", dev.URL(), "--client-id", devserver.PublicClientID)
	if err != nil {
		t.Fatal(err)
	}
	if res := h.call(t, devserver.ToolNCAuthCheck, nil); res.IsError {
		t.Fatalf("first call: %s\nproxy stderr:\n%s", text(res), h.stderr)
	}
	if n := dev.TokenRequests("authorization_code"); n != 1 {
		t.Fatalf("%d logins before the token expired, want the first only\nproxy stderr:\n%s", n, h.stderr)
	}
	time.Sleep(time.Until(tok.Expiry) + 100*time.Millisecond)
	if res := h.call(t, devserver.ToolNCAuthCheck, nil); res.IsError {
		t.Fatalf("a call after the token expired: %+v\nproxy stderr:\n%s", res, h.stderr)
	}
	if n := dev.TokenRequests("authorization_code"); n != 2 {
		t.Errorf("%d logins, want a second one at expiry\nproxy stderr:\n%s", n, h.stderr)
	}
	if n := dev.TokenRequests("refresh_token"); n != 0 {
		t.Errorf("%d refreshes without a refresh token", n)
	}
}

// TestProxyReRegistersWhenTheServerForgetsItsClients: the authorization
// server restarts and forgets its registered clients and their tokens;
// the proxy registers a new client, logs in with it, and the host's call
// succeeds.
func TestProxyReRegistersWhenTheServerForgetsItsClients(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 1, LoginFlowTools: true, ForgetClientsOnRestart: true})
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_E2E_BROWSER_LOG", t.TempDir()+"/browser.log")
	e.mustRun("login", "--server", dev.URL())
	if dev.Registrations() != 1 {
		t.Fatalf("%d registrations at the first login, want 1", dev.Registrations())
	}
	h, err := proxyHost(t, e, "--server", dev.URL())
	if err != nil {
		t.Fatal(err)
	}
	if res := h.call(t, devserver.ToolNCAuthCheck, nil); res.IsError {
		t.Fatalf("first call: %s\nproxy stderr:\n%s", text(res), h.stderr)
	}
	dev.RestartServer()
	if res := h.call(t, devserver.ToolNCAuthCheck, nil); res.IsError {
		t.Fatalf("a call after the server forgot its clients: %+v\nproxy stderr:\n%s", res, h.stderr)
	}
	if dev.Registrations() != 2 {
		t.Errorf("%d registrations, want a new one after the restart\nproxy stderr:\n%s", dev.Registrations(), h.stderr)
	}
	if !strings.Contains(h.stderr.String(), "registered a new one") {
		t.Errorf("the proxy's log does not say what happened:\n%s", h.stderr)
	}
}

// TestProxyStreamRedirectedElsewhere: the server answers the standalone
// stream's GET with a redirect to another origin; the proxy follows it
// without the token and without the session id.
func TestProxyStreamRedirectedElsewhere(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	c := newCatcher(t)
	h := newHostile(t, dev, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/mcp" && r.Method == http.MethodGet {
			http.Redirect(w, r, c.otherOrigin()+"/mcp", http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun("login", "--server", h.URL, "--client-id", devserver.PublicClientID)
	host, err := proxyHost(t, e, "--server", h.URL, "--no-login")
	if err != nil {
		t.Fatal(err)
	}
	if res := host.call(t, devserver.ToolNCAuthCheck, nil); res.IsError {
		t.Fatalf("call: %s", text(res))
	}
	deadline := time.Now().Add(10 * time.Second)
	var gets []string
	for len(gets) == 0 && time.Now().Before(deadline) {
		c.mu.Lock()
		for _, s := range c.seen {
			if strings.HasPrefix(s, "GET ") {
				gets = append(gets, s)
			}
		}
		c.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	if len(gets) == 0 {
		t.Fatalf("the redirected GET never reached the other origin\nproxy stderr:\n%s", host.stderr)
	}
	for _, g := range gets {
		if !strings.Contains(g, `auth="" sid=""`) {
			t.Errorf("the other origin got: %s", g)
		}
	}
}
