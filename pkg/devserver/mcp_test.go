package devserver

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
)

// forgeAccessToken signs an access token with the OP's key, for tests that
// need claims the OP does not issue (expired, other audience).
func forgeAccessToken(t *testing.T, s *Server, sub string, aud []string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": s.IssuerURL(), "sub": sub, "aud": aud, "client_id": PublicClientID,
		"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(ttl).Unix(), "scope": "openid",
	})
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.RS256,
		Key:       &jose.JSONWebKey{Key: s.store.key.key, KeyID: s.store.key.id},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// accessToken logs DefaultUser in through Flow 1 and returns the tokens.
func accessToken(t *testing.T, s *Server) *oauth2.Token {
	t.Helper()
	lb := newLoopback(t)
	_, challenge := pkcePair()
	tok, err := exchange(t, oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams),
		login(t, s, lb, PublicClientID, challenge, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// bearer adds an Authorization header to every request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// mcpSession connects an MCP client to the server's /mcp with the token.
func mcpSession(t *testing.T, s *Server, token string) (*mcp.ClientSession, error) {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "devserver-test", Version: "1"}, nil)
	cs, err := client.Connect(testContext(t), &mcp.StreamableClientTransport{
		Endpoint:   s.URL() + "/mcp",
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: bearer{token: token, base: http.DefaultTransport}},
		MaxRetries: -1,
	}, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, nil
}

func mustMCPSession(t *testing.T, s *Server, token string) *mcp.ClientSession {
	t.Helper()
	cs, err := mcpSession(t, s, token)
	if err != nil {
		t.Fatalf("MCP connect: %v", err)
	}
	return cs
}

// callTool calls a tool and decodes its structured result into out. It
// checks that the text content holds the same JSON.
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any, out any) {
	t.Helper()
	res, err := cs.CallTool(testContext(t), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error: %+v", name, res.Content)
	}
	structured, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: %d content items, want 1", name, len(res.Content))
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("%s: content is %T, want text", name, res.Content[0])
	}
	var fromText, fromStructured any
	if err := json.Unmarshal([]byte(text.Text), &fromText); err != nil {
		t.Fatalf("%s: text content is not JSON: %v", name, err)
	}
	_ = json.Unmarshal(structured, &fromStructured)
	if a, b := mustJSON(fromText), mustJSON(fromStructured); a != b {
		t.Fatalf("%s: text %s differs from structured content %s", name, a, b)
	}
	if err := json.Unmarshal(structured, out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestMCPToolsList(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	cs := mustMCPSession(t, s, accessToken(t, s).AccessToken)
	res, err := cs.ListTools(testContext(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		schema, _ := json.Marshal(tool.InputSchema)
		var sc struct {
			Type       string `json:"type"`
			Properties map[string]struct {
				Type string `json:"type"`
			} `json:"properties"`
			Required []string `json:"required"`
		}
		if err := json.Unmarshal(schema, &sc); err != nil {
			t.Fatal(err)
		}
		if sc.Type != "object" || sc.Properties["user_id"].Type != "string" || len(sc.Properties) != 1 || len(sc.Required) != 0 {
			t.Errorf("%s: input schema %s, want one optional string user_id", tool.Name, schema)
		}
	}
	slices.Sort(names)
	if want := []string{ToolCheckStatus, ToolProvision, ToolRevoke}; !slices.Equal(names, want) {
		t.Errorf("tools = %v, want %v", names, want)
	}
}

func TestMCPWithoutToken(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	if _, err := mcpSession(t, s, ""); err == nil {
		t.Fatal("MCP connect without a token succeeded")
	}
	if _, err := mcpSession(t, s, forgeAccessToken(t, s, DefaultUser.Subject, []string{MCPAudience}, -time.Second)); err == nil {
		t.Fatal("MCP connect with an expired token succeeded")
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/mcp",
		jsonBody(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `Bearer error="invalid_token", resource_metadata="` + s.URL() + `/.well-known/oauth-protected-resource/mcp"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Errorf("initialize without a token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestMCPSessionBoundToUser(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	cs := mustMCPSession(t, s, accessToken(t, s).AccessToken)
	// Another user's valid token cannot use the session.
	other := forgeAccessToken(t, s, SecondUser.Subject, []string{MCPAudience}, time.Hour)
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/mcp", jsonBody(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", cs.ID())
	req.Header.Set("Authorization", "Bearer "+other)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("another user's token on the session: %d, want 403", resp.StatusCode)
	}
}

func TestNoOfflineAccess(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, NoOfflineAccess: true})
	cs := mustMCPSession(t, s, accessToken(t, s).AccessToken)
	res, err := cs.ListTools(testContext(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) != 0 {
		t.Errorf("tools without offline access: %v", res.Tools)
	}
	if _, err := cs.CallTool(testContext(t), &mcp.CallToolParams{Name: ToolProvision}); err == nil {
		t.Error("provision_nextcloud_access works without offline access")
	}
	for _, path := range []string{"/oauth/authorize-nextcloud?state=x", "/oauth/callback?code=c&state=x"} {
		if resp := getJSON(t, s.URL()+path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	if _, ok := s.ProvisionedToken(DefaultUser.Subject); ok {
		t.Error("ProvisionedToken without offline access")
	}
}

func TestCloseEndsMCPSessions(t *testing.T) {
	s, err := Start(Options{AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	cs := mustMCPSession(t, s, forgeAccessToken(t, s, DefaultUser.Subject, []string{MCPAudience}, time.Hour))
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
