package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

type serverSideOut struct {
	State         string     `json:"state"`
	Kind          string     `json:"kind"`
	ProvisionedAt *time.Time `json:"provisioned_at"`
	Scopes        []string   `json:"scopes"`
	FlowType      string     `json:"flow_type"`
	Reason        string     `json:"reason"`
}

type statusOut struct {
	Servers []struct {
		Version  string `json:"version"`
		AuthMode string `json:"auth_mode"`
		Accounts []struct {
			Sub        string        `json:"sub"`
			Identity   string        `json:"identity"`
			ServerSide serverSideOut `json:"server_side"`
		} `json:"accounts"`
	} `json:"servers"`
}

func status(t *testing.T, e *env) statusOut {
	t.Helper()
	var s statusOut
	r := e.mustRun("status", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil || len(s.Servers) != 1 || len(s.Servers[0].Accounts) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.Stdout)
	}
	return s
}

func serverSide(t *testing.T, e *env) serverSideOut {
	t.Helper()
	return status(t, e).Servers[0].Accounts[0].ServerSide
}

// provisionOut is 'ncmcp provision --json'.
type provisionOut struct {
	Method             string     `json:"method"`
	Outcome            string     `json:"outcome"`
	Provisioned        bool       `json:"provisioned"`
	AlreadyProvisioned bool       `json:"already_provisioned"`
	URL                string     `json:"url"`
	Kind               string     `json:"kind"`
	At                 *time.Time `json:"provisioned_at"`
	Scopes             []string   `json:"scopes"`
	Username           string     `json:"username"`
}

func provisionJSON(t *testing.T, e *env, args ...string) (provisionOut, result) {
	t.Helper()
	r := e.mustRun(append([]string{"provision", "--json"}, args...)...)
	var out provisionOut
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("provision --json: %v\n%s", err, r.Stdout)
	}
	return out, r
}

