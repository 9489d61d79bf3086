package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ncmcp/ncmcp/pkg/devserver"
)

// syncBuffer is a bytes.Buffer safe for a process's writes and a test's
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sdkHost is the official Go SDK's MCP client with 'ncmcp proxy' as its
// stdio server, as an MCP client application runs it.
type sdkHost struct {
	cs       *mcp.ClientSession
	stderr   *syncBuffer
	progress chan string
}

func proxyHost(t *testing.T, e *env, args ...string) (*sdkHost, error) {
	t.Helper()
	cmd := exec.Command(ncmcpBin, append([]string{"proxy"}, args...)...)
	cmd.Env = e.list()
	h := &sdkHost{stderr: &syncBuffer{}, progress: make(chan string, 8)}
	cmd.Stderr = h.stderr
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-host", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"acknowledged": true}}, nil
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			h.progress <- req.Params.Message
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		return h, fmt.Errorf("%w\nproxy stderr:\n%s", err, h.stderr)
	}
	h.cs = cs
	t.Cleanup(func() { _ = cs.Close() })
	return h, nil
}

func (h *sdkHost) call(t *testing.T, name string, meta mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := h.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}, Meta: meta})
	if err != nil {
		t.Fatalf("tools/call %s through the proxy: %v\nproxy stderr:\n%s", name, err, h.stderr)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestProxyWithTheGoSDK: an MCP client of the official Go SDK reaches both
// generations through 'ncmcp proxy': initialize, tools/list, tools/call, a
// notification of the server's, and (generation 2) an elicitation round
// trip; the token that expires during the session and a restart of the
// server are invisible to the client.
func TestProxyWithTheGoSDK(t *testing.T) {
	t.Parallel()
	for _, gen := range []int{1, 2} {
		t.Run(fmt.Sprintf("generation %d", gen), func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true, Generation: gen, LoginFlowTools: true, ToolProgress: true, AccessTokenTTL: 3 * time.Second})
			e := loggedIn(t, dev)
			h, err := proxyHost(t, e, "--server", dev.URL(), "--no-login")
			if err != nil {
				t.Fatal(err)
			}
			if info := h.cs.InitializeResult().ServerInfo; info.Name != "Nextcloud MCP" {
				t.Errorf("serverInfo %+v", info)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tools, err := h.cs.ListTools(ctx, nil)
			if err != nil || len(tools.Tools) == 0 {
				t.Fatalf("tools/list: %v, %v", tools, err)
			}
			res := h.call(t, devserver.ToolNCAuthCheck, mcp.Meta{"progressToken": "p1"})
			if res.IsError || !strings.Contains(text(res), "status") {
				t.Errorf("nc_auth_check_status: %+v", res)
			}
			select {
			case m := <-h.progress:
				if m != "running "+devserver.ToolNCAuthCheck {
					t.Errorf("progress %q", m)
				}
			case <-time.After(10 * time.Second):
				t.Error("the server's progress notification did not reach the client")
			}

			// The access token lives 3 s: once it has expired, a call
			// still succeeds, with a refresh and no error seen.
			refreshes := dev.TokenRequests("refresh_token")
			expiry := loadConfig(t, e).Servers[dev.URL()].Accounts[devserver.DefaultUser.Subject].AccessTokenExpiry
			time.Sleep(time.Until(expiry) + 100*time.Millisecond)
			if res := h.call(t, devserver.ToolNCAuthCheck, nil); res.IsError {
				t.Errorf("a call after the token expired: %+v", res)
			}
			if dev.TokenRequests("refresh_token") == refreshes {
				t.Error("the expired token was not refreshed")
			}

			// The server restarts: its sessions are gone.
			dev.RestartServer()
			if res := h.call(t, devserver.ToolNCAuthCheck, nil); res.IsError {
				t.Errorf("a call after the restart: %+v", res)
			}
			if !strings.Contains(h.stderr.String(), "began a new one") {
				t.Errorf("the new session is not in the log:\n%s", h.stderr)
			}

			if gen == 2 {
				// The server asks the client (elicitation) while it starts
				// Login Flow v2; the client's answer reaches the server.
				h.call(t, devserver.ToolNCAuthProvision, nil)
				if n := dev.Elicitations("form", "accept"); n != 1 {
					t.Errorf("%d accepted form elicitations at the server, want 1\nproxy stderr:\n%s", n, h.stderr)
				}
			}
		})
	}
}

