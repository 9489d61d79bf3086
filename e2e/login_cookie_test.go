package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

// TestBrowserMakesTheOneAuthorizationRequest: the authorization request is
// made once per login, by the browser (RFC 8252: in the external user
// agent), so that the authorization server sees the browser's cookies
// (single sign-on) and no code is issued that nobody redeems. ncmcp never
// makes it, not even where the authorization endpoint sets a cookie, as
// an authorization server that keeps a login session does.
func TestBrowserMakesTheOneAuthorizationRequest(t *testing.T) {
	t.Parallel()
	for _, gen := range []int{1, 2} {
		t.Run(fmt.Sprintf("generation %d", gen), func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true, Generation: gen})
			var (
				mu     sync.Mutex
				agents []string // the User-Agent of each authorization request
			)
			h := newHostile(t, dev, func(w http.ResponseWriter, r *http.Request) bool {
				// Only authorization requests: discovery's generation probe
				// (generation 1) is a GET of the route without parameters.
				if r.URL.Path == "/oauth/authorize" && r.URL.Query().Get("response_type") != "" {
					mu.Lock()
					agents = append(agents, r.UserAgent())
					n := len(agents)
					mu.Unlock()
					http.SetCookie(w, &http.Cookie{Name: "as_session", Value: fmt.Sprint("session-", n), Path: "/", HttpOnly: true})
				}
				return false // passed on to the dev server, cookie and all
			})
			dir := t.TempDir()
			e := newEnv(t).set("NCMCP_STORAGE", "file")
			for login := 1; login <= 2; login++ {
				log := filepath.Join(dir, fmt.Sprintf("browser-%d.log", login))
				e.set("NCMCP_E2E_BROWSER_LOG", log)
				r := e.mustRun("login", "--debug", "--server", h.URL, "--client-id", devserver.PublicClientID)
				// ncmcp returns once the callback arrived, maybe before the
				// browser has finished: wait for it, so that every request
				// it made has been counted.
				b := browserLog(t, log)
				if !strings.Contains(b, "final: 200 /callback") {
					t.Fatalf("login %d: the browser did not end on the callback:\n%s", login, b)
				}
				mu.Lock()
				got := slices.Clone(agents)
				agents = nil
				mu.Unlock()
				t.Logf("login %d: browser log:\n%s\nauthorization requests by User-Agent %q", login, b, got)
				if len(got) != 1 || got[0] != browserUserAgent {
					t.Fatalf("login %d: authorization requests by %q, want exactly one, by the browser (%q)", login, got, browserUserAgent)
				}
				for _, line := range strings.Split(r.Stderr, "\n") {
					if strings.HasPrefix(line, "debug: > ") && strings.Contains(line, "/oauth/authorize?") {
						t.Errorf("login %d: ncmcp requested the authorization endpoint itself: %s", login, line)
					}
				}
			}
		})
	}
}
