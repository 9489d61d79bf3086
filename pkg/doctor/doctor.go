// Package doctor runs ncmcp's health checks: can this machine log in to
// this server, and keep and use tokens? Each check gives OK, WARN, FAIL or
// SKIP with a detail and, when not OK, what to do.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/serverinfo"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// Status is a check's verdict.
type Status string

// Verdicts, from best to worst (SKIP: not applicable or not reachable).
const (
	OK   Status = "OK"
	Warn Status = "WARN"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Hint says what to do when the status is not OK.
	Hint string `json:"hint,omitempty"`
}

// Inputs are what the checks look at.
type Inputs struct {
	// ServerURL is the server to check; empty skips the server checks.
	ServerURL string
	HTTP      *http.Client
	// Store is probed for a usable keyring under its timeout.
	Store *store.Store
	// Getenv reads the environment (browser settings, display).
	Getenv func(string) string
	// Discover runs discovery with the user's overrides (discovery.Discover
	// when nil).
	Discover func(ctx context.Context, serverURL string) (*discovery.Result, error)
	// Tools lists the MCP tools the server offers to the stored login; nil
	// when that cannot be asked (no login): the check is then skipped.
	Tools func(ctx context.Context) ([]mcpclient.Tool, error)
}

// Run runs every check and returns them in order.
func Run(ctx context.Context, in Inputs) []Check {
	var out []Check
	out = append(out, serverChecks(ctx, in)...)
	out = append(out, keyringCheck(in.Store), loopbackCheck(), browserCheck(in.Getenv))
	return out
}

// Failed reports whether any check failed.
func Failed(checks []Check) bool {
	return slices.ContainsFunc(checks, func(c Check) bool { return c.Status == Fail })
}

