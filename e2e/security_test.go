package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
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

// hostile is a server of the test's own in front of a dev server: it
// passes requests on and rewrites the dev server's URL to its own in the
// answers (so that its metadata names it), except where override answers
// a request itself, as a hostile or broken server would.
type hostile struct {
	*httptest.Server
	dev *devserver.Server
}

func newHostile(t *testing.T, dev *devserver.Server, override func(w http.ResponseWriter, r *http.Request) bool) *hostile {
	t.Helper()
	h := &hostile{dev: dev}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if override != nil && override(w, r) {
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, dev.URL()+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		// It passes itself off as the server: its own URL replaces the
		// server's in headers (Location, WWW-Authenticate) and bodies.
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, strings.ReplaceAll(v, dev.URL(), h.URL))
			}
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(flushWriter{w}, resp.Body)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		b = bytes.ReplaceAll(b, []byte(dev.URL()), []byte(h.URL))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
	}))
	h.Start()
	t.Cleanup(h.Close)
	return h
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.w.(http.Flusher).Flush()
	return n, err
}

// catcher records every request that reaches it: the place a hostile
// server tries to send secrets to.
type catcher struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newCatcher(t *testing.T) *catcher {
	c := &catcher{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.seen = append(c.seen, fmt.Sprintf("%s %s auth=%q sid=%q body=%q", r.Method, r.URL, r.Header.Get("Authorization"), r.Header.Get("Mcp-Session-Id"), b))
		c.mu.Unlock()
		http.Error(w, "caught", http.StatusTeapot)
	}))
	c.Start()
	t.Cleanup(c.Close)
	return c
}

// leaked returns what the catcher saw that holds one of the secrets.
func (c *catcher) leaked(secrets ...string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.seen {
		for _, secret := range secrets {
			if secret != "" && strings.Contains(s, secret) {
				out = append(out, s)
			}
		}
	}
	return out
}

// otherOrigin is the catcher's URL on another host name for the same
// listener: another origin for the browser and for ncmcp.
func (c *catcher) otherOrigin() string { return strings.Replace(c.URL, "127.0.0.1", "localhost", 1) }

// TestBearerNeverLeavesTheServer: an MCP endpoint that redirects to another
// origin (307) does not get the token sent there, by provision or status.
func TestBearerNeverLeavesTheServer(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	c := newCatcher(t)
	h := newHostile(t, dev, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/mcp" {
			http.Redirect(w, r, c.otherOrigin()+"/mcp", http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun("login", "--server", h.URL, "--client-id", devserver.PublicClientID)
	tok := tokensInFile(t, e, h.URL, devserver.DefaultUser.Subject)
	e.expectCode(1, "", "provision", "--timeout", "10s")
	if ss := serverSide(t, e); ss.State != "unknown" {
		t.Fatalf("status: %+v", ss)
	}
	if l := c.leaked(tok.AccessToken); len(l) > 0 {
		t.Fatalf("the token reached another origin:\n%s", strings.Join(l, "\n"))
	}
}

// TestSecretsNeverFollowRedirects: a token endpoint that answers 307 to
// another origin does not receive the refresh token there (nor does a
// revocation endpoint), and what is stored stays as it was.
func TestSecretsNeverFollowRedirects(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := loggedIn(t, dev)
	before := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	c := newCatcher(t)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, c.otherOrigin()+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)

	setTokenEndpoint(t, e, dev.URL(), redirector.URL+"/token")
	r := e.expectCode(1, "refusing to follow a redirect", "token", "--min-ttl", "2h")
	if !strings.Contains(r.Stderr, "stored tokens are unchanged") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	cfg := loadConfig(t, e)
	cfg.Servers[dev.URL()].RevocationEndpoint = redirector.URL + "/revoke"
	if err := store.SaveConfig(e.configDir(), cfg); err != nil {
		t.Fatal(err)
	}
	e.expectCode(1, "NOT revoked", "tokens", "revoke")
	if l := c.leaked(before.RefreshToken, before.AccessToken); len(l) > 0 {
		t.Fatalf("secrets reached another origin:\n%s", strings.Join(l, "\n"))
	}
	if after := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject); after != before {
		t.Fatal("the stored tokens changed")
	}
}

