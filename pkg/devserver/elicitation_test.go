package devserver

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// elicitingClient connects with a client that answers elicitations with
// action, recording the requests.
func elicitingClient(t *testing.T, s *Server, token, action string, caps *mcp.ClientCapabilities) (*mcp.ClientSession, func() []*mcp.ElicitParams) {
	t.Helper()
	var mu sync.Mutex
	var seen []*mcp.ElicitParams
	cs, err := mcpSession(t, s, token, &mcp.ClientOptions{
		Capabilities: caps,
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			mu.Lock()
			seen = append(seen, req.Params)
			mu.Unlock()
			res := &mcp.ElicitResult{Action: action}
			if action == "accept" && req.Params.Mode != "url" {
				res.Content = map[string]any{"acknowledged": true}
			}
			return res, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs, func() []*mcp.ElicitParams {
		mu.Lock()
		defer mu.Unlock()
		return append([]*mcp.ElicitParams(nil), seen...)
	}
}

// TestElicitation: nc_auth_provision_access (and nc_auth_update_scopes when
// it starts a new flow) first asks a client that supports elicitation to
// have the user log in, then answers after the user's choice.
func TestElicitation(t *testing.T) {
	for _, tc := range []struct {
		action, status, message string
		success, pending        bool
	}{
		{"accept", "login_required", "Login acknowledged. Call nc_auth_check_status to verify and complete provisioning.", true, true},
		{"decline", "declined", "Login declined. Call nc_auth_provision_access to start again.", false, false},
		{"cancel", "cancelled", "Login cancelled. Call nc_auth_provision_access to start again.", false, false},
	} {
		t.Run(tc.action, func(t *testing.T) {
			s := startServer(t, Options{AutoApprove: true, Generation: 2})
			cs, seen := elicitingClient(t, s, tokens(t, s).AccessToken, tc.action, nil)
			res := callTool(t, cs, ToolNCAuthProvision, nil)
			loginURL, _ := res["login_url"].(string)
			if res["status"] != tc.status || res["success"] != tc.success || res["message"] != tc.message ||
				!strings.HasPrefix(loginURL, s.NextcloudURL()+ncFlowPath) || res["user_id"] != DefaultUser.Subject {
				t.Errorf("result %v", res)
			}
			reqs := seen()
			if len(reqs) != 1 {
				t.Fatalf("%d elicitations, want 1", len(reqs))
			}
			wantMsg := "Please log in to Nextcloud to grant access:\n\n" + loginURL +
				"\n\nOpen this URL in your browser, log in, and grant the requested permissions. Then check the box below and click OK."
			schema, _ := json.Marshal(reqs[0].RequestedSchema)
			if reqs[0].Mode != "form" || reqs[0].Message != wantMsg ||
				string(schema) != `{"properties":{"acknowledged":{"default":false,"description":"Check this box after completing login at the provided URL","type":"boolean"}},"type":"object"}` {
				t.Errorf("elicitation %+v, schema %s", reqs[0], schema)
			}
			// Declining or cancelling ends the flow.
			st := callTool(t, cs, ToolNCAuthCheck, nil)
			if (st["status"] == "pending") != tc.pending {
				t.Errorf("status after %s: %v", tc.action, st)
			}
		})
	}
}

// TestElicitationURLMode: with ElicitationURLMode a client that supports
// URL mode is asked to open the login URL; other clients get the form.
func TestElicitationURLMode(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, Generation: 2, ElicitationURLMode: true})
	token := tokens(t, s).AccessToken
	urlCaps := &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}, Form: &mcp.FormElicitationCapabilities{}}}
	cs, seen := elicitingClient(t, s, token, "accept", urlCaps)
	res := callTool(t, cs, ToolNCAuthProvision, nil)
	if reqs := seen(); len(reqs) != 1 || reqs[0].Mode != "url" || reqs[0].URL != res["login_url"] || reqs[0].ElicitationID == "" {
		t.Errorf("URL-mode elicitation: %+v (result %v)", reqs, res)
	}
	formOnly, seenForm := elicitingClient(t, s, token, "accept", nil)
	callTool(t, formOnly, ToolNCAuthUpdate, map[string]any{"remove_scopes": []string{"notes.write"}}) // not provisioned yet: no flow
	callTool(t, formOnly, ToolNCAuthProvision, nil)
	if reqs := seenForm(); len(reqs) != 1 || reqs[0].Mode != "form" {
		t.Errorf("form-only client: %+v", reqs)
	}
}

