package devserver

import (
	"context"
	"html/template"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Names of the newer servers' provisioning tools (Nextcloud Login Flow v2
// app passwords, server v0.65 on). They take no arguments: the user is the
// access token's subject.
const (
	ToolNCAuthProvision = "nc_auth_provision_access"
	ToolNCAuthCheck     = "nc_auth_check_status"
)

// CredentialAppPassword is the credential_type a Login Flow grant yields.
const CredentialAppPassword = "app_password"

// loginFlow stands in for newer servers' provisioning through Nextcloud
// Login Flow v2: the tool returns a login URL, the user grants access on
// that page, and the server then holds an app password for the user.
type loginFlow struct {
	url          string
	autoApprove  bool
	provisionURL string // Options.ProvisionURL fault

	mu          sync.Mutex
	flows       map[string]string    // login token -> user
	provisioned map[string]time.Time // user -> when
}

func newLoginFlow(baseURL string, autoApprove bool, provisionURL string) *loginFlow {
	return &loginFlow{url: baseURL, autoApprove: autoApprove, provisionURL: provisionURL, flows: map[string]string{}, provisioned: map[string]time.Time{}}
}

func (l *loginFlow) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flows = map[string]string{}
	l.provisioned = map[string]time.Time{}
}

// ncAuthResult is the result of both newer tools.
type ncAuthResult struct {
	Status         string `json:"status"`
	LoginURL       string `json:"login_url,omitempty"`
	CredentialType string `json:"credential_type,omitempty"`
	ProvisionedAt  string `json:"provisioned_at,omitempty"`
	Message        string `json:"message,omitempty"`
}

func (l *loginFlow) provision(user string) ncAuthResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, ok := l.provisioned[user]; ok {
		return ncAuthResult{Status: "provisioned", CredentialType: CredentialAppPassword, ProvisionedAt: at.Format(time.RFC3339), Message: "Nextcloud access is already provisioned."}
	}
	token := randomToken()
	l.flows[token] = user
	u := l.url + "/login/v2/flow/" + token
	if l.provisionURL != "" {
		u = l.provisionURL
	}
	return ncAuthResult{Status: "login_required", LoginURL: u, Message: "Open the login URL and grant access to finish."}
}

func (l *loginFlow) status(user string) ncAuthResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, ok := l.provisioned[user]; ok {
		return ncAuthResult{Status: "provisioned", CredentialType: CredentialAppPassword, ProvisionedAt: at.Format(time.RFC3339)}
	}
	for _, u := range l.flows {
		if u == user {
			return ncAuthResult{Status: "pending"}
		}
	}
	return ncAuthResult{Status: "login_required"}
}

var grantPage = template.Must(template.New("grant").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Connect to Nextcloud - ncmcp development server</title></head>
<body><p>ncmcp development server: a stand-in for Nextcloud's Login Flow, not for production.</p>
{{if .Done}}<h1>Access granted</h1><p>The MCP server can now use Nextcloud for you. You can close this window.</p>
{{else}}<h1>Connect to Nextcloud</h1><p>The MCP server asks for an app password for your account.</p>
<form method="post"><button type="submit" id="grant">Grant access</button></form>{{end}}
</body></html>
`))

// page is GET/POST /login/v2/flow/{token}: the grant page. With
// AutoApprove a GET grants at once.
func (l *loginFlow) page(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	l.mu.Lock()
	user, ok := l.flows[token]
	grant := ok && (r.Method == http.MethodPost || l.autoApprove)
	if grant {
		delete(l.flows, token)
		l.provisioned[user] = time.Now().UTC()
	}
	l.mu.Unlock()
	if !ok {
		http.Error(w, "unknown or used login flow", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = grantPage.Execute(w, struct{ Done bool }{grant})
}

func (l *loginFlow) token(sub string) (ProvisionedToken, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.provisioned[sub]
	if !ok {
		return ProvisionedToken{}, false
	}
	return ProvisionedToken{ProvisionedAt: at, FlowType: CredentialAppPassword}, true
}

type noArgs struct{}

// addLoginFlowTools offers the newer servers' tools.
func (e *mcpEndpoint) addLoginFlowTools(l *loginFlow) {
	mcp.AddTool(e.server, &mcp.Tool{
		Name:        ToolNCAuthProvision,
		Description: "Give the MCP server an app password for Nextcloud (Login Flow v2): returns a login URL unless access is provisioned already.",
	}, func(_ context.Context, req *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, ncAuthResult, error) {
		e.count(ToolNCAuthProvision)
		return nil, l.provision(userOf(req, userArgs{})), nil
	})
	mcp.AddTool(e.server, &mcp.Tool{
		Name:        ToolNCAuthCheck,
		Description: "Tell whether the MCP server holds Nextcloud access for the caller: login_required, pending or provisioned.",
	}, func(_ context.Context, req *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, ncAuthResult, error) {
		e.count(ToolNCAuthCheck)
		return nil, l.status(userOf(req, userArgs{})), nil
	})
}