// TestProxiesStartingTogether: eight MCP client sessions start their
// proxies at once with no login stored: one browser login happens, and
// every one of them connects and lists the tools.
func TestProxiesStartingTogether(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_E2E_BROWSER_LOG", t.TempDir()+"/browser.log")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	hosts := make([]*sdkHost, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := proxyHost(t, e, "--server", dev.URL(), "--client-id", devserver.PublicClientID)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err = h.cs.ListTools(ctx, nil)
			}
			hosts[i], errs[i] = h, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	// The proxies share the browser's environment: they must be gone
	// before the browser log is read.
	for _, h := range hosts {
		if h != nil && h.cs != nil {
			_ = h.cs.Close()
		}
	}
	if got := strings.Count(browserLog(t, e.vars["NCMCP_E2E_BROWSER_LOG"]), "open "); got != 1 {
		t.Errorf("%d browser windows opened, want 1", got)
	}
	if got := dev.TokenRequests("authorization_code"); got != 1 {
		t.Errorf("%d code exchanges, want 1", got)
	}
}

// TestProxyNoLogin: without a login and with --no-login, a request gets a
// JSON-RPC error that says what to do, and no browser opens.
func TestProxyNoLogin(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	_, err := proxyHost(t, e, "--server", dev.URL(), "--no-login")
	if err == nil || !strings.Contains(err.Error(), "ncmcp login") {
		t.Fatalf("connect without a login: %v, want an error naming 'ncmcp login'", err)
	}
	if got := dev.TokenRequests("authorization_code"); got != 0 {
		t.Errorf("%d code exchanges with --no-login", got)
	}
}

// nodeClients returns the node binary and a node_modules directory with
// the official TypeScript SDK (and mcp-remote), as .ci/run installs them
// (NCMCP_TEST_NODE, NCMCP_TEST_NODE_MODULES); the test skips, or fails
// when NCMCP_TEST_REQUIRE names node, without them.
func nodeClients(t testing.TB) (node, modules string) {
	t.Helper()
	node, modules = os.Getenv("NCMCP_TEST_NODE"), os.Getenv("NCMCP_TEST_NODE_MODULES")
	if node == "" || modules == "" {
		need(t, "node", "NCMCP_TEST_NODE and NCMCP_TEST_NODE_MODULES are not set (bash .ci/run installs Node 22, @modelcontextprotocol/sdk and mcp-remote from npm)")
	}
	if _, err := os.Stat(filepath.Join(modules, "@modelcontextprotocol", "sdk")); err != nil {
		need(t, "node", "no @modelcontextprotocol/sdk in "+modules)
	}
	return node, modules
}

