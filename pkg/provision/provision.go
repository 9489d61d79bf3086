// Package provision runs Flow 2 (ADR-004): through the MCP server's tools
// it starts the browser flow that gives the server its own offline refresh
// token for the user, and confirms by polling that the server has it.
package provision

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
)

// Tool names of the seed-generation Flow 2 surface.
const (
	ToolProvision = "provision_nextcloud_access"
	ToolCheck     = "check_provisioning_status"
	ToolRevoke    = "revoke_nextcloud_access"
)

// Tool names of newer servers (v0.65 on), which provision a Nextcloud app
// password through Login Flow v2.
const (
	ToolNCAuthProvision = "nc_auth_provision_access"
	ToolNCAuthCheck     = "nc_auth_check_status"
)

// ErrNoTools reports a server without Flow 2 tools: it runs without offline
// access.
var ErrNoTools = errors.New("the server offers no provisioning tools: it runs without offline access (Flow 2)")

// Caller calls MCP tools; *mcpclient.Session implements it.
type Caller interface {
	Call(ctx context.Context, tool string, args map[string]any, out any) error
}

// Toolset is the provisioning tools one server offers: the seed's Flow 2
// tools, or else the newer Login Flow ones.
type Toolset struct {
	provision, check, revoke *mcpclient.Tool
	// LoginFlow is set for the newer nc_auth_* tools.
	LoginFlow bool
}

// Detect picks the provisioning tools from tools/list, preferring the seed's.
func Detect(tools []mcpclient.Tool) (*Toolset, error) {
	find := func(name string) *mcpclient.Tool {
		for i := range tools {
			if tools[i].Name == name {
				return &tools[i]
			}
		}
		return nil
	}
	if p, c := find(ToolProvision), find(ToolCheck); p != nil && c != nil {
		return &Toolset{provision: p, check: c, revoke: find(ToolRevoke)}, nil
	}
	if p, c := find(ToolNCAuthProvision), find(ToolNCAuthCheck); p != nil && c != nil {
		return &Toolset{provision: p, check: c, LoginFlow: true}, nil
	}
	return nil, ErrNoTools
}

// PollInterval is how often to ask for the status: every 2 s for the
// seed's tools, every 5 s for Login Flow.
func (ts *Toolset) PollInterval() time.Duration {
	if ts.LoginFlow {
		return 5 * time.Second
	}
	return 2 * time.Second
}

// CanRevoke reports whether the server offers revoke_nextcloud_access.
func (ts *Toolset) CanRevoke() bool { return ts.revoke != nil }

// args sends user_id only to a tool whose schema declares it: newer servers
// take no arguments and use the token's subject.
func args(t *mcpclient.Tool, sub string) map[string]any {
	if t.Has("user_id") {
		return map[string]any{"user_id": sub}
	}
	return map[string]any{}
}

// Start is the answer of the provisioning tool.
type Start struct {
	Success            bool   `json:"success"`
	AlreadyProvisioned bool   `json:"already_provisioned"`
	AuthorizationURL   string `json:"authorization_url"`
	ProvisioningURL    string `json:"provisioning_url"`
	LoginURL           string `json:"login_url"`
	// Status is the Login Flow tools' state: login_required, pending,
	// provisioned, ...
	Status  string `json:"status"`
	Message string `json:"message"`
}

// URL is the page the user must open: the Flow 2 authorization URL, a
// Login Flow URL, or on newer servers a provisioning page.
func (s *Start) URL() string {
	for _, u := range []string{s.AuthorizationURL, s.LoginURL, s.ProvisioningURL} {
		if u != "" {
			return u
		}
	}
	return ""
}

// Status is the answer of the status tool.
type Status struct {
	IsProvisioned bool       `json:"is_provisioned"`
	ProvisionedAt *time.Time `json:"provisioned_at"`
	ClientID      string     `json:"client_id"`
	Scopes        []string   `json:"scopes"`
	FlowType      string     `json:"flow_type"`
	// State and CredentialType come from the Login Flow tools.
	State          string `json:"status"`
	CredentialType string `json:"credential_type"`
}

// Start asks the server to start provisioning for the user sub.
func (ts *Toolset) Start(ctx context.Context, c Caller, sub string) (*Start, error) {
	var s Start
	if err := c.Call(ctx, ts.provision.Name, args(ts.provision, sub), &s); err != nil {
		return nil, err
	}
	if ts.LoginFlow {
		s.AlreadyProvisioned = s.Status == "provisioned"
		if !s.AlreadyProvisioned && s.URL() == "" {
			return nil, fmt.Errorf("the server did not start provisioning (status %q): %s", s.Status, orNoReason(s.Message))
		}
		return &s, nil
	}
	if !s.Success && !s.AlreadyProvisioned {
		return nil, fmt.Errorf("the server did not start provisioning: %s", orNoReason(s.Message))
	}
	return &s, nil
}

