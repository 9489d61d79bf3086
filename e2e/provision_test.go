package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

type statusOut struct {
	Servers []struct {
		Accounts []struct {
			Sub        string `json:"sub"`
			ServerSide struct {
				State         string     `json:"state"`
				ProvisionedAt *time.Time `json:"provisioned_at"`
				FlowType      string     `json:"flow_type"`
				Reason        string     `json:"reason"`
			} `json:"server_side"`
		} `json:"accounts"`
	} `json:"servers"`
}

func serverSide(t *testing.T, e *env) (state, reason string) {
	t.Helper()
	var s statusOut
	r := e.mustRun("status", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil || len(s.Servers) != 1 || len(s.Servers[0].Accounts) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.Stdout)
	}
	ss := s.Servers[0].Accounts[0].ServerSide
	return ss.State, ss.Reason
}

// TestProvision: after a login, provision gives the server its own refresh
// token for the user through the browser (Flow 2); status reports it, and a
// second provision says it is already there.
func TestProvision(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := loggedIn(t, dev)
	if state, _ := serverSide(t, e); state != "not_provisioned" {
		t.Fatalf("server-side before provisioning: %s", state)
	}
	log := filepath.Join(t.TempDir(), "browser.log")
	e.set("NCMCP_E2E_BROWSER_LOG", log)
	r := e.mustRun("provision", "--json", "--interval", "200ms")
	var out struct {
		Provisioned bool      `json:"provisioned"`
		URL         string    `json:"url"`
		At          time.Time `json:"provisioned_at"`
		FlowType    string    `json:"flow_type"`
		Scopes      []string  `json:"scopes"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("provision --json: %v\n%s", err, r.Stdout)
	}
	if !out.Provisioned || !strings.HasPrefix(out.URL, dev.URL()+"/oauth/authorize-nextcloud?state=") || out.FlowType != "flow2" || time.Since(out.At) > time.Minute {
		t.Fatalf("provision result %+v", out)
	}
	if !strings.Contains(r.Stderr, "now has offline access for alice") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	tok, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject)
	if !ok || tok.RefreshToken == "" || tok.FlowType != "flow2" {
		t.Fatalf("the server holds no Flow 2 token for alice: %+v", tok)
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), "final: 200 /oauth/callback") {
		t.Errorf("the browser did not end on the server's callback:\n%s", b)
	}
	if state, _ := serverSide(t, e); state != "provisioned" {
		t.Fatalf("status after provisioning: %s", state)
	}
	again := e.mustRun("provision")
	if !strings.Contains(again.Stderr, "already has offline access for alice") {
		t.Fatalf("second provision:\n%s", again.Stderr)
	}
	if n := dev.ToolCalls("provision_nextcloud_access"); n != 2 {
		t.Errorf("%d provision calls, want 2", n)
	}
}

// TestProvisionFailures: each way Flow 2 can fail gives a clear message and
// the documented exit code, and ncmcp never claims success.
func TestProvisionFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		dev      devserver.Options
		env      map[string]string
		args     []string
		code     int
		want     string
		noBrowse bool // the browser must not have been opened
	}{
		{name: "user abandons the browser", env: map[string]string{"NCMCP_BROWSER": "true"}, args: []string{"--timeout", "2s", "--interval", "200ms"}, code: 8, want: "did not confirm offline access within 2s"},
		{name: "the IdP refuses consent", dev: devserver.Options{DenyClients: []string{devserver.ServerClientID}}, args: []string{"--timeout", "2s", "--interval", "200ms"}, code: 8, want: "did not confirm"},
		{name: "server without offline access", dev: devserver.Options{NoOfflineAccess: true}, code: 1, want: "offers no provisioning tools", noBrowse: true},
		{name: "javascript: URL", dev: devserver.Options{ProvisionURL: "javascript:alert(1)"}, code: 1, want: `refusing to open "javascript:alert(1)"`, noBrowse: true},
		{name: "foreign origin", dev: devserver.Options{ProvisionURL: "https://evil.example/oauth/authorize-nextcloud?state=x"}, code: 1, want: "not on the server's origin", noBrowse: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := tt.dev
			o.AutoApprove = true
			dev := startDev(t, o)
			e := loggedIn(t, dev)
			log := filepath.Join(t.TempDir(), "browser.log")
			e.set("NCMCP_E2E_BROWSER_LOG", log)
			for k, v := range tt.env {
				e.set(k, v)
			}
			r := e.expectCode(tt.code, tt.want, append([]string{"provision"}, tt.args...)...)
			if strings.Contains(r.Stderr, "now has offline access") {
				t.Error("claimed success")
			}
			if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); ok {
				t.Error("the server holds a token")
			}
			if b, _ := os.ReadFile(log); tt.noBrowse && len(b) > 0 {
				t.Errorf("the browser was opened:\n%s", b)
			}
		})
	}
}

// TestProvisionNeedsLogin: an expired Flow 1 token without a refresh token
// means logging in again (exit 4), before any tool is called.
func TestProvisionNeedsLogin(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Scopes: "mcp-server:api"})
	e := loggedIn(t, dev)
	expireStoredToken(t, e, nil, dev.URL())
	e.expectCode(4, "log in again", "provision")
	if n := dev.ToolCalls("provision_nextcloud_access"); n != 0 {
		t.Errorf("%d tool calls", n)
	}
}

// TestProvisionLoginFlow: a newer server offering only the Login Flow tools
// (nc_auth_*) is provisioned through them; a page on another host is shown
// but never opened.
func TestProvisionLoginFlow(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, LoginFlowTools: true})
	e := loggedIn(t, dev)
	r := e.mustRun("provision", "--interval", "200ms")
	if !strings.Contains(r.Stderr, dev.URL()+"/login/v2/flow/") || !strings.Contains(r.Stderr, "via app_password") {
		t.Fatalf("provision:\n%s", r.Stderr)
	}
	if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); !ok {
		t.Fatal("not provisioned at the server")
	}
	if n := dev.ToolCalls(devserver.ToolNCAuthCheck); n == 0 {
		t.Error("nc_auth_check_status was never called")
	}
	if state, _ := serverSide(t, e); state != "provisioned" {
		t.Errorf("status: %s", state)
	}

	foreign := startDev(t, devserver.Options{AutoApprove: true, LoginFlowTools: true, ProvisionURL: "https://cloud.example.com/login/v2/flow/abc"})
	e2 := loggedIn(t, foreign)
	log := filepath.Join(t.TempDir(), "browser.log")
	e2.set("NCMCP_E2E_BROWSER_LOG", log)
	r = e2.mustRun("provision", "--no-wait")
	if !strings.Contains(r.Stderr, "The page is on cloud.example.com, not on the server, so ncmcp does not open it") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	if b, _ := os.ReadFile(log); len(b) > 0 {
		t.Errorf("the browser was opened:\n%s", b)
	}
	plain := startDev(t, devserver.Options{AutoApprove: true, LoginFlowTools: true, ProvisionURL: "http://cloud.example.com/x"})
	loggedIn(t, plain).expectCode(1, "must use https", "provision", "--no-wait")
}
