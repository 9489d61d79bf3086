package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// ncmcpBin is the ncmcp binary built for this test run.
var ncmcpBin string

// browserRole makes the test binary act as a browser that follows redirects
// (set in the environment of the ncmcp processes that launch it).
const browserRole = "NCMCP_E2E_ROLE"

func TestMain(m *testing.M) {
	if os.Getenv(browserRole) == "browser" {
		os.Exit(followRedirects(os.Args[len(os.Args)-1]))
	}
	// The in-process OP logs every refused request; the tests assert on
	// ncmcp's output instead.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	dir, err := os.MkdirTemp("", "ncmcp-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ncmcpBin = filepath.Join(dir, "ncmcp")
	build := exec.Command("go", "build", "-o", ncmcpBin, "github.com/ncmcp/ncmcp/cmd/ncmcp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ncmcp:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// followRedirects is the redirect-following browser: it GETs the URL and
// every redirect (server, IdP, login, loopback callback) like a browser with
// an auto-approving IdP would, with a cookie jar and the User-Agent
// browserUserAgent. The environment adds test behaviour:
//   - NCMCP_E2E_BROWSER_LOG: a file that gets one line per event;
//   - NCMCP_E2E_FORGE_FIRST=1: first deliver a forged callback (wrong state);
//   - NCMCP_E2E_FORGE_ONLY=1: deliver only the forged callback;
//   - NCMCP_E2E_BEFORE_CALLBACK: a URL to GET just before the callback hop;
//   - NCMCP_E2E_STOP_BEFORE_CALLBACK: a file to write the callback URL to,
//     instead of opening it;
//   - NCMCP_E2E_LOGIN_AS=user:password: fill in the IdP's login form;
//   - NCMCP_E2E_STEAL_FIRST=1: someone else visits the URL first;
//   - NCMCP_E2E_BROWSER_CA: a PEM CA certificate the browser trusts.
func followRedirects(u string) int {
	logf := func(format string, args ...any) {
		if p := os.Getenv("NCMCP_E2E_BROWSER_LOG"); p != "" {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err == nil {
				fmt.Fprintf(f, format+"\n", args...)
				f.Close()
			}
		}
	}
	logf("open %s", u)
	// Like a browser: cookies (Nextcloud's Login Flow pages need them),
	// and the CA of a test Nextcloud's https certificate trusted.
	jar, _ := cookiejar.New(nil)
	var rt http.RoundTripper = http.DefaultTransport
	if ca := os.Getenv("NCMCP_E2E_BROWSER_CA"); ca != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(ca))
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool}
		rt = t
	}
	c := &http.Client{Timeout: 60 * time.Second, Jar: jar, Transport: asBrowser{rt}}
	forge := os.Getenv("NCMCP_E2E_FORGE_FIRST") == "1" || os.Getenv("NCMCP_E2E_FORGE_ONLY") == "1"
	if forge {
		au, err := url.Parse(u)
		if err != nil {
			return 1
		}
		// The browser is given the listener's start page: its callback is
		// on the same origin.
		cb := au.Scheme + "://" + au.Host + "/callback?code=forged-code&state=forged-state"
		resp, err := c.Get(cb)
		if err != nil {
			logf("forged callback: %v", err)
			return 1
		}
		resp.Body.Close()
		logf("forged callback: %d", resp.StatusCode)
		if os.Getenv("NCMCP_E2E_FORGE_ONLY") == "1" {
			return 0
		}
	}
	if os.Getenv("NCMCP_E2E_STEAL_FIRST") == "1" {
		// Someone else uses the link before this browser does.
		thief := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if resp, err := thief.Get(u); err == nil {
			resp.Body.Close()
			logf("stolen: %d", resp.StatusCode)
		}
	}
	if keep := os.Getenv("NCMCP_E2E_STOP_BEFORE_CALLBACK"); keep != "" {
		// A browser on another machine: the loopback is out of reach, and
		// the user copies the address it ends on.
		c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if req.URL.Path == "/callback" && req.URL.Hostname() == "127.0.0.1" {
				_ = os.WriteFile(keep, []byte(req.URL.String()), 0o600)
				logf("stopped before the callback")
				return http.ErrUseLastResponse
			}
			return nil
		}
	}
	if hook := os.Getenv("NCMCP_E2E_BEFORE_CALLBACK"); hook != "" {
		c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if req.URL.Path == "/callback" && req.URL.Hostname() == "127.0.0.1" {
				if resp, err := http.Get(hook); err == nil {
					resp.Body.Close()
				}
				logf("hook called")
			}
			return nil
		}
	}
	resp, err := c.Get(u)
	if err != nil {
		logf("error: %v", err)
		return 1
	}
	if who := os.Getenv("NCMCP_E2E_LOGIN_AS"); who != "" && resp.Request.URL.Path == "/login" {
		// The IdP shows its login form: fill it in as a person would.
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="id" value="([^"]+)"`).FindSubmatch(page)
		if m == nil {
			logf("no login form")
			return 1
		}
		user, pass, _ := strings.Cut(who, ":")
		form := url.Values{"id": {string(m[1])}, "username": {user}, "password": {pass}, "action": {"approve"}}
		if resp, err = c.PostForm(resp.Request.URL.String(), form); err != nil {
			logf("error: %v", err)
			return 1
		}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	logf("final: %d %s", resp.StatusCode, resp.Request.URL.Path)
	return 0
}

