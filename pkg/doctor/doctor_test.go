package doctor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/serverinfo"
)

func TestToolsCheck(t *testing.T) {
	tools := func(ts []mcpclient.Tool, err error) func(context.Context) ([]mcpclient.Tool, error) {
		return func(context.Context) ([]mcpclient.Tool, error) { return ts, err }
	}
	tests := []struct {
		name   string
		tools  func(context.Context) ([]mcpclient.Tool, error)
		status Status
		detail string
	}{
		{"not logged in", nil, Skip, "not logged in"},
		{"token refused", tools(nil, &mcpclient.UnauthorizedError{}), Fail, "refused the access token"},
		{"no provisioning tools", tools([]mcpclient.Tool{{Name: "notes_search"}}, nil), Warn, "none for provisioning"},
		{"Flow 2 only", tools([]mcpclient.Tool{{Name: "provision_nextcloud_access"}, {Name: "check_provisioning_status"}}, nil), OK, "uses flow2"},
		{"both, Login Flow preferred", tools([]mcpclient.Tool{{Name: "provision_nextcloud_access"}, {Name: "check_provisioning_status"},
			{Name: "nc_auth_provision_access"}, {Name: "nc_auth_check_status"}}, nil), OK, "uses login-flow"},
	}
	for _, tt := range tests {
		c := toolsCheck(context.Background(), Inputs{Tools: tt.tools})
		if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) {
			t.Errorf("%s: %+v, want %s with %q", tt.name, c, tt.status, tt.detail)
		}
		if c.Status != OK && c.Status != Skip && c.Hint == "" {
			t.Errorf("%s: %s without a hint", tt.name, c.Status)
		}
	}
}

func TestVersionCheck(t *testing.T) {
	answer := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/status" || answer == "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(answer))
	}))
	defer srv.Close()
	in := Inputs{ServerURL: srv.URL, HTTP: srv.Client()}
	for _, tt := range []struct {
		answer string
		status Status
		detail string
	}{
		{"", Warn, "no /api/v1/status"},
		{`{"version":"0.181.0","auth_mode":"oauth"}`, OK, "0.181.0, auth mode oauth"},
		{`{"version":"0.181.0","auth_mode":"basic"}`, Warn, "auth mode basic"},
		{`<html>`, Warn, "not the server's status"},
	} {
		answer = tt.answer
		info, err := serverinfo.Get(context.Background(), in.HTTP, in.ServerURL)
		c := versionCheck(info, err)
		if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) {
			t.Errorf("answer %q: %+v, want %s with %q", tt.answer, c, tt.status, tt.detail)
		}
	}
}

// TestServerLabels: "Nextcloud MCP server" only for a server that shows
// it is one (its /api/v1/status); any other server that is its own
// authorization server is called what it is, and gets no Nextcloud check.
func TestServerLabels(t *testing.T) {
	for _, withStatus := range []bool{false, true} {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			switch r.URL.Path {
			case "/mcp":
				w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"`)
				w.WriteHeader(http.StatusUnauthorized)
			case "/.well-known/oauth-protected-resource/mcp":
				fmt.Fprintf(w, `{"resource":%q,"authorization_servers":[%q]}`, srv.URL+"/mcp", srv.URL)
			case "/.well-known/oauth-authorization-server":
				fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"code_challenge_methods_supported":["S256"]}`, srv.URL, srv.URL+"/authorize", srv.URL+"/token")
			case "/api/v1/status":
				if withStatus {
					fmt.Fprint(w, `{"version":"0.181.0","auth_mode":"oauth"}`)
					return
				}
				http.NotFound(w, r)
			default:
				http.NotFound(w, r)
			}
		}))
		checks := serverChecks(context.Background(), Inputs{ServerURL: srv.URL, HTTP: srv.Client()})
		srv.Close()
		var label, tools Check
		for _, c := range checks {
			switch c.Name {
			case serverCheckNames[4]:
				label = c
			case serverCheckNames[9]:
				tools = c
			}
		}
		nextcloud := strings.Contains(label.Detail, "Nextcloud")
		if nextcloud != withStatus || !strings.Contains(label.Detail, "own authorization server") {
			t.Errorf("with status %v: %q", withStatus, label.Detail)
		}
		if !withStatus && (tools.Status != Skip || !strings.Contains(tools.Detail, "not shown to be a Nextcloud MCP server")) {
			t.Errorf("provisioning check of another server: %+v", tools)
		}
	}
}

func TestUnreachableServerSkipsTheRest(t *testing.T) {
	checks := serverChecks(context.Background(), Inputs{ServerURL: "http://127.0.0.1:1", HTTP: &http.Client{}})
	if checks[0].Name != "server reachable" || checks[0].Status != Fail {
		t.Fatalf("first check %+v", checks[0])
	}
	for _, c := range checks[1:] {
		if c.Status != Skip {
			t.Errorf("%s: %s, want SKIP", c.Name, c.Status)
		}
	}
	if !Failed(checks) || Failed(checks[1:]) {
		t.Error("Failed")
	}
}
