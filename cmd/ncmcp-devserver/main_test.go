package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/devserver/devlogin"
	"github.com/ncmcp/ncmcp/pkg/discovery"
)

func TestStartFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	srv, err := start([]string{
		"--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--quiet",
		"--generation", "2", "--code-ttl", "5s", "--register-rate-limit", "4",
		"--no-offline-access", "--no-registration", "--no-revocation",
		"--registration-fault", "refuse", "--registered-secret-ttl", "1h", "--provision-url", "https://evil.example/x",
		"--strict-scope-claim", "--multiple-refresh-tokens", "--elicitation-url-mode", "--login-flow-tools", "--nextcloud-user", "kilgore",
		"--auto-approve",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, stderr.String())
	}
	defer srv.Close()
	if got := strings.TrimSpace(stdout.String()); got != srv.URL() {
		t.Errorf("stdout = %q, want the server URL %q", got, srv.URL())
	}
	o := srv.Options()
	want := devserver.Options{Generation: 2, CodeTTL: 5 * time.Second, RegisterRateLimit: 4, NoOfflineAccess: true,
		NoRegistration: true, NoRevocation: true, RegistrationFault: "refuse", RegisteredSecretTTL: time.Hour,
		ProvisionURL: "https://evil.example/x", StrictScopeClaim: true, MultipleRefreshTokens: true, ElicitationURLMode: true,
		LoginFlowTools: true, NextcloudUser: "kilgore", AutoApprove: true}
	if o.Generation != want.Generation || o.CodeTTL != want.CodeTTL || o.RegisterRateLimit != want.RegisterRateLimit ||
		o.NoOfflineAccess != want.NoOfflineAccess || o.NoRegistration != want.NoRegistration || o.NoRevocation != want.NoRevocation ||
		o.RegistrationFault != want.RegistrationFault || o.RegisteredSecretTTL != want.RegisteredSecretTTL || o.ProvisionURL != want.ProvisionURL ||
		o.StrictScopeClaim != want.StrictScopeClaim || o.MultipleRefreshTokens != want.MultipleRefreshTokens ||
		o.ElicitationURLMode != want.ElicitationURLMode || o.LoginFlowTools != want.LoginFlowTools || o.NextcloudUser != want.NextcloudUser ||
		o.AutoApprove != want.AutoApprove {
		t.Errorf("options = %+v", o)
	}
	for _, want := range []string{"generation 2", srv.URL() + "/api/v1/status", "Login Flow v2", "STRICT SCOPE CLAIM", "kilgore / kilgore"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not name %q:\n%s", want, stderr.String())
		}
	}
}

func TestStartRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--generation", "3"},
		{"--registration-fault", "sometimes"},
		{"--addr", "0.0.0.0:0"},
		{"--nextcloud-user", "nobody"},
		{"--restart-every", "-1s"},
	} {
		var stdout, stderr bytes.Buffer
		args = append([]string{"--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--quiet"}, args...)
		if srv, err := start(args, &stdout, &stderr); err == nil {
			srv.Close()
			t.Errorf("start(%v) succeeded", args)
		}
	}
}

