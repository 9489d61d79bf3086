package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

type toolOut struct {
	Name        string          `json:"name"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// callOut is the MCP CallToolResult that 'tools call --json' prints.
type callOut struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	IsError bool `json:"isError"`
}

// TestToolsCommands: 'ncmcp tools' talks MCP to both generations as the
// user: without a login it logs in first (one browser login, whose code is
// exchanged once) unless --no-login; an expired token is refreshed, not
// replaced by a new login; a tool's error result exits 1.
func TestToolsCommands(t *testing.T) {
	t.Parallel()
	for _, gen := range []int{1, 2} {
		t.Run(fmt.Sprintf("generation %d", gen), func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true, Generation: gen, LoginFlowTools: true})
			e := newEnv(t).set("NCMCP_STORAGE", "file")
			e.expectCode(4, "log in", "tools", "list", "--no-login", "--server", dev.URL())
			if n := dev.TokenRequests("authorization_code"); n != 0 {
				t.Fatalf("--no-login logged in (%d code exchanges)", n)
			}

			r := e.mustRun("tools", "list", "--json", "--server", dev.URL(), "--client-id", devserver.PublicClientID)
			var tools []toolOut
			if err := json.Unmarshal([]byte(r.Stdout), &tools); err != nil {
				t.Fatalf("tools list --json: %v\n%s", err, r.Stdout)
			}
			names := []string{}
			for _, tl := range tools {
				names = append(names, tl.Name)
				// The schema as the server sent it, for scripts that
				// build arguments from it.
				var schema map[string]any
				if json.Unmarshal(tl.InputSchema, &schema) != nil || schema["type"] != "object" {
					t.Fatalf("tool %s: input_schema %s", tl.Name, tl.InputSchema)
				}
			}
			if !slices.Contains(names, "nc_auth_check_status") {
				t.Fatalf("tools %v", names)
			}
			perLogin := dev.TokenRequests("authorization_code")
			if perLogin == 0 || !strings.Contains(r.Stderr, "Logged in to "+dev.URL()) {
				t.Fatalf("no login on the way:\n%s", r.Stderr)
			}
			tok := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
			if tok.AccessToken == "" || strings.Contains(r.Stdout, tok.AccessToken) {
				t.Fatal("no token stored, or the token printed")
			}

			// The stored login is used: no new login.
			r = e.mustRun("tools", "call", "nc_auth_check_status", "--json")
			var out callOut
			if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || len(out.Content) == 0 || out.Content[0].Type != "text" || out.IsError {
				t.Fatalf("tools call --json: %+v, %v\n%s", out, err, r.Stdout)
			}
			expireStoredToken(t, e, nil, dev.URL())
			refreshes := dev.TokenRequests("refresh_token")
			e.mustRun("tools", "list")
			if dev.TokenRequests("refresh_token") != refreshes+1 || dev.TokenRequests("authorization_code") != perLogin {
				t.Fatalf("an expired token: %d refreshes (want %d), %d code exchanges (want %d)",
					dev.TokenRequests("refresh_token"), refreshes+1, dev.TokenRequests("authorization_code"), perLogin)
			}
			e.expectCode(1, "'ncmcp tools list' lists the tools the server offers", "tools", "call", "no_such_tool")
			e.expectCode(2, "JSON object", "tools", "call", "nc_auth_check_status", "[1]")
		})
	}
}
