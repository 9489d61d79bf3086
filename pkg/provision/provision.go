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

// ErrNoTools reports a server without Flow 2 tools: it runs without offline
// access.
var ErrNoTools = errors.New("the server offers no provisioning tools: it runs without offline access (Flow 2)")

// Caller calls MCP tools; *mcpclient.Session implements it.
type Caller interface {
	Call(ctx context.Context, tool string, args map[string]any, out any) error
}

// Toolset is the Flow 2 tools one server offers.
type Toolset struct {
	provision, check, revoke *mcpclient.Tool
}

// Detect picks the Flow 2 tools from tools/list.
func Detect(tools []mcpclient.Tool) (*Toolset, error) {
	ts := &Toolset{}
	for i := range tools {
		switch tools[i].Name {
		case ToolProvision:
			ts.provision = &tools[i]
		case ToolCheck:
			ts.check = &tools[i]
		case ToolRevoke:
			ts.revoke = &tools[i]
		}
	}
	if ts.provision == nil || ts.check == nil {
		return nil, ErrNoTools
	}
	return ts, nil
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

// Start is the answer of provision_nextcloud_access.
type Start struct {
	Success            bool   `json:"success"`
	AlreadyProvisioned bool   `json:"already_provisioned"`
	AuthorizationURL   string `json:"authorization_url"`
	ProvisioningURL    string `json:"provisioning_url"`
	Message            string `json:"message"`
}

// URL is the page the user must open: the Flow 2 authorization URL, or on
// newer servers a provisioning page.
func (s *Start) URL() string {
	if s.AuthorizationURL != "" {
		return s.AuthorizationURL
	}
	return s.ProvisioningURL
}

// Status is the answer of check_provisioning_status.
type Status struct {
	IsProvisioned bool       `json:"is_provisioned"`
	ProvisionedAt *time.Time `json:"provisioned_at"`
	ClientID      string     `json:"client_id"`
	Scopes        []string   `json:"scopes"`
	FlowType      string     `json:"flow_type"`
}

// Start asks the server to start provisioning for the user sub.
func (ts *Toolset) Start(ctx context.Context, c Caller, sub string) (*Start, error) {
	var s Start
	if err := c.Call(ctx, ts.provision.Name, args(ts.provision, sub), &s); err != nil {
		return nil, err
	}
	if !s.Success && !s.AlreadyProvisioned {
		msg := s.Message
		if msg == "" {
			msg = "no reason given"
		}
		return nil, fmt.Errorf("the server did not start provisioning: %s", msg)
	}
	return &s, nil
}

// Status asks whether the server holds a token for the user sub.
func (ts *Toolset) Status(ctx context.Context, c Caller, sub string) (*Status, error) {
	var s Status
	if err := c.Call(ctx, ts.check.Name, args(ts.check, sub), &s); err != nil {
		return nil, err
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
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return fmt.Errorf("refusing to open %q: not an http(s) URL", raw)
	}
	s, err := url.Parse(serverURL)
	if err != nil {
		return err
	}
	if !strings.EqualFold(u.Scheme, s.Scheme) || !strings.EqualFold(u.Host, s.Host) {
		return fmt.Errorf("refusing to open %s: it is not on the server's origin %s://%s", u.Scheme+"://"+u.Host, s.Scheme, s.Host)
	}
	return nil
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