// TestProvisionLoginFlow is today's servers' main path (generation 2,
// v0.65 on): ncmcp provisions an app password through Nextcloud Login Flow
// v2, answering the server's elicitation by opening the login page once;
// status and tokens list show the app password, a second run says it is
// there, a scope change makes a new grant, and revoking removes it.
func TestProvisionLoginFlow(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := loggedIn(t, dev)
	if ss := serverSide(t, e); ss.State != "not_provisioned" {
		t.Fatalf("server-side before provisioning: %+v", ss)
	}
	log := filepath.Join(t.TempDir(), "browser.log")
	e.set("NCMCP_E2E_BROWSER_LOG", log)
	out, r := provisionJSON(t, e, "--interval", "200ms", "--open")
	if out.Method != "login-flow" || out.Outcome != "provisioned" || !out.Provisioned || out.Kind != "login-flow-v2" ||
		!strings.HasPrefix(out.URL, dev.NextcloudURL()+"/index.php/login/v2/flow/") || out.Username != devserver.DefaultUser.Subject {
		t.Fatalf("provision result %+v", out)
	}
	if !strings.Contains(r.Stderr, "now has access to Nextcloud for alice: an app password (Login Flow v2) of Nextcloud user "+devserver.DefaultUser.Subject) {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	// The server asked through an elicitation first; ncmcp accepted it and
	// opened the page once, although the tool result names it again.
	if n := dev.Elicitations("form", "accept"); n != 1 {
		t.Errorf("%d accepted form elicitations, want 1", n)
	}
	if b := browserLog(t, log); strings.Count(b, "open ") != 1 || !strings.Contains(b, "final: 200 /index.php/login/v2/flow\n") {
		t.Errorf("browser log:\n%s", b)
	}
	tok, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject)
	if !ok || tok.AppPassword == "" || tok.FlowType != devserver.FlowTypeLoginFlowV2 {
		t.Fatalf("the server holds no app password for alice: %+v", tok)
	}
	if ss := serverSide(t, e); ss.State != "provisioned" || ss.Kind != "login-flow-v2" || ss.FlowType != "login-flow-v2" {
		t.Fatalf("status after provisioning: %+v", ss)
	}
	var rows []struct {
		Kind    string `json:"kind"`
		Storage string `json:"storage"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("tokens", "list", "--json").Stdout), &rows); err != nil || len(rows) != 2 || rows[1].Kind != "login-flow-v2" || rows[1].Storage != "server" {
		t.Fatalf("tokens list: %+v, %v", rows, err)
	}
	human := e.mustRun("tokens", "list").Stdout
	if !strings.Contains(human, "\tlogin-flow-v2\t") || !strings.Contains(human, "\tflow1\t") {
		t.Errorf("tokens list:\n%s", human)
	}

	again, r := provisionJSON(t, e)
	if again.Outcome != "already_provisioned" || !again.AlreadyProvisioned || !strings.Contains(r.Stderr, "already has access to Nextcloud for alice") {
		t.Fatalf("second provision: %+v\n%s", again, r.Stderr)
	}

	// A narrower grant: a new Login Flow, the old app password removed so
	// that the server takes the new one.
	narrower, r := provisionJSON(t, e, "--remove-scopes", "notes.write", "--interval", "200ms")
	if narrower.Outcome != "provisioned" || len(narrower.Scopes) == 0 || strings.Contains(strings.Join(narrower.Scopes, " "), "notes.write") ||
		!strings.Contains(strings.Join(narrower.Scopes, " "), "notes.read") {
		t.Fatalf("scope update: %+v\n%s", narrower, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "Removed the server's old app password") {
		t.Errorf("the replacement was not said:\n%s", r.Stderr)
	}
	if tok2, _ := dev.ProvisionedToken(devserver.DefaultUser.Subject); tok2.AppPassword == tok.AppPassword || len(tok2.Scopes) == 0 {
		t.Fatalf("the server kept the old app password: %+v", tok2)
	}
	unchanged, r := provisionJSON(t, e, "--add-scopes", "calendar.read")
	if unchanged.Outcome != "unchanged" && unchanged.Outcome != "provisioned" {
		t.Fatalf("adding a scope: %+v\n%s", unchanged, r.Stderr)
	}

	r = e.mustRun("tokens", "revoke", "--server-side")
	if !strings.Contains(r.Stderr, "the server's own access revoked by the server") {
		t.Errorf("revoke:\n%s", r.Stderr)
	}
	if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); ok {
		t.Fatal("the server still holds an app password")
	}
}

// TestProvisionElicitationURLMode: a server that asks in URL mode gets its
// page opened and an accept.
func TestProvisionElicitationURLMode(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2, ElicitationURLMode: true})
	e := loggedIn(t, dev)
	log := filepath.Join(t.TempDir(), "browser.log")
	e.set("NCMCP_E2E_BROWSER_LOG", log)
	if out, _ := provisionJSON(t, e, "--interval", "200ms", "--open"); out.Outcome != "provisioned" {
		t.Fatalf("provision: %+v", out)
	}
	if n := dev.Elicitations("url", "accept"); n != 1 {
		t.Errorf("%d accepted url elicitations, want 1", n)
	}
	if b := browserLog(t, log); strings.Count(b, "open ") != 1 {
		t.Errorf("browser log:\n%s", b)
	}
}

// TestProvisionFlow2: on a server with only the Flow 2 tools (generation 1)
// the server gets its own refresh token through the browser; status
// reports it, a second provision says it is there, --force replaces it.
func TestProvisionFlow2(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := loggedIn(t, dev)
	if ss := serverSide(t, e); ss.State != "not_provisioned" {
		t.Fatalf("server-side before provisioning: %+v", ss)
	}
	log := filepath.Join(t.TempDir(), "browser.log")
	e.set("NCMCP_E2E_BROWSER_LOG", log)
	out, r := provisionJSON(t, e, "--interval", "200ms")
	if !out.Provisioned || out.Method != "flow2" || !strings.HasPrefix(out.URL, dev.URL()+"/oauth/authorize-nextcloud?state=") || out.Kind != "flow2" ||
		out.At == nil || time.Since(*out.At) > time.Minute {
		t.Fatalf("provision result %+v", out)
	}
	if !strings.Contains(r.Stderr, "now has access to Nextcloud for alice: a refresh token (Flow 2)") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	tok, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject)
	if !ok || tok.RefreshToken == "" || tok.FlowType != devserver.FlowType2 {
		t.Fatalf("the server holds no Flow 2 token for alice: %+v", tok)
	}
	if b := browserLog(t, log); !strings.Contains(b, "final: 200 /oauth/callback") {
		t.Errorf("the browser did not end on the server's callback:\n%s", b)
	}
	if ss := serverSide(t, e); ss.State != "provisioned" || ss.Kind != "flow2" {
		t.Fatalf("status after provisioning: %+v", ss)
	}
	if !strings.Contains(e.mustRun("status").Stderr, "server-side:   provisioned, a refresh token (Flow 2), since ") {
		t.Error("human status does not show the server's token")
	}
	again := e.mustRun("provision")
	if !strings.Contains(again.Stderr, "already has access to Nextcloud for alice") {
		t.Fatalf("second provision:\n%s", again.Stderr)
	}
	forced, r := provisionJSON(t, e, "--force", "--interval", "200ms")
	if forced.Outcome != "provisioned" || !strings.Contains(r.Stderr, "Removed the server's current access") {
		t.Fatalf("--force: %+v\n%s", forced, r.Stderr)
	}
	if tok2, _ := dev.ProvisionedToken(devserver.DefaultUser.Subject); tok2.RefreshToken == tok.RefreshToken {
		t.Fatal("--force kept the old token")
	}
	if n := dev.ToolCalls(devserver.ToolProvision); n != 4 {
		t.Errorf("%d provision calls, want 4 (first, second, and --force's two)", n)
	}
}

// TestProvisionSettingsPage: generation 2's Flow 2 tool answers with a
// Nextcloud settings page instead of a Flow 2 URL; --method flow2 shows it
// for what it is.
func TestProvisionSettingsPage(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := loggedIn(t, dev).set("NCMCP_BROWSER", "true")
	r := e.mustRun("provision", "--method", "flow2", "--no-wait")
	if !strings.Contains(r.Stderr, "provisions its access on a Nextcloud settings page") || !strings.Contains(r.Stderr, dev.NextcloudURL()+"/settings/user/astrolabe#background-sync") {
		t.Fatalf("stderr:\n%s", r.Stderr)
	}
	e.expectCode(8, "did not confirm its access within 1s", "provision", "--method", "flow2", "--timeout", "1s", "--interval", "200ms")
}

// TestProvisionScopeDenied: a server that checks the token's scope claim,
// against an IdP whose tokens have none (Dex), refuses every tool: shown as
// the server's answer, with what it means.
func TestProvisionScopeDenied(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2, StrictScopeClaim: true})
	e := loggedIn(t, dev)
	r := e.expectCode(1, "Missing required scopes: openid", "provision")
	if !strings.Contains(r.Stderr, "this token has none") || !strings.Contains(r.Stderr, "logging in again does not help") {
		t.Fatalf("stderr:\n%s", r.Stderr)
	}
}

// TestProvisionFailures: each way provisioning can fail gives a clear
// message and the documented exit code, and ncmcp never claims success.
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
		{name: "user abandons the browser", env: map[string]string{"NCMCP_BROWSER": "true"}, args: []string{"--timeout", "2s", "--interval", "200ms"}, code: 8, want: "did not confirm its access within 2s"},
		{name: "user abandons the Login Flow page", dev: devserver.Options{Generation: 2}, env: map[string]string{"NCMCP_BROWSER": "true"},
			args: []string{"--timeout", "2s", "--interval", "200ms"}, code: 8, want: "did not confirm its access within 2s"},
		{name: "the IdP refuses consent", dev: devserver.Options{DenyClients: []string{devserver.ServerClientID}}, args: []string{"--timeout", "2s", "--interval", "200ms"}, code: 8, want: "did not confirm"},
		{name: "server without offline access", dev: devserver.Options{NoOfflineAccess: true}, code: 1, want: "offers no provisioning tools", noBrowse: true},
		{name: "javascript: URL", dev: devserver.Options{ProvisionURL: "javascript:alert(1)"}, code: 1, want: `refuses to open: "javascript:alert(1)" is not an http(s) URL`, noBrowse: true},
		{name: "URL with control characters", dev: devserver.Options{Generation: 2, ProvisionURL: "https://cloud.example.com/\x1b[2Jx"}, code: 1, want: "its URL has control characters", noBrowse: true},
		{name: "URL with a password", dev: devserver.Options{Generation: 2, ProvisionURL: "https://user:pw@cloud.example.com/x"}, code: 1, want: "carries a user name or password", noBrowse: true},
		{name: "Flow 2 URL on another origin, no terminal", dev: devserver.Options{ProvisionURL: "https://evil.example/oauth/authorize-nextcloud?state=x"},
			args: []string{"--timeout", "2s", "--interval", "200ms"}, code: 8, want: "run 'ncmcp provision --open' to let ncmcp open pages on https://evil.example", noBrowse: true},
		{name: "Login Flow page over plain http elsewhere", dev: devserver.Options{Generation: 2, ProvisionURL: "http://cloud.example.com/x"},
			args: []string{"--timeout", "2s", "--interval", "200ms"}, code: 8, want: "your Nextcloud password would cross the network unencrypted", noBrowse: true},
		{name: "unknown method", args: []string{"--method", "magic"}, code: 2, want: "--method auto, login-flow or flow2", noBrowse: true},
		{name: "Login Flow asked of a Flow 2 server", args: []string{"--method", "login-flow"}, code: 1, want: "offers no login-flow provisioning tools", noBrowse: true},
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
			if strings.Contains(r.Stderr, "now has access") {
				t.Error("claimed success")
			}
			if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); ok {
				t.Error("the server holds a credential")
			}
			if b := browserLog(t, log); tt.noBrowse && len(b) > 0 {
				t.Errorf("the browser was opened:\n%s", b)
			}
		})
	}
}

// TestProvisionLoginFlowPageElsewhere: without a terminal, a Login Flow
// page on a host not approved for the server is printed, named, and not
// opened.
func TestProvisionLoginFlowPageElsewhere(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2, ProvisionURL: "https://cloud.example.com/index.php/login/v2/flow/abc"})
	e := loggedIn(t, dev)
	log := filepath.Join(t.TempDir(), "browser.log")
	e.set("NCMCP_E2E_BROWSER_LOG", log)
	r := e.mustRun("provision", "--no-wait")
	if !strings.Contains(r.Stderr, "Not opened: https://cloud.example.com is not an origin you approved for "+dev.URL()) ||
		!strings.Contains(r.Stderr, "(on cloud.example.com, Nextcloud for "+dev.URL()+")") || strings.Contains(r.Stderr, "reachable") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	if b := browserLog(t, log); len(b) > 0 {
		t.Errorf("the browser was opened:\n%s", b)
	}
}

// TestProvisionNeedsLogin: an expired token without a refresh token means
// logging in again (exit 4), before any tool is called.
func TestProvisionNeedsLogin(t *testing.T) {
	t.Parallel()
	// The server asks the IdP for no offline_access: no refresh token.
	dev := startDev(t, devserver.Options{AutoApprove: true, Scopes: "audience:server:client_id:nextcloud-mcp-server"})
	e := loggedIn(t, dev)
	expireStoredToken(t, e, nil, dev.URL())
	e.expectCode(4, "log in again", "provision")
	if n := dev.ToolCalls(devserver.ToolProvision); n != 0 {
		t.Errorf("%d tool calls", n)
	}
}