// browserUserAgent is the User-Agent of every request of the test browser:
// a server of a test tells the browser's requests from ncmcp's (whose Go
// client would otherwise send the same Go-http-client).
const browserUserAgent = "ncmcp-e2e-browser/1"

// asBrowser sends requests with the test browser's User-Agent.
type asBrowser struct{ next http.RoundTripper }

func (b asBrowser) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", browserUserAgent)
	return b.next.RoundTrip(r)
}

// browserLog returns the log of the test browsers that logged to path,
// once every one of them has finished: ncmcp starts the browser and does
// not wait for it, so the browser may still run (or not have logged yet)
// when ncmcp exits. Browsers are found by their environment, which holds
// the log's path.
func browserLog(t testing.TB, path string) string {
	t.Helper()
	marker := []byte("NCMCP_E2E_BROWSER_LOG=" + path + "\x00")
	deadline := time.Now().Add(60 * time.Second)
	for {
		running := false
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ")); err == nil && bytes.Contains(env, marker) {
				running = true
				break
			}
		}
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a test browser logging to %s is still running after 60s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	return string(b)
}

// need skips t when a part is missing, or fails it when NCMCP_TEST_REQUIRE
// names that part.
func need(t testing.TB, part, why string) {
	t.Helper()
	if slices.Contains(strings.Split(os.Getenv("NCMCP_TEST_REQUIRE"), ","), part) {
		t.Fatalf("%s is required (NCMCP_TEST_REQUIRE) but not available: %s", part, why)
	}
	t.Skipf("skipping: %s not available: %s (set NCMCP_TEST_REQUIRE=%s to make this a failure)", part, why, part)
}

// result is one finished ncmcp process.
type result struct {
	Stdout, Stderr string
	Code           int
}

// env is the environment of ncmcp processes in a test: an empty config
// directory, no real browser or keyring unless the test adds one.
type env struct {
	t    testing.TB
	vars map[string]string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	home := t.TempDir()
	return &env{t: t, vars: map[string]string{
		"PATH":                     os.Getenv("PATH"),
		"HOME":                     home,
		"NCMCP_CONFIG_DIR":         filepath.Join(home, "config"),
		"XDG_RUNTIME_DIR":          home,
		"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/ncmcp-e2e-no-bus",
		"NCMCP_BROWSER":            os.Args[0],
		browserRole:                "browser",
		"NCMCP_KEYRING_TIMEOUT":    "3s",
	}}
}

func (e *env) set(k, v string) *env { e.vars[k] = v; return e }

func (e *env) configDir() string { return e.vars["NCMCP_CONFIG_DIR"] }

func (e *env) list() []string {
	var out []string
	for k, v := range e.vars {
		out = append(out, k+"="+v)
	}
	return out
}

// run runs ncmcp with args and returns its output and exit code.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runIn(nil, args...)
}

func (e *env) runIn(stdin io.Reader, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ncmcpBin, args...)
	cmd.Env = e.list()
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		e.t.Fatalf("run ncmcp %v: %v", args, err)
	}
	e.t.Logf("ncmcp %s -> exit %d\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stderr)
	return r
}

// start runs ncmcp in the background with a pipe on its stdin.
func (e *env) start(args ...string) *running {
	e.t.Helper()
	cmd := exec.Command(ncmcpBin, args...)
	cmd.Env = e.list()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	r := &running{cmd: cmd, Stdin: stdin}
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = cmd.Process.Kill() })
	return r
}

// running is an ncmcp process started by env.start.
type running struct {
	cmd            *exec.Cmd
	Stdin          io.WriteCloser
	stdout, stderr bytes.Buffer
}

// wait waits for the process and returns its result.
func (r *running) wait(t *testing.T) result {
	t.Helper()
	err := r.cmd.Wait()
	res := result{Stdout: r.stdout.String(), Stderr: r.stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("ncmcp %s -> exit %d\nstderr:\n%s", strings.Join(r.cmd.Args[1:], " "), res.Code, res.Stderr)
	return res
}

// mustRun runs ncmcp and fails the test unless it exits 0.
func (e *env) mustRun(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.Code != 0 {
		e.t.Fatalf("ncmcp %v: exit %d\n%s", args, r.Code, r.Stderr)
	}
	return r
}

// expectCode runs ncmcp and checks the exit code and that stderr contains want.
func (e *env) expectCode(code int, want string, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.Code != code {
		e.t.Fatalf("ncmcp %v: exit %d, want %d\nstderr:\n%s", args, r.Code, code, r.Stderr)
	}
	if want != "" && !strings.Contains(r.Stderr, want) {
		e.t.Fatalf("ncmcp %v: stderr does not say %q:\n%s", args, want, r.Stderr)
	}
	return r
}

func isLinux() bool { return runtime.GOOS == "linux" }