func orNoReason(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// Status asks whether the server holds a token for the user sub.
func (ts *Toolset) Status(ctx context.Context, c Caller, sub string) (*Status, error) {
	var s Status
	if err := c.Call(ctx, ts.check.Name, args(ts.check, sub), &s); err != nil {
		return nil, err
	}
	if ts.LoginFlow {
		s.IsProvisioned = s.State == "provisioned"
		s.FlowType = s.CredentialType
		if s.FlowType == "" {
			s.FlowType = "login-flow-v2"
		}
	}
	return &s, nil
}

// Revoke asks the server to delete its token for the user sub.
func (ts *Toolset) Revoke(ctx context.Context, c Caller, sub string) (string, error) {
	if ts.revoke == nil {
		return "", errors.New("the server offers no revoke_nextcloud_access tool")
	}
	var r struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
	}
	if err := c.Call(ctx, ts.revoke.Name, args(ts.revoke, sub), &r); err != nil {
		return "", err
	}
	if !r.Success {
		return "", fmt.Errorf("the server did not revoke its token: %s", r.Message)
	}
	return r.Message, nil
}

// CheckURL accepts only an http(s) URL on the server's own origin (scheme,
// host and port): a server must not make ncmcp open arbitrary URLs or
// schemes.
func CheckURL(raw, serverURL string) error {
	u, err := httpURL(raw)
	if err != nil {
		return err
	}
	if !sameOrigin(u, serverURL) {
		s, _ := url.Parse(serverURL)
		return fmt.Errorf("refusing to open %s: it is not on the server's origin %s://%s", u.Scheme+"://"+u.Host, s.Scheme, s.Host)
	}
	return nil
}

// Placement says how a provisioning page may be shown.
type Placement int

// Placements of a provisioning page.
const (
	// OpenIt: on the server's own origin; may be opened in the browser.
	OpenIt Placement = iota
	// ShowIt: an https page elsewhere (Login Flow pages live on the
	// Nextcloud host): printed for the user to open, never opened by ncmcp.
	ShowIt
)

// CheckLoginFlowURL accepts the Login Flow tools' page: on the server's
// origin it may be opened; an https page on another host is only shown;
// anything else is refused.
func CheckLoginFlowURL(raw, serverURL string) (Placement, error) {
	u, err := httpURL(raw)
	if err != nil {
		return 0, err
	}
	if sameOrigin(u, serverURL) {
		return OpenIt, nil
	}
	if u.Scheme != "https" {
		return 0, fmt.Errorf("refusing %s: a page off the server's origin must use https", u.Scheme+"://"+u.Host)
	}
	return ShowIt, nil
}

func httpURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return nil, fmt.Errorf("refusing to open %q: not an http(s) URL", raw)
	}
	return u, nil
}

func sameOrigin(u *url.URL, serverURL string) bool {
	s, err := url.Parse(serverURL)
	return err == nil && strings.EqualFold(u.Scheme, s.Scheme) && strings.EqualFold(u.Host, s.Host)
}

// Wait polls status every interval until it reports provisioned or ctx
// ends. tick is called before each poll with the time waited so far.
func Wait(ctx context.Context, interval time.Duration, status func(context.Context) (*Status, error), tick func(time.Duration)) (*Status, error) {
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		if tick != nil {
			tick(time.Since(start))
		}
		s, err := status(ctx)
		switch {
		case err == nil && s.IsProvisioned:
			return s, nil
		case err != nil && ctx.Err() == nil:
			var te *mcpclient.ToolError
			var ue *mcpclient.UnauthorizedError
			if errors.As(err, &ue) || errors.As(err, &te) {
				return nil, err
			}
			// A failed poll (the server restarting, a network hiccup) is
			// retried at the next tick; the last failure is reported.
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return nil, &WaitError{Err: ctx.Err(), Last: last}
			}
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// WaitError is the end of a wait whose last polls failed.
type WaitError struct {
	Err  error
	Last error
}

func (e *WaitError) Error() string { return fmt.Sprintf("%v (last poll: %v)", e.Err, e.Last) }
func (e *WaitError) Unwrap() error { return e.Err }
