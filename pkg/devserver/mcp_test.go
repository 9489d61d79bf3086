package devserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpRequest posts a JSON-RPC message to /mcp with the token and, if not
// empty, the session, and returns the answer.
func mcpRequest(t *testing.T, s *Server, token, session, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestMCPWithGoSDKClient: a client of the official Go SDK works with both
// generations: its newer stateless protocol is refused as by the Python
// SDK, so it falls back to initialize, and it gets the generation's
// protocol version, server info and tools.
func TestMCPWithGoSDKClient(t *testing.T) {
	for _, tc := range []struct {
		gen      int
		version  string
		sdk      string
		tools    []string
		checkArg map[string]any
	}{
		{1, "2025-06-18", "1.21.0", []string{ToolProvision, ToolCheckStatus, ToolRevoke}, map[string]any{"user_id": DefaultUser.Subject}},
		{2, "2025-11-25", "1.29.0", []string{ToolProvision, ToolRevoke, ToolCheckStatus, ToolNCAuthProvision, ToolNCAuthCheck, ToolNCAuthUpdate}, nil},
	} {
		s := startServer(t, Options{AutoApprove: true, Generation: tc.gen})
		cs := mustMCPSession(t, s, tokens(t, s).AccessToken)
		init := cs.InitializeResult()
		if init.ProtocolVersion != tc.version || init.ServerInfo.Name != "Nextcloud MCP" || init.ServerInfo.Version != tc.sdk ||
			init.Capabilities.Tools == nil || init.Capabilities.Tools.ListChanged {
			t.Errorf("generation %d: initialize = %+v", tc.gen, init)
		}
		res, err := cs.ListTools(testContext(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		if !slices.Equal(names, tc.tools) {
			t.Errorf("generation %d: tools %v, want %v", tc.gen, names, tc.tools)
		}
		if st := callTool(t, cs, ToolCheckStatus, tc.checkArg); st["is_provisioned"] != false {
			t.Errorf("generation %d: status %v", tc.gen, st)
		}
		unknown, err := cs.CallTool(testContext(t), &mcp.CallToolParams{Name: "no_such_tool"})
		if err != nil {
			t.Fatalf("unknown tool: %v", err)
		}
		if text, _ := unknown.Content[0].(*mcp.TextContent); !unknown.IsError || text == nil || text.Text != "Unknown tool: no_such_tool" {
			t.Errorf("unknown tool: %+v", unknown)
		}
		if got := s.ToolCalls("no_such_tool"); got != 1 {
			t.Errorf("ToolCalls(no_such_tool) = %d", got)
		}
	}
}

// TestMCPTransportErrors: the Python SDK's answers to what is not an MCP
// request of a session.
func TestMCPTransportErrors(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	token := tokens(t, s).AccessToken
	wantError := func(resp *http.Response, body string, status int, message string) {
		t.Helper()
		var e struct {
			ID    string `json:"id"`
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if resp.StatusCode != status || json.Unmarshal([]byte(body), &e) != nil || e.ID != "server-error" || e.Error.Code != -32600 || e.Error.Message != message {
			t.Errorf("%d %s, want %d %q", resp.StatusCode, body, status, message)
		}
	}
	resp, body := mcpRequest(t, s, token, "", `{"jsonrpc":"2.0","id":1,"method":"server/discover"}`, nil)
	wantError(resp, body, 400, "Bad Request: Missing session ID")
	resp, body = mcpRequest(t, s, token, "no-such-session", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	wantError(resp, body, 404, "Not Found: Invalid or expired session ID")
	resp, body = mcpRequest(t, s, token, "no-such-session", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{"Mcp-Protocol-Version": "2026-07-28"})
	wantError(resp, body, 400, "Bad Request: Unsupported protocol version: 2026-07-28. Supported versions: 2025-06-18, 2025-03-26, 2024-11-05")
	// An initialize asking for a version the SDK does not know gets its newest.
	resp, body = mcpRequest(t, s, token, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2099-01-01","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"protocolVersion":"2025-06-18"`) {
		t.Errorf("initialize with an unknown version: %d %s", resp.StatusCode, body)
	}
}

func TestMCPWithoutToken(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	tok := tokens(t, s)
	want := `Bearer error="invalid_token", error_description="Authentication required", resource_metadata="` + s.URL() + `/.well-known/oauth-protected-resource"`
	for name, token := range map[string]string{"none": "", "garbage": "not-a-valid-token", "ID token": tok.Extra("id_token").(string)} {
		resp, body := mcpRequest(t, s, token, "", `{"jsonrpc":"2.0","id":1,"method":"initialize"}`, nil)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want ||
			body != `{"error":"invalid_token","error_description":"Authentication required"}` {
			t.Errorf("%s: %d %q %s", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	if _, err := mcpSession(t, s, "", nil); err == nil {
		t.Error("MCP connect without a token succeeded")
	}
}

func TestMCPTokenExpiry(t *testing.T) {
	opts, clock := clockOptions(Options{AutoApprove: true, AccessTokenTTL: time.Minute})
	s := startServer(t, opts)
	token := tokens(t, s).AccessToken
	if got := mcpStatus(t, s, token); got != 200 {
		t.Fatalf("fresh token: %d", got)
	}
	clock.advance(time.Minute)
	if got := mcpStatus(t, s, token); got != 401 {
		t.Errorf("expired token: %d", got)
	}
}

// TestAccessTokenRefusedWhenExpiresInHasPassed: a client that counts
// expires_in from the moment it received the token response sees its
// token accepted until then and refused from then on, at /mcp, userinfo
// and introspection alike, and the token's exp is not later. The token is
// issued just after a whole second, where the lifetime Dex counts from
// the second would outlast expires_in by almost a second.
func TestAccessTokenRefusedWhenExpiresInHasPassed(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, AccessTokenTTL: 2 * time.Second})
	lb := newLoopback(t)
	code := login(t, s, lb, PublicClientID, "x", nil)
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	status, _, body := rawToken(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {lb.redirectURI()}, "client_id": {PublicClientID}})
	received := time.Now()
	expiresIn, _ := body["expires_in"].(float64)
	token, _ := body["access_token"].(string)
	if status != 200 || expiresIn != 1 || token == "" {
		t.Fatalf("token response %d %v, want expires_in 1", status, body)
	}
	expiry := received.Add(time.Duration(expiresIn) * time.Second)
	if exp := time.Unix(int64(jwtClaims(t, token)["exp"].(float64)), 0); exp.After(expiry) {
		t.Errorf("exp %s is after the expiry %s that expires_in announced", exp, expiry)
	}
	userinfo := func() int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.IssuerURL()+idpUserinfoPath, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	active := func() bool {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.IssuerURL()+idpIntrospectPath, strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(ConfidentialClientID, ConfidentialClientSecret)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			Active bool `json:"active"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("introspection: %d %v", resp.StatusCode, err)
		}
		return r.Active
	}
	time.Sleep(time.Until(expiry.Add(-300 * time.Millisecond)))
	if got := mcpStatus(t, s, token); got != 200 {
		t.Errorf("/mcp just before the announced expiry: %d", got)
	}
	if got := userinfo(); got != 200 {
		t.Errorf("userinfo just before the announced expiry: %d", got)
	}
	if !active() {
		t.Error("introspection: the token is not active just before the announced expiry")
	}
	time.Sleep(time.Until(expiry.Add(50 * time.Millisecond)))
	if got := mcpStatus(t, s, token); got != http.StatusUnauthorized {
		t.Errorf("/mcp after the announced expiry: %d, want 401", got)
	}
	if got := userinfo(); got == 200 {
		t.Error("userinfo accepts the token after the announced expiry")
	}
	if active() {
		t.Error("introspection: the token is active after the announced expiry")
	}
}

func TestMCPSessionBoundToUser(t *testing.T) {
	s := startServer(t, Options{})
	cs := mustMCPSession(t, s, tokensAs(t, s, DefaultUser).AccessToken)
	other := tokensAs(t, s, SecondUser).AccessToken
	resp, _ := mcpRequest(t, s, other, cs.ID(), `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`,
		map[string]string{"Mcp-Protocol-Version": "2025-06-18"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("another user's token on the session: %d, want 403", resp.StatusCode)
	}
}

func TestNoOfflineAccess(t *testing.T) {
	for gen, want := range map[int][]string{1: nil, 2: {ToolNCAuthProvision, ToolNCAuthCheck, ToolNCAuthUpdate}} {
		s := startServer(t, Options{AutoApprove: true, NoOfflineAccess: true, Generation: gen})
		cs := mustMCPSession(t, s, tokens(t, s).AccessToken)
		res, err := cs.ListTools(testContext(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("generation %d: tools without offline access: %v, want %v", gen, names, want)
		}
		if resp := getJSON(t, s.URL()+"/oauth/authorize-nextcloud?state=x", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("generation %d: /oauth/authorize-nextcloud: %d, want 404", gen, resp.StatusCode)
		}
		if s.Flow2URL() != "" {
			t.Errorf("generation %d: Flow2URL without offline access", gen)
		}
	}
}

func TestCloseEndsMCPSessions(t *testing.T) {
	s, err := Start(Options{AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	cs := mustMCPSession(t, s, tokens(t, s).AccessToken)
	if _, err := cs.ListTools(testContext(t), nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %s with an open MCP session", d)
	}
}

// TestStrictScopeClaim: without the option a token without a scope claim
// counts as having openid; with it every generation-2 tool refuses.
func TestStrictScopeClaim(t *testing.T) {
	for _, strict := range []bool{false, true} {
		s := startServer(t, Options{AutoApprove: true, Generation: 2, StrictScopeClaim: strict})
		cs := mustMCPSession(t, s, tokens(t, s).AccessToken)
		res, err := cs.CallTool(testContext(t), &mcp.CallToolParams{Name: ToolNCAuthCheck})
		if err != nil {
			t.Fatal(err)
		}
		text := res.Content[0].(*mcp.TextContent).Text
		denied := res.IsError && res.StructuredContent == nil && strings.Contains(text, "Missing required scopes: openid. Token has scopes: none.")
		if denied != strict {
			t.Errorf("StrictScopeClaim %t: %+v %s", strict, res, text)
		}
	}
}

// TestMCPRequestsBeforeInitialized: between initialize and the client's
// notifications/initialized, a session refuses every request but ping as
// the MCP Python SDK does (a JSON-RPC error -32602 "Invalid request
// parameters" with data "", in a 200 SSE answer), runs no tool, and serves
// them once the notification came.
func TestMCPRequestsBeforeInitialized(t *testing.T) {
	for gen, version := range map[int]string{1: "2025-06-18", 2: "2025-11-25"} {
		s := startServer(t, Options{AutoApprove: true, Generation: gen})
		token := tokens(t, s).AccessToken
		resp, body := mcpRequest(t, s, token, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`, nil)
		session := resp.Header.Get("Mcp-Session-Id")
		if resp.StatusCode != 200 || session == "" {
			t.Fatalf("generation %d: initialize: %d %s", gen, resp.StatusCode, body)
		}
		hdr := map[string]string{"Mcp-Protocol-Version": version}
		sse := func(msg string) string { return "event: message\r\ndata: " + msg + "\r\n\r\n" }
		refused := func(id string) string {
			return sse(`{"jsonrpc":"2.0","id":` + id + `,"error":{"code":-32602,"message":"Invalid request parameters","data":""}}`)
		}
		for _, tc := range []struct{ body, want string }{
			{`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, refused("2")},
			{`{"jsonrpc":"2.0","id":"three","method":"tools/call","params":{"name":"` + ToolCheckStatus + `","arguments":{}}}`, refused(`"three"`)},
			{`{"jsonrpc":"2.0","id":4,"method":"ping"}`, sse(`{"jsonrpc":"2.0","id":4,"result":{}}`)},
		} {
			resp, body := mcpRequest(t, s, token, session, tc.body, hdr)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" ||
				resp.Header.Get("Mcp-Session-Id") != session || body != tc.want {
				t.Errorf("generation %d: before initialized, %s: %d %v %.300q, want %q", gen, tc.body, resp.StatusCode, resp.Header, body, tc.want)
			}
		}
		if n := s.ToolCalls(ToolCheckStatus); n != 0 {
			t.Errorf("generation %d: a refused tools/call counted: ToolCalls = %d", gen, n)
		}
		if resp, body := mcpRequest(t, s, token, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr); resp.StatusCode != 202 {
			t.Fatalf("generation %d: notifications/initialized: %d %s", gen, resp.StatusCode, body)
		}
		resp, body = mcpRequest(t, s, token, session, `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`, hdr)
		if resp.StatusCode != 200 || !strings.Contains(body, `"id":5,`) || !strings.Contains(body, `"result":{"tools":[{"name":"provision_nextcloud_access"`) {
			t.Errorf("generation %d: tools/list after initialized: %d %s", gen, resp.StatusCode, body)
		}
	}
}