// TestProxyWithTheTypeScriptSDK: an MCP client of the official TypeScript
// SDK reaches both generations through 'ncmcp proxy'.
func TestProxyWithTheTypeScriptSDK(t *testing.T) {
	t.Parallel()
	node, modules := nodeClients(t)
	script, err := os.ReadFile("testdata/ts-host.mjs")
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range []int{1, 2} {
		t.Run(fmt.Sprintf("generation %d", gen), func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true, Generation: gen, LoginFlowTools: true, ToolProgress: true})
			e := loggedIn(t, dev)
			// ES modules resolve packages from the script's directory.
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "host.mjs"), script, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "host.mjs"), ncmcpBin, "--server", dev.URL(), "--no-login")
			cmd.Env = append(e.list(), "TS_HOST_ELICIT="+map[bool]string{true: "1", false: "0"}[gen == 2])
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("the TypeScript host: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			var out struct {
				Server struct {
					Name string `json:"name"`
				} `json:"server"`
				Tools    []string `json:"tools"`
				Text     string   `json:"text"`
				IsError  bool     `json:"isError"`
				Progress []string `json:"progress"`
				Elicited int      `json:"elicited"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
				t.Fatalf("host output %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
			}
			if out.Server.Name != "Nextcloud MCP" || !slices.Contains(out.Tools, devserver.ToolNCAuthCheck) || out.IsError || !strings.Contains(out.Text, "status") {
				t.Errorf("the host saw %+v", out)
			}
			if len(out.Progress) != 1 || out.Progress[0] != "running "+devserver.ToolNCAuthCheck {
				t.Errorf("progress notifications %q", out.Progress)
			}
			if gen == 2 && (out.Elicited != 1 || dev.Elicitations("form", "accept") != 1) {
				t.Errorf("elicitation: the host answered %d, the server counted %d accepts", out.Elicited, dev.Elicitations("form", "accept"))
			}
		})
	}
}

// TestTokenHeaders: 'ncmcp token --headers' as Claude Code's headersHelper
// runs it: one JSON object of headers for the server Claude Code names in
// CLAUDE_CODE_MCP_SERVER_URL, or exit 4 with a hint, no browser and
// nothing on stdout when a login is needed.
func TestTokenHeaders(t *testing.T) {
	t.Parallel()
	first := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	second := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := loggedIn(t, first)
	e.mustRun(loginArgs(second)...) // first stays the default server
	for _, dev := range []*devserver.Server{first, second} {
		e.set("CLAUDE_CODE_MCP_SERVER_URL", dev.URL()+"/mcp")
		r := e.mustRun("token", "--headers")
		var h map[string]string
		if err := json.Unmarshal([]byte(r.Stdout), &h); err != nil || len(h) != 1 || strings.Count(r.Stdout, "\n") != 1 {
			t.Fatalf("stdout %q is not one JSON object of headers: %v", r.Stdout, err)
		}
		tok := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject).AccessToken
		if h["Authorization"] != "Bearer "+tok || !mcpAccepts(t, dev, tok) {
			t.Errorf("headers %q: want the stored token of %s, which its server accepts", h, dev.URL())
		}
	}

	other := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	log := t.TempDir() + "/browser.log"
	e.set("CLAUDE_CODE_MCP_SERVER_URL", other.URL()+"/mcp").set("NCMCP_E2E_BROWSER_LOG", log)
	r := e.expectCode(4, "not logged in to "+other.URL(), "token", "--headers")
	if r.Stdout != "" || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 1 || !strings.Contains(r.Stderr, "hint: run 'ncmcp login --server") {
		t.Errorf("stdout %q, stderr %q: want nothing on stdout, the error and a one-line hint", r.Stdout, r.Stderr)
	}
	if b := browserLog(t, log); b != "" || other.TokenRequests("authorization_code") != 0 {
		t.Errorf("a login was started: %q", b)
	}
}

// TestTokenHeadersCIServerOnly: in CI mode (the refresh token in the
// environment) 'token --headers' gives a token only for NCMCP_SERVER: a
// CLAUDE_CODE_MCP_SERVER_URL naming another server is refused before any
// request (a listener there counts none), and nothing is stored.
func TestTokenHeadersCIServerOnly(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	rt := freshRefreshToken(t, dev)
	var hits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(attacker.Close)
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_SERVER", dev.URL()).set("NCMCP_CLIENT_ID", devserver.PublicClientID).
		set("NCMCP_REFRESH_TOKEN", rt).set("NCMCP_CLIENT_SECRET", "ci-secret").set("CLAUDE_CODE_MCP_SERVER_URL", attacker.URL+"/mcp")
	r := e.expectCode(1, "NCMCP_REFRESH_TOKEN is for NCMCP_SERVER", "token", "--headers")
	if r.Stdout != "" || strings.Contains(r.Stderr, rt) || strings.Contains(r.Stderr, "ci-secret") {
		t.Errorf("stdout %q, stderr %q", r.Stdout, r.Stderr)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the other server", n)
	}
	if _, err := os.Stat(filepath.Join(e.configDir(), "config.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("something was stored: %v", err)
	}
	// The same variables, with CLAUDE_CODE_MCP_SERVER_URL on NCMCP_SERVER:
	// the headers.
	e.set("NCMCP_CLIENT_SECRET", "").set("CLAUDE_CODE_MCP_SERVER_URL", dev.URL()+"/mcp")
	if r := e.mustRun("token", "--headers"); !strings.HasPrefix(r.Stdout, `{"Authorization":"Bearer `) {
		t.Errorf("stdout %q", r.Stdout)
	}
}

// TestSetupLogsInFirst: 'setup cursor' in a fresh config logs in first (one
// browser window), and writes the entry with the settings the proxy needs;
// run as Cursor runs it, with no more of the shell's environment than
// HOME and PATH, it connects without a browser.
func TestSetupLogsInFirst(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	log := filepath.Join(t.TempDir(), "browser.log")
	e.set("NCMCP_E2E_BROWSER_LOG", log)
	r := e.mustRun("setup", "cursor", "--server", dev.URL(), "--command", ncmcpBin)
	if !strings.Contains(r.Stderr, "Logging in to "+dev.URL()+" first") || strings.Contains(r.Stderr, "Not logged in") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	if b := browserLog(t, log); strings.Count(b, "open ") != 1 {
		t.Fatalf("browser log:\n%s", b)
	}
	var cursor struct {
		MCPServers map[string]struct {
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		} `json:"mcpServers"`
	}
	b, err := os.ReadFile(filepath.Join(e.vars["HOME"], ".cursor", "mcp.json"))
	if err != nil || json.Unmarshal(b, &cursor) != nil {
		t.Fatalf("Cursor's mcp.json: %v\n%s", err, b)
	}
	ent := cursor.MCPServers["nextcloud"]
	if ent.Env["NCMCP_CONFIG_DIR"] != e.configDir() || ent.Env["NCMCP_STORAGE"] != "file" || len(ent.Env) != 2 {
		t.Fatalf("the entry's env %v", ent.Env)
	}
	cmd := exec.Command(ent.Command, ent.Args...)
	cmd.Env = []string{"HOME=" + e.vars["HOME"], "PATH=" + os.Getenv("PATH"), "NCMCP_BROWSER=/bin/false"}
	for k, v := range ent.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "cursor-like", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("running the entry: %v", err)
	}
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Errorf("tools/list through the written entry: %v", err)
	}
	_ = cs.Close()
	if n := dev.TokenRequests("authorization_code"); n != 1 {
		t.Errorf("%d code exchanges, want the one of setup", n)
	}
}