func serverChecks(ctx context.Context, in Inputs) []Check {
	names := []string{"server reachable", "server version", "protected-resource metadata", "server generation", "authorization server metadata", "PKCE S256", "registration endpoint", "revocation endpoint", "offline_access", "provisioning tools"}
	if in.ServerURL == "" {
		var out []Check
		for _, n := range names {
			out = append(out, Check{Name: n, Status: Skip, Detail: "no server given", Hint: "pass --server URL (or set NCMCP_SERVER)"})
		}
		return out
	}
	var out []Check
	add := func(c Check) { out = append(out, c) }
	skipRest := func(from int, why string) []Check {
		for _, n := range names[from:] {
			add(Check{Name: n, Status: Skip, Detail: why})
		}
		return out
	}

	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.ServerURL+"/mcp", nil)
	if err != nil {
		add(Check{Name: names[0], Status: Fail, Detail: err.Error()})
		return skipRest(1, "server not reachable")
	}
	resp, err := in.HTTP.Do(req)
	if err != nil {
		add(Check{Name: names[0], Status: Fail, Detail: err.Error(), Hint: "check the URL, the network and any proxy (HTTPS_PROXY)"})
		return skipRest(1, "server not reachable")
	}
	resp.Body.Close()
	d := time.Since(start).Round(time.Millisecond)
	if resp.StatusCode == http.StatusUnauthorized && strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata") {
		add(Check{Name: names[0], Status: OK, Detail: fmt.Sprintf("%s/mcp asks for a token (HTTP 401 with resource_metadata, %s)", in.ServerURL, d)})
	} else {
		add(Check{Name: names[0], Status: Warn, Detail: fmt.Sprintf("%s/mcp answered HTTP %d without a resource_metadata challenge (%s)", in.ServerURL, resp.StatusCode, d), Hint: "is this the MCP server's base URL, with OAuth enabled?"})
	}

	add(versionCheck(ctx, in))

	discover := in.Discover
	if discover == nil {
		discover = func(ctx context.Context, u string) (*discovery.Result, error) {
			return discovery.Discover(ctx, in.HTTP, u)
		}
	}
	res, err := discover(ctx, in.ServerURL)
	if err != nil {
		if strings.HasPrefix(err.Error(), "authorization server metadata") {
			add(Check{Name: names[2], Status: OK, Detail: "found"})
			add(Check{Name: names[3], Status: Skip, Detail: "authorization server metadata unusable"})
			add(Check{Name: names[4], Status: Fail, Detail: err.Error(), Hint: "the IdP named by the server must serve its metadata; a server behind a proxy may name an internal host"})
			return skipRest(5, "no authorization server metadata")
		}
		add(Check{Name: names[2], Status: Fail, Detail: err.Error(), Hint: "the server must serve /.well-known/oauth-protected-resource (RFC 9728)"})
		return skipRest(3, "no protected-resource metadata")
	}
	add(Check{Name: names[2], Status: OK, Detail: fmt.Sprintf("%s names %s", res.ResourceURL, res.Issuer)})
	if res.Generation == discovery.Generation1 {
		add(Check{Name: names[3], Status: OK, Detail: "1 (pass-through: the IdP " + res.Issuer + " issues tokens)"})
	} else {
		add(Check{Name: names[3], Status: OK, Detail: "2 (the server is its own authorization server: codes and refreshes go to " + res.Provider.TokenEndpoint + ")"})
	}
	add(Check{Name: names[4], Status: OK, Detail: fmt.Sprintf("issuer %s, token endpoint %s", res.Provider.Issuer, res.Provider.TokenEndpoint)})
	p := res.Provider
	if p.SupportsS256() {
		add(Check{Name: names[5], Status: OK, Detail: "S256 advertised"})
	} else {
		add(Check{Name: names[5], Status: Warn, Detail: "code_challenge_methods_supported does not list S256", Hint: "the server requires S256 from ncmcp; an IdP that does not support it may still work in generation 1, where the challenge is not forwarded"})
	}
	if p.RegistrationEndpoint != "" {
		add(Check{Name: names[6], Status: OK, Detail: p.RegistrationEndpoint})
	} else {
		add(Check{Name: names[6], Status: Warn, Detail: "none advertised", Hint: "use a pre-registered client id (--client-id)"})
	}
	if p.RevocationEndpoint != "" {
		add(Check{Name: names[7], Status: OK, Detail: p.RevocationEndpoint})
	} else {
		add(Check{Name: names[7], Status: Warn, Detail: "none advertised", Hint: "logout can only forget tokens locally; they stay valid at the IdP until they expire"})
	}
	scopes := append(slices.Clone(res.Resource.ScopesSupported), p.ScopesSupported...)
	if slices.Contains(scopes, "offline_access") {
		add(Check{Name: names[8], Status: OK, Detail: "offered: refresh tokens are possible (scopes_supported: " + strings.Join(uniq(scopes), " ") + ")"})
	} else {
		add(Check{Name: names[8], Status: Warn, Detail: "not in scopes_supported", Hint: "without offline_access there are no refresh tokens: 'ncmcp token' stops working when the access token expires"})
	}
	add(toolsCheck(ctx, in))
	return out
}

// uniq returns the strings in order, without repeats.
func uniq(in []string) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// versionCheck reports the server's version and auth mode from its status
// endpoint (servers v0.65 on).
func versionCheck(ctx context.Context, in Inputs) Check {
	name := "server version"
	info, err := serverinfo.Get(ctx, in.HTTP, in.ServerURL)
	switch {
	case errors.Is(err, serverinfo.ErrNotOffered):
		return Check{Name: name, Status: Warn, Detail: "no /api/v1/status: a server before v0.65, or not a Nextcloud MCP server", Hint: "current servers (v0.65 on) are generation 2 and provision with Login Flow v2; ask the admin to upgrade"}
	case err != nil:
		return Check{Name: name, Status: Warn, Detail: err.Error(), Hint: "the server's status endpoint did not answer; the checks below still tell whether login works"}
	case info.AuthMode != "oauth":
		return Check{Name: name, Status: Warn, Detail: fmt.Sprintf("%s, auth mode %s", info.Version, info.AuthMode), Hint: "ncmcp logs in with OAuth; in auth mode " + info.AuthMode + " the server does not use OAuth tokens"}
	}
	return Check{Name: name, Status: OK, Detail: fmt.Sprintf("%s, auth mode %s", info.Version, info.AuthMode)}
}