// TestDefaults: generation 2, as every current server; --addr with port 0
// alone gives every listener a free port, Nextcloud on an origin of its
// own; the same-origin layout on request.
func TestDefaults(t *testing.T) {
	var stdout, stderr bytes.Buffer
	srv, err := start([]string{"--addr", "127.0.0.1:0", "--quiet"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, stderr.String())
	}
	defer srv.Close()
	if g := srv.Options().Generation; g != 2 {
		t.Errorf("generation %d by default, want 2", g)
	}
	urls := []string{srv.URL(), srv.IssuerURL(), srv.NextcloudURL()}
	for i, u := range urls {
		if strings.HasSuffix(u, ":8765") || strings.HasSuffix(u, ":8766") || strings.HasSuffix(u, ":8767") {
			t.Errorf("listener %d took a fixed port: %s", i, u)
		}
		for _, v := range urls[:i] {
			if u == v {
				t.Errorf("two listeners at %s", u)
			}
		}
	}
	if !strings.Contains(stderr.String(), srv.NextcloudURL()+" (its own origin)") {
		t.Errorf("stderr does not name Nextcloud's origin:\n%s", stderr.String())
	}
	same, err := start([]string{"--addr", "127.0.0.1:0", "--quiet", "--nextcloud-same-origin", "--nextcloud-login-form"}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	if o := same.Options(); same.NextcloudURL() != same.URL() || !o.NextcloudLoginForm {
		t.Errorf("same origin: %s, server %s, options %+v", same.NextcloudURL(), same.URL(), o)
	}
}

func TestNextAddr(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:8765": "127.0.0.1:8767", "127.0.0.1:0": "127.0.0.1:0", "localhost:9000": "localhost:9002"} {
		if got := nextAddr(in, 2); got != want {
			t.Errorf("nextAddr(%q, 2) = %q, want %q", in, got, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines to write
// while the test reads.
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

// accessToken logs in at the server with --auto-approve as the public
// test client, in a browser login as ncmcp's, and returns the access token.
func accessToken(t *testing.T, serverURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	disc, err := discovery.Discover(ctx, http.DefaultClient, serverURL)
	if err != nil {
		t.Fatal(err)
	}
	res, err := devlogin.Login(ctx, devlogin.FileStore(t), disc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Token.AccessToken
}

// mcpPost posts a JSON-RPC message to /mcp and returns the status and the
// session id the server answers with.
func mcpPost(t *testing.T, serverURL, token, session, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, serverURL+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id")
}

// TestRestartEvery: with --restart-every the MCP server restarts on its
// own, logging each restart, and a session begun before a restart is
// unknown after it (404), while the token stays valid for a new one.
// Restart n+2 begins after restart n+1 is logged; so once the test has
// seen n restarts logged after the session began, restart n+2 came after
// the session, whatever the timing.
func TestRestartEvery(t *testing.T) {
	var stdout bytes.Buffer
	var stderr syncBuffer
	srv, err := start([]string{"--addr", "127.0.0.1:0", "--quiet", "--auto-approve", "--restart-every", "100ms"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, stderr.String())
	}
	defer srv.Close()
	if !strings.Contains(stderr.String(), "restarts every 100ms") {
		t.Errorf("the banner does not name the restarts:\n%s", stderr.String())
	}
	restarts := func() int { return strings.Count(stderr.String(), "restarted the MCP server (restart ") }
	waitRestarts := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); restarts() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d restarts logged in 10s, want %d:\n%s", restarts(), n, stderr.String())
			}
		}
	}
	token := accessToken(t, srv.URL())
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"0"}}}`
	const ping = `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	before := restarts()
	status, session := mcpPost(t, srv.URL(), token, "", initialize)
	if status != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d, session %q", status, session)
	}
	status, _ = mcpPost(t, srv.URL(), token, session, ping)
	seen := restarts()
	if seen == before && status != http.StatusOK {
		t.Errorf("ping in a session no restart ended: %d, want 200", status)
	}
	waitRestarts(seen + 2)
	if status, _ := mcpPost(t, srv.URL(), token, session, ping); status != http.StatusNotFound {
		t.Errorf("ping in a session begun before a restart: %d, want 404", status)
	}
	if status, session := mcpPost(t, srv.URL(), token, "", initialize); status != http.StatusOK || session == "" {
		t.Errorf("initialize after the restarts with the same token: %d, session %q", status, session)
	}
}

// TestForgetClientsOnRestartFlag: --forget-clients-on-restart sets the
// option, and the banner says so; without restarts it is refused, since
// it would do nothing.
func TestForgetClientsOnRestartFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if srv, err := start([]string{"--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--quiet", "--forget-clients-on-restart"}, &stdout, &stderr); err == nil {
		srv.Close()
		t.Fatal("--forget-clients-on-restart without --restart-every was taken")
	}
	srv, err := start([]string{"--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--quiet", "--forget-clients-on-restart", "--restart-every", "1h"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, stderr.String())
	}
	defer srv.Close()
	if !srv.Options().ForgetClientsOnRestart || !strings.Contains(stderr.String(), "forgotten, with its tokens, when the MCP server restarts") {
		t.Errorf("ForgetClientsOnRestart %t, stderr:\n%s", srv.Options().ForgetClientsOnRestart, stderr.String())
	}
}