// TestTerminatedMidRefresh: ncmcp token stopped with SIGTERM after the IdP
// has rotated the refresh token, before the answer arrives, still stores
// the rotated token: the next call works (the old one is dead at an IdP that
// rotates on every refresh).
func TestTerminatedMidRefresh(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, RefreshReuseInterval: -1})
	e := loggedIn(t, dev)
	before := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	answered := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(http.MethodPost, dev.IssuerURL()+"/token", bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- struct{}{} // the IdP has rotated the refresh token
		<-release
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
	}))
	t.Cleanup(slow.Close)
	setTokenEndpoint(t, e, dev.URL(), slow.URL+"/token")

	p := e.start("token", "--min-ttl", "2h")
	select {
	case <-answered:
	case <-time.After(30 * time.Second):
		t.Fatal("the refresh never reached the IdP")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	close(release)
	p.wait(t)
	setTokenEndpoint(t, e, dev.URL(), dev.IssuerURL()+"/token")
	after := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	if after.RefreshToken == before.RefreshToken {
		t.Fatal("the rotated refresh token was lost")
	}
	if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)) {
		t.Fatal("the next refresh failed")
	}
}

// TestBrowserNeverGetsTheAuthorizationRequest: the browser's command line,
// which every user of the machine can read, holds only the listener's
// one-time start page: no state, nonce or challenge. A second use of that
// page stops the login, visibly, and nothing is stored.
func TestBrowserNeverGetsTheAuthorizationRequest(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	log := filepath.Join(t.TempDir(), "browser.log")
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_E2E_BROWSER_LOG", log)
	e.mustRun(loginArgs(dev)...)
	b := browserLog(t, log)
	first, _, _ := strings.Cut(b, "\n")
	opened := strings.TrimPrefix(first, "open ")
	if !strings.HasPrefix(opened, "http://127.0.0.1:") || !strings.Contains(opened, "/start/") {
		t.Fatalf("the browser was given %q", opened)
	}
	for _, secret := range []string{"state", "nonce", "code_challenge", "redirect_uri", dev.URL()} {
		if strings.Contains(opened, secret) {
			t.Fatalf("the browser's argument holds %q: %s", secret, opened)
		}
	}

	// Someone else uses the link first; the browser's visit is the second.
	e2 := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_E2E_STEAL_FIRST", "1")
	r := e2.expectCode(1, "the login link was opened twice", loginArgs(dev)...)
	if strings.Contains(r.Stderr, "Logged in") {
		t.Fatal("logged in although the link was taken")
	}
	assertNothingStored(t, e2, nil)
}

// TestConfigOfOthersRefused: a config directory other users can write to,
// or one that belongs to another user, is refused with the fix named, and
// nothing is read from it.
func TestConfigOfOthersRefused(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := loggedIn(t, dev)
	if err := os.Chmod(e.configDir(), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	e.expectCode(1, "chmod go-w", "token")
	if err := os.Chmod(e.configDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	e.mustRun("token")
	if os.Getuid() != 0 {
		need(t, "root", "giving the directory to another user needs root")
	}
	if err := os.Chown(e.configDir(), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	e.expectCode(1, "belongs to another user (uid 65534)", "token")
}

// TestProvisionBoundedByTimeout: an MCP endpoint that answers with an event
// stream and then only keep-alives cannot hold provision past --timeout.
func TestProvisionBoundedByTimeout(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	h := newHostile(t, dev, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/mcp" {
			return false
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return true
			case <-r.Context().Done():
				return true
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun("login", "--server", h.URL, "--client-id", devserver.PublicClientID)
	start := time.Now()
	e.expectCode(8, "did not confirm its access within 2s", "provision", "--timeout", "2s")
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("provision took %s", d)
	}
}

// TestNoEscapeSequencesFromServers: text from a hostile server (an error
// description, an error page) reaches the terminal without its control
// characters.
func TestNoEscapeSequencesFromServers(t *testing.T) {
	t.Parallel()
	const evil = "\x1b]0;pwned\x07\x1b[2J\x1b[31mgone\u009b1A\u202e"
	dev := startDev(t, devserver.Options{AutoApprove: true})
	h := newHostile(t, dev, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/oauth/authorize" && r.URL.Query().Get("redirect_uri") != "" {
			// The refusal comes back through the browser to the callback.
			q := r.URL.Query()
			back := url.Values{"error": {"invalid_request"}, "error_description": {"bad " + evil + " request"}, "state": {q.Get("state")}}
			http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
			return true
		}
		return false
	})
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("oops " + evil))
	}))
	t.Cleanup(broken.Close)
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	for _, args := range [][]string{
		{"login", "--server", h.URL, "--client-id", devserver.PublicClientID},
		{"login", "--server", broken.URL, "--client-id", "x"},
		{"doctor", "--server", broken.URL},
	} {
		r := e.expectCode(1, "", args...)
		if !strings.Contains(r.Stderr, "gone") {
			t.Errorf("%v: the server's text is missing:\n%q", args, r.Stderr)
		}
		for _, c := range []string{"\x1b", "\x07", "\u009b", "\u202e"} {
			if strings.Contains(r.Stderr+r.Stdout, c) {
				t.Fatalf("%v: %q reached the terminal:\n%q", args, c, r.Stderr)
			}
		}
	}
}