// TestSetupThenConnect: what 'ncmcp setup' writes is what the client
// runs: the stdio entry of Cursor's mcp.json, run as Cursor runs it,
// reaches the server; Claude Code's headersHelper, run by a shell with
// CLAUDE_CODE_MCP_SERVER_URL, gives headers the server accepts; a second
// setup changes nothing.
func TestSetupThenConnect(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := loggedIn(t, dev)
	home := e.vars["HOME"]
	e.mustRun("setup", "cursor", "--server", dev.URL(), "--command", ncmcpBin)
	var cursor struct {
		MCPServers map[string]struct {
			Command string   `json:"command"`
			Args    []string `json:"args"`
		} `json:"mcpServers"`
	}
	b, err := os.ReadFile(filepath.Join(home, ".cursor", "mcp.json"))
	if err != nil || json.Unmarshal(b, &cursor) != nil {
		t.Fatalf("Cursor's mcp.json: %v\n%s", err, b)
	}
	ent := cursor.MCPServers["nextcloud"]
	cmd := exec.Command(ent.Command, ent.Args...)
	cmd.Env = e.list()
	client := mcp.NewClient(&mcp.Implementation{Name: "cursor-like", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("running the entry %q %q: %v", ent.Command, ent.Args, err)
	}
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Errorf("tools/list through the written entry: %v", err)
	}
	_ = cs.Close()
	if r := e.mustRun("setup", "cursor", "--server", dev.URL(), "--command", ncmcpBin); !strings.Contains(r.Stderr, "already has nextcloud") {
		t.Errorf("a second setup: %s", r.Stderr)
	}

	e.mustRun("setup", "claude-code", "--server", dev.URL(), "--command", ncmcpBin)
	var claude struct {
		MCPServers map[string]struct {
			Type, URL, HeadersHelper string
		} `json:"mcpServers"`
	}
	b, err = os.ReadFile(filepath.Join(home, ".claude.json"))
	if err != nil || json.Unmarshal(b, &claude) != nil {
		t.Fatalf(".claude.json: %v\n%s", err, b)
	}
	cc := claude.MCPServers["nextcloud"]
	helper := exec.Command("sh", "-c", cc.HeadersHelper)
	helper.Env = append(e.list(), "CLAUDE_CODE_MCP_SERVER_URL="+cc.URL)
	out, err := helper.Output()
	var headers map[string]string
	if err != nil || json.Unmarshal(out, &headers) != nil || cc.Type != "http" || cc.URL != dev.URL()+"/mcp" {
		t.Fatalf("headersHelper %q: %v, %q; entry %+v", cc.HeadersHelper, err, out, cc)
	}
	if !mcpAccepts(t, dev, strings.TrimPrefix(headers["Authorization"], "Bearer ")) {
		t.Errorf("the server refuses the helper's headers %q", headers)
	}
}

// TestProxyStopsOnSIGTERM: a host stops its server with SIGTERM, stdin
// still open: the proxy exits within 2 s, and the dev server sees the
// session ended (DELETE).
func TestProxyStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var reqs []string
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2, Logf: func(format string, args ...any) {
		mu.Lock()
		reqs = append(reqs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}})
	e := loggedIn(t, dev)
	cmd := exec.Command(ncmcpBin, "proxy", "--server", dev.URL(), "--log-file", filepath.Join(t.TempDir(), "proxy.log"))
	cmd.Env = e.list()
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"host","version":"1"}}}`+"\n")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, `"result"`) {
		t.Fatalf("initialize: %q, %v", line, err)
	}
	io.WriteString(stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(2 * time.Second):
		t.Fatal("the proxy outlived SIGTERM by 2 s, with stdin open")
	}
	t.Logf("stopped %s after SIGTERM", time.Since(began).Round(time.Millisecond))
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(strings.Join(reqs, "\n"), "mcp: DELETE /mcp -> 200"); n != 1 {
		t.Errorf("%d DELETE of the session, want 1:\n%s", n, strings.Join(reqs, "\n"))
	}
	_ = stdin.Close()
}
