package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// lockedKeyring is a keyring that refuses every call, as a locked one
// without a prompt does. A fake: the point is the fallback under Run's
// injected keyring, which a real locked keyring would show only in the
// end-to-end tests.
type lockedKeyring struct{}

var errLocked = errors.New("the collection is locked")

func (lockedKeyring) Get(string, string) (string, error) { return "", errLocked }
func (lockedKeyring) Set(string, string, string) error   { return errLocked }
func (lockedKeyring) Delete(string, string) error        { return errLocked }

// countingTransport is the real transport, counting the requests per host.
type countingTransport struct {
	mu    sync.Mutex
	hosts map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.hosts[r.URL.Host]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestRunUsesItsDeps runs 'ncmcp login' and 'ncmcp token' in-process
// against the dev server, with every outside part injected through Deps:
// the browser (a plain HTTP client: the dev IdP approves at once), the
// clock, the transport and a keyring that refuses.
func TestRunUsesItsDeps(t *testing.T) {
	srv, err := devserver.Start(devserver.Options{AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	dir := t.TempDir()
	env := map[string]string{"NCMCP_CONFIG_DIR": dir}
	clock := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	tr := &countingTransport{hosts: map[string]int{}}
	var opened []string
	browser := make(chan error, 1)
	deps := func(stdout, stderr *bytes.Buffer) Deps {
		return Deps{
			Stdout: stdout, Stderr: stderr, Stdin: strings.NewReader(""),
			Getenv:    func(k string) string { return env[k] },
			Keyring:   lockedKeyring{},
			Transport: tr,
			Now:       func() time.Time { return clock },
			OpenURL: func(u string) error {
				opened = append(opened, u)
				go func() {
					resp, err := http.Get(u)
					if err == nil {
						resp.Body.Close()
					}
					browser <- err
				}()
				return nil
			},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out, errs bytes.Buffer
	code := Run(ctx, []string{"login", "--server", srv.URL(), "--client-id", devserver.PublicClientID, "--timeout", "20s"}, deps(&out, &errs))
	if code != ExitOK {
		t.Fatalf("login: exit %d\n%s", code, errs.String())
	}
	if err := <-browser; err != nil {
		t.Fatalf("the browser's requests: %v", err)
	}
	if len(opened) != 1 || !strings.Contains(opened[0], "/start/") {
		t.Errorf("opened %q, want one start page of the listener", opened)
	}
	if !strings.Contains(errs.String(), "the OS keyring is not usable") || !strings.Contains(errs.String(), errLocked.Error()) {
		t.Errorf("no warning about the refused keyring:\n%s", errs.String())
	}
	if tr.hosts[strings.TrimPrefix(srv.URL(), "http://")] == 0 {
		t.Errorf("no request went through the injected transport: %v", tr.hosts)
	}
	cfg, err := store.LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Servers[srv.URL()]
	if s == nil || len(s.Accounts) != 1 {
		t.Fatalf("stored servers %v, want one account on %s", cfg.ServerURLs(), srv.URL())
	}
	for _, a := range s.Accounts {
		if !a.LoggedInAt.Equal(clock) {
			t.Errorf("logged in at %s, want the injected clock's %s", a.LoggedInAt, clock)
		}
		if a.Storage != store.BackendFile {
			t.Errorf("tokens in %q, want the file after the keyring refused", a.Storage)
		}
	}

	// The stored token expires about an hour after issuance (real time);
	// the injected clock is years later, so 'ncmcp token' must refresh.
	before := srv.TokenRequests("refresh_token")
	out.Reset()
	errs.Reset()
	if code := Run(ctx, []string{"token"}, deps(&out, &errs)); code != ExitOK {
		t.Fatalf("token: exit %d\n%s", code, errs.String())
	}
	if srv.TokenRequests("refresh_token") != before+1 {
		t.Errorf("token requests %d, want %d: the injected clock says the token expired", srv.TokenRequests("refresh_token"), before+1)
	}
	if strings.TrimSpace(out.String()) == "" {
		t.Error("no token on stdout")
	}
}
