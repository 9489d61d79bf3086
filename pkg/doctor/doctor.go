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
	// Discover runs discovery with the user's overrides added to o
	// (discovery.DiscoverWith when nil).
	Discover func(ctx context.Context, serverURL string, o discovery.Options) (*discovery.Result, error)
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

// serverCheckNames are the server checks, in order.
var serverCheckNames = []string{"server reachable", "server version", "protected-resource metadata", "authorization server metadata", "server generation", "PKCE S256", "client registration", "revocation endpoint", "offline_access", "provisioning tools"}

// serverChecks discover the server as 'ncmcp login' does and report each
// step: the MCP endpoint's challenge, the protected-resource metadata, the
// authorization server's metadata (with every URL tried), then what login
// and refresh need of them.
func serverChecks(ctx context.Context, in Inputs) []Check {
	names := serverCheckNames
	if in.ServerURL == "" {
		var out []Check
		for _, n := range names {
			out = append(out, Check{Name: n, Status: Skip, Detail: "no server given", Hint: "pass --server URL (or set NCMCP_SERVER)"})
		}
		return out
	}
	var steps []discovery.Step
	trace := func(s discovery.Step) { steps = append(steps, s) }
	discover := in.Discover
	if discover == nil {
		discover = func(ctx context.Context, u string, o discovery.Options) (*discovery.Result, error) {
			return discovery.DiscoverWith(ctx, in.HTTP, u, o)
		}
	}
	res, derr := discover(ctx, in.ServerURL, discovery.Options{Trace: trace})
	var out []Check
	add := func(c Check) { out = append(out, c) }
	skipRest := func(from int, why string) []Check {
		for _, n := range names[from:] {
			add(Check{Name: n, Status: Skip, Detail: why})
		}
		return out
	}
	// failedAt is the step discovery stopped at.
	failedAt := ""
	if derr != nil && len(steps) > 0 {
		failedAt = steps[len(steps)-1].What
	}

	ep := stepsOf(steps, discovery.StepEndpoint)
	var nm *discovery.NotMCPError
	switch {
	case errors.As(derr, &nm):
		add(Check{Name: names[0], Status: Fail, Detail: derr.Error(), Hint: "check the URL: an MCP server answers an MCP request at its endpoint (often /mcp) with a 401 challenge or a JSON or event-stream answer"})
		return skipRest(1, "not an MCP server")
	case derr != nil && failedAt == discovery.StepEndpoint:
		add(Check{Name: names[0], Status: Fail, Detail: derr.Error(), Hint: "check the URL, the network and any proxy (HTTPS_PROXY)"})
		return skipRest(1, "server not reachable")
	case derr != nil && len(steps) == 0:
		add(Check{Name: names[0], Status: Fail, Detail: derr.Error(), Hint: "pass the MCP server's URL"})
		return skipRest(1, "server not reachable")
	case used(ep) != nil:
		add(Check{Name: names[0], Status: OK, Detail: describe(ep)})
	default:
		add(Check{Name: names[0], Status: Warn, Detail: describe(ep), Hint: "is this the MCP server's URL (its base URL, or the endpoint itself)?"})
	}
	// The status endpoint is what shows a Nextcloud MCP server (v0.65 on).
	info, ierr := serverinfo.Get(ctx, in.HTTP, in.ServerURL)
	add(versionCheck(info, ierr))

	prm := stepsOf(steps, discovery.StepResource)
	switch {
	case derr != nil && failedAt == discovery.StepResource:
		add(Check{Name: names[2], Status: Fail, Detail: derr.Error() + "; " + describe(prm), Hint: "the server must serve protected-resource metadata (RFC 9728) that names it"})
		return skipRest(3, "no protected-resource metadata")
	case used(prm) != nil:
		add(Check{Name: names[2], Status: OK, Detail: describe(prm)})
	default:
		add(Check{Name: names[2], Status: Warn, Detail: "none: " + describe(prm) + "; the server's own origin is taken as its authorization server (MCP 2025-03-26)",
			Hint: "current MCP servers publish protected-resource metadata; this one follows an older revision"})
	}

	asm := stepsOf(steps, discovery.StepAuthorization)
	if derr != nil {
		add(Check{Name: names[3], Status: Fail, Detail: derr.Error() + "; " + describe(asm), Hint: "the authorization server must serve its metadata (RFC 8414 or OpenID Connect Discovery); a server behind a proxy may name an internal host (--issuer, --public-issuer)"})
		return skipRest(4, "no authorization server metadata")
	}
	p := res.Provider
	add(Check{Name: names[3], Status: OK, Detail: fmt.Sprintf("issuer %s, authorization endpoint %s, token endpoint %s; %s", p.Issuer, p.AuthorizationEndpoint, p.TokenEndpoint, describe(asm))})

	switch {
	case res.Generation == discovery.Generation1:
		add(Check{Name: names[4], Status: OK, Detail: "Nextcloud MCP server generation 1 (its /oauth/authorize passes the login through to " + res.Issuer + ", which issues the tokens)"})
	case res.Generation == discovery.Generation2 && info != nil:
		add(Check{Name: names[4], Status: OK, Detail: "Nextcloud MCP server generation 2 (its own authorization server: codes and refreshes go to " + p.TokenEndpoint + ")"})
	case res.Generation == discovery.Generation2:
		add(Check{Name: names[4], Status: OK, Detail: "an MCP server with its own authorization server (codes and refreshes go to " + p.TokenEndpoint + ")"})
	default:
		add(Check{Name: names[4], Status: OK, Detail: "an MCP server behind " + res.Issuer})
	}
	switch {
	case p.SupportsS256():
		add(Check{Name: names[5], Status: OK, Detail: "S256 advertised"})
	case res.Generation == discovery.Generation1:
		add(Check{Name: names[5], Status: Warn, Detail: "the IdP's code_challenge_methods_supported does not list S256", Hint: "generation 1 does not pass the challenge on, so login still works"})
	default:
		add(Check{Name: names[5], Status: Fail, Detail: "code_challenge_methods_supported does not list S256", Hint: "MCP requires PKCE with S256 and ncmcp will not log in without it: the authorization server's admin must enable it"})
	}
	switch {
	case p.RegistrationEndpoint != "":
		add(Check{Name: names[6], Status: OK, Detail: "dynamic registration at " + p.RegistrationEndpoint})
	case p.ClientIDMetadataDocumentSupported:
		add(Check{Name: names[6], Status: OK, Detail: "client ID metadata documents (a URL as client id: --client-metadata-url)"})
	default:
		add(Check{Name: names[6], Status: Warn, Detail: "no registration endpoint, no client ID metadata documents", Hint: "use a pre-registered client id (--client-id)"})
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
	if res.Generation == discovery.Generation1 || info != nil {
		add(toolsCheck(ctx, in))
	} else {
		add(Check{Name: names[9], Status: Skip, Detail: "not shown to be a Nextcloud MCP server (no /api/v1/status)"})
	}
	return out
}

// stepsOf returns the steps about what.
func stepsOf(steps []discovery.Step, what string) []discovery.Step {
	var out []discovery.Step
	for _, s := range steps {
		if s.What == what {
			out = append(out, s)
		}
	}
	return out
}

// used returns the step discovery went on with, or nil.
func used(steps []discovery.Step) *discovery.Step {
	for i := range steps {
		if steps[i].Used {
			return &steps[i]
		}
	}
	return nil
}

// describe lists the steps as "URL: outcome", the one used first.
func describe(steps []discovery.Step) string {
	if len(steps) == 0 {
		return "nothing tried"
	}
	var parts []string
	if u := used(steps); u != nil {
		parts = append(parts, u.URL+": "+u.Outcome)
	}
	var tried []string
	for _, s := range steps {
		if !s.Used {
			tried = append(tried, s.URL+": "+s.Outcome)
		}
	}
	if len(tried) > 0 {
		parts = append(parts, "tried "+strings.Join(tried, "; "))
	}
	return strings.Join(parts, "; ")
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
func versionCheck(info *serverinfo.Info, err error) Check {
	name := "server version"
	switch {
	case errors.Is(err, serverinfo.ErrNotOffered):
		return Check{Name: name, Status: Warn, Detail: "no /api/v1/status: a Nextcloud MCP server before v0.65, or another MCP server", Hint: "current Nextcloud MCP servers (v0.65 on) have it; for other MCP servers this is expected"}
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