func toolsCheck(ctx context.Context, in Inputs) Check {
	name := "provisioning tools"
	if in.Tools == nil {
		return Check{Name: name, Status: Skip, Detail: "not logged in to this server", Hint: "run 'ncmcp login' first to let doctor list the server's tools"}
	}
	tools, err := in.Tools(ctx)
	if err != nil {
		return Check{Name: name, Status: Fail, Detail: err.Error(), Hint: "the MCP endpoint must accept the stored token; 'ncmcp login' again if it was refused"}
	}
	ts, err := provision.Detect(tools)
	if err != nil {
		return Check{Name: name, Status: Warn, Detail: fmt.Sprintf("%d tools, none for provisioning", len(tools)), Hint: "the server runs without offline access: 'ncmcp provision' cannot work there"}
	}
	m, _ := ts.Choose(provision.MethodAuto)
	return Check{Name: name, Status: OK, Detail: fmt.Sprintf("%s ('ncmcp provision' uses %s)", strings.Join(ts.Names(), ", "), m)}
}

func keyringCheck(st *store.Store) Check {
	name := "keyring backend"
	if st == nil {
		return Check{Name: name, Status: Skip, Detail: "no store"}
	}
	if st.Mode == store.ModeFile {
		return Check{Name: name, Status: OK, Detail: "not used (--storage file): secrets go to " + store.SecretsPath(st.Dir)}
	}
	b, _ := st.Backend(store.BackendKeyring)
	start := time.Now()
	_, err := b.Get("doctor-probe")
	d := time.Since(start).Round(time.Millisecond)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return Check{Name: name, Status: OK, Detail: fmt.Sprintf("%s keyring answers (%s)", platformKeyring(), d)}
	}
	if st.Mode == store.ModeKeyring {
		return Check{Name: name, Status: Fail, Detail: err.Error(), Hint: keyringHint()}
	}
	return Check{Name: name, Status: Warn, Detail: err.Error() + "; secrets will go to the owner-only file " + store.SecretsPath(st.Dir), Hint: keyringHint()}
}

func platformKeyring() string {
	switch runtime.GOOS {
	case "darwin":
		return "macOS Keychain"
	case "windows":
		return "Windows Credential Manager"
	}
	return "Secret Service"
}

func keyringHint() string {
	if runtime.GOOS == "linux" {
		return "start a Secret Service (gnome-keyring-daemon --unlock --components=secrets) in a D-Bus session and unlock it, or use --storage file"
	}
	return "unlock the keyring, or use --storage file"
}

func loopbackCheck() Check {
	s, err := loopback.Listen(0)
	if err != nil {
		return Check{Name: "loopback listener", Status: Fail, Detail: err.Error(), Hint: "ncmcp login needs to listen on 127.0.0.1; check firewall or sandbox rules"}
	}
	defer s.Close()
	return Check{Name: "loopback listener", Status: OK, Detail: "can listen on 127.0.0.1"}
}

func browserCheck(getenv func(string) string) Check {
	name := "browser"
	for _, v := range []string{"NCMCP_BROWSER", "BROWSER"} {
		if cmd := strings.Fields(getenv(v)); len(cmd) > 0 {
			if _, err := exec.LookPath(cmd[0]); err != nil {
				return Check{Name: name, Status: Fail, Detail: fmt.Sprintf("%s=%s: %v", v, getenv(v), err), Hint: "fix " + v + ", or use --no-browser"}
			}
			return Check{Name: name, Status: OK, Detail: v + " = " + getenv(v)}
		}
	}
	switch runtime.GOOS {
	case "darwin", "windows":
		return Check{Name: name, Status: OK, Detail: "the system's default browser"}
	}
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return Check{Name: name, Status: Warn, Detail: "no display", Hint: "log in with --no-browser (open the printed URL elsewhere) or --paste, or forward the port with ssh -L"}
	}
	if _, err := exec.LookPath("xdg-open"); err != nil {
		return Check{Name: name, Status: Warn, Detail: "xdg-open not found", Hint: "install xdg-utils, set BROWSER, or use --no-browser"}
	}
	return Check{Name: name, Status: OK, Detail: "xdg-open"}
}