// TestElicitationUpdateScopes: the scope update elicits too.
func TestElicitationUpdateScopes(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, Generation: 2})
	cs, seen := elicitingClient(t, s, tokens(t, s).AccessToken, "accept", nil)
	res := callTool(t, cs, ToolNCAuthProvision, nil)
	resp, err := browser.Get(res["login_url"].(string)) // AutoApprove grants
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := callTool(t, cs, ToolNCAuthCheck, nil); st["status"] != "provisioned" {
		t.Fatalf("status %v", st)
	}
	up := callTool(t, cs, ToolNCAuthUpdate, map[string]any{"remove_scopes": []string{"notes.write"}})
	if up["status"] != "login_required" || up["message"] != "Login acknowledged for scope update. Call nc_auth_check_status to verify and complete." {
		t.Errorf("update %v", up)
	}
	if n := len(seen()); n != 2 {
		t.Errorf("%d elicitations, want 2", n)
	}
}

// TestElicitationInsideToolCallStream: the elicitation/create request comes
// inside the SSE answer of the tools/call, as with the Python SDK, and the
// result follows on the same stream once the client answered.
func TestElicitationInsideToolCallStream(t *testing.T) {
	s := startServer(t, Options{Generation: 2, AutoApprove: true})
	token := tokens(t, s).AccessToken
	resp, _ := mcpRequest(t, s, token, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"t","version":"0"}}}`, nil)
	session := resp.Header.Get("Mcp-Session-Id")
	hdr := map[string]string{"Mcp-Protocol-Version": "2025-11-25"}
	if resp, _ := mcpRequest(t, s, token, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr); resp.StatusCode != 202 {
		t.Fatalf("initialized: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"nc_auth_provision_access","arguments":{}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	call, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer call.Body.Close()
	if call.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || call.Header.Get("Mcp-Session-Id") != session {
		t.Fatalf("tools/call answer: %v", call.Header)
	}
	events := bufio.NewReader(call.Body)
	next := func() map[string]any {
		t.Helper()
		var data string
		for {
			line, err := events.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" && data != "" {
				var msg map[string]any
				if err := json.Unmarshal([]byte(data), &msg); err != nil {
					t.Fatal(err)
				}
				return msg
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = v
			}
		}
	}
	elicit := next()
	params, _ := elicit["params"].(map[string]any)
	if elicit["method"] != "elicitation/create" || elicit["id"] == nil || params["mode"] != "form" ||
		!strings.HasPrefix(params["message"].(string), "Please log in to Nextcloud to grant access:\n\n"+s.NextcloudURL()+ncFlowPath) {
		t.Fatalf("first message of the stream: %v", elicit)
	}
	answer, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": elicit["id"], "result": map[string]any{"action": "accept", "content": map[string]any{"acknowledged": true}}})
	if resp, body := mcpRequest(t, s, token, session, string(answer), hdr); resp.StatusCode != 202 || resp.Header.Get("Mcp-Session-Id") != session {
		t.Fatalf("answer to the elicitation: %d %s", resp.StatusCode, body)
	}
	result := next()
	res, _ := result["result"].(map[string]any)
	structured, _ := res["structuredContent"].(map[string]any)
	if result["id"] != float64(2) || res["isError"] != false || structured["status"] != "login_required" ||
		structured["message"] != "Login acknowledged. Call nc_auth_check_status to verify and complete provisioning." {
		t.Errorf("tool result: %v", result)
	}
}
