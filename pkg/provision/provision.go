// Package provision gives the MCP server its own access to the user's
// Nextcloud, through the server's MCP tools, and confirms it by polling
// them: Nextcloud Login Flow v2 (the server gets an app password; tools
// nc_auth_provision_access, nc_auth_check_status, nc_auth_update_scopes) on
// current servers, Flow 2 (ADR-004: the server gets its own offline refresh
// token; tools provision_nextcloud_access, check_provisioning_status,
// revoke_nextcloud_access) on older ones.
package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
)

// Tool names of Flow 2 (every server offers them; newer ones answer with a settings page).
const (
	ToolProvision = "provision_nextcloud_access"
	ToolCheck     = "check_provisioning_status"
	ToolRevoke    = "revoke_nextcloud_access"
)

// Tool names of Nextcloud Login Flow v2 provisioning (servers v0.65 on).
const (
	ToolNCAuthProvision = "nc_auth_provision_access"
	ToolNCAuthCheck     = "nc_auth_check_status"
	ToolNCAuthUpdate    = "nc_auth_update_scopes"
)

// Method is how the server gets its access.
type Method string

// Provisioning methods.
const (
	// MethodAuto picks MethodLoginFlow where the server offers it, else
	// MethodFlow2.
	MethodAuto Method = "auto"
	// MethodLoginFlow: Nextcloud Login Flow v2, an app password.
	MethodLoginFlow Method = "login-flow"
	// MethodFlow2: ADR-004's Flow 2, an offline refresh token (or, on
	// servers that moved it there, a Nextcloud settings page).
	MethodFlow2 Method = "flow2"
)

// ParseMethod parses a --method value.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case MethodAuto, MethodLoginFlow, MethodFlow2:
		return m, nil
	case "":
		return MethodAuto, nil
	}
	return "", fmt.Errorf("invalid method %q: want auto, login-flow or flow2", s)
}

// Kinds of server-side credentials, as 'ncmcp tokens list' shows them.
const (
	// KindFlow2 is an offline refresh token from Flow 2.
	KindFlow2 = "flow2"
	// KindLoginFlow is a Nextcloud app password from Login Flow v2.
	KindLoginFlow = "login-flow-v2"
)

// ErrNoTools reports a server without provisioning tools: it runs without
// offline access.
var ErrNoTools = errors.New("the server offers no provisioning tools: it runs without offline access")

// Caller calls MCP tools; *mcpclient.Session implements it.
type Caller interface {
	Call(ctx context.Context, tool string, args map[string]any, out any) error
}

// Toolset is the provisioning tools one server offers.
type Toolset struct {
	provision, check, revoke       *mcpclient.Tool
	ncProvision, ncCheck, ncUpdate *mcpclient.Tool
}

// Detect finds the provisioning tools in tools/list: a complete set of
// either kind (start and status tool) is needed.
func Detect(tools []mcpclient.Tool) (*Toolset, error) {
	find := func(name string) *mcpclient.Tool {
		for i := range tools {
			if tools[i].Name == name {
				return &tools[i]
			}
		}
		return nil
	}
	ts := &Toolset{provision: find(ToolProvision), check: find(ToolCheck), revoke: find(ToolRevoke),
		ncProvision: find(ToolNCAuthProvision), ncCheck: find(ToolNCAuthCheck), ncUpdate: find(ToolNCAuthUpdate)}
	if !ts.offers(MethodFlow2) {
		ts.provision, ts.check = nil, nil
	}
	if !ts.offers(MethodLoginFlow) {
		ts.ncProvision, ts.ncCheck, ts.ncUpdate = nil, nil, nil
	}
	if !ts.offers(MethodFlow2) && !ts.offers(MethodLoginFlow) {
		return nil, ErrNoTools
	}
	return ts, nil
}

func (ts *Toolset) offers(m Method) bool {
	switch m {
	case MethodFlow2:
		return ts.provision != nil && ts.check != nil
	case MethodLoginFlow:
		return ts.ncProvision != nil && ts.ncCheck != nil
	}
	return false
}

// Choose resolves m against what the server offers: auto prefers Login
// Flow v2.
func (ts *Toolset) Choose(m Method) (Method, error) {
	switch m {
	case MethodAuto, "":
		if ts.offers(MethodLoginFlow) {
			return MethodLoginFlow, nil
		}
		return MethodFlow2, nil
	case MethodLoginFlow, MethodFlow2:
		if !ts.offers(m) {
			return "", fmt.Errorf("the server offers no %s provisioning tools (%s)", m, ts.names(m))
		}
		return m, nil
	}
	return "", fmt.Errorf("unknown provisioning method %q", m)
}

func (ts *Toolset) names(m Method) string {
	if m == MethodLoginFlow {
		return ToolNCAuthProvision + ", " + ToolNCAuthCheck
	}
	return ToolProvision + ", " + ToolCheck
}

// Names returns the provisioning tools the server offers.
func (ts *Toolset) Names() []string {
	var out []string
	for _, t := range []*mcpclient.Tool{ts.ncProvision, ts.ncCheck, ts.ncUpdate, ts.provision, ts.check, ts.revoke} {
		if t != nil {
			out = append(out, t.Name)
		}
	}
	return out
}

// CanRevoke reports whether the server offers revoke_nextcloud_access,
// which removes either kind of server-side credential.
func (ts *Toolset) CanRevoke() bool { return ts.revoke != nil }

// CanUpdateScopes reports whether the server offers nc_auth_update_scopes.
func (ts *Toolset) CanUpdateScopes() bool { return ts.ncUpdate != nil }

// PollInterval is how often to ask for the status: every 5 s for Login
// Flow v2 (each question makes the server poll Nextcloud once), every 2 s
// for Flow 2.
func PollInterval(m Method) time.Duration {
	if m == MethodLoginFlow {
		return 5 * time.Second
	}
	return 2 * time.Second
}

// userArgs sends user_id only to a tool whose schema declares it: newer
// servers take no arguments and use the token's subject.
func userArgs(t *mcpclient.Tool, sub string) map[string]any {
	if t.Has("user_id") {
		return map[string]any{"user_id": sub}
	}
	return map[string]any{}
}

// Status is what the server holds for the user.
type Status struct {
	Provisioned bool
	// Kind is KindFlow2 or KindLoginFlow (or the server's own word for an
	// unknown credential type).
	Kind          string
	ProvisionedAt *time.Time
	// ClientID is the OAuth client of a Flow 2 token.
	ClientID string
	// Scopes restrict the credential; nil means no restriction beyond the
	// user's token (Login Flow) or not reported.
	Scopes []string
	// Username is the Nextcloud login name of an app password, when the
	// Login Flow status tool reported it.
	Username string
	// Pending is set while a Login Flow waits for the user's grant.
	Pending bool
	// State is the Login Flow tools' status word (login_required, pending,
	// provisioned, not_initiated, error, ...).
	State   string
	Message string
}

// flow2Status is the answer of check_provisioning_status.
type flow2Status struct {
	IsProvisioned  bool       `json:"is_provisioned"`
	ProvisionedAt  *time.Time `json:"provisioned_at"`
	ClientID       *string    `json:"client_id"`
	Scopes         []string   `json:"scopes"`
	FlowType       *string    `json:"flow_type"`
	CredentialType *string    `json:"credential_type"`
}

// ncStatus is the answer of the nc_auth_* tools.
type ncStatus struct {
	Success  *bool    `json:"success"`
	Status   string   `json:"status"`
	LoginURL string   `json:"login_url"`
	Message  string   `json:"message"`
	UserID   string   `json:"user_id"`
	Username string   `json:"username"`
	Scopes   []string `json:"scopes"`
	// nc_auth_update_scopes
	PreviousScopes []string `json:"previous_scopes"`
	NewScopes      []string `json:"new_scopes"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// kindOf maps the server's credential_type / flow_type to a Kind.
func kindOf(credentialType, flowType string) string {
	switch {
	case credentialType == "app_password" || flowType == "login_flow_v2":
		return KindLoginFlow
	case credentialType == "refresh_token" || flowType == "flow2" || flowType == "":
		return KindFlow2
	}
	return flowType
}

// Status asks what the server holds for the user sub, without side
// effects where possible: check_provisioning_status (which reports both
// kinds) when offered, else nc_auth_check_status (which also polls a
// pending Login Flow once).
func (ts *Toolset) Status(ctx context.Context, c Caller, sub string) (*Status, error) {
	if ts.check != nil {
		var r flow2Status
		if err := c.Call(ctx, ts.check.Name, userArgs(ts.check, sub), &r); err != nil {
			return nil, err
		}
		s := &Status{Provisioned: r.IsProvisioned, ProvisionedAt: r.ProvisionedAt, ClientID: deref(r.ClientID), Scopes: r.Scopes}
		if s.Provisioned {
			s.Kind = kindOf(deref(r.CredentialType), deref(r.FlowType))
			if s.Kind == KindLoginFlow {
				s.ClientID = ""
			}
		}
		return s, nil
	}
	return ts.loginFlowStatus(ctx, c)
}

// loginFlowStatus calls nc_auth_check_status.
func (ts *Toolset) loginFlowStatus(ctx context.Context, c Caller) (*Status, error) {
	var r ncStatus
	if err := c.Call(ctx, ts.ncCheck.Name, map[string]any{}, &r); err != nil {
		return nil, err
	}
	s := &Status{State: r.Status, Message: r.Message, Username: r.Username, Scopes: r.Scopes}
	switch r.Status {
	case "provisioned":
		s.Provisioned, s.Kind = true, KindLoginFlow
	case "pending":
		s.Pending = true
	}
	return s, nil
}

// Revoke asks the server to delete what it holds for the user sub.
func (ts *Toolset) Revoke(ctx context.Context, c Caller, sub string) (string, error) {
	if ts.revoke == nil {
		return "", errors.New("the server offers no " + ToolRevoke + " tool")
	}
	var r struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
	}
	if err := c.Call(ctx, ts.revoke.Name, userArgs(ts.revoke, sub), &r); err != nil {
		return "", err
	}
	if !r.Success {
		return "", &RefusedError{Tool: ts.revoke.Name, Message: r.Message}
	}
	return r.Message, nil
}

// RefusedError is a tool's answer that it did not do what was asked
// (success false, status "error", "declined", ...): the server's words.
type RefusedError struct {
	Tool    string
	State   string
	Message string
}

func (e *RefusedError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "no reason given"
	}
	if e.State != "" && e.State != "error" {
		return fmt.Sprintf("the server's %s answered %s: %s", e.Tool, e.State, msg)
	}
	return fmt.Sprintf("the server's %s refused: %s", e.Tool, msg)
}

// Wait polls status every interval until it reports provisioned or ctx
// ends. tick is called before each poll with the time waited so far. A
// refused token or a tool error ends the wait; other failures (a server
// restarting, a network hiccup) are retried at the next tick.
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
		case err == nil && s.Provisioned:
			return s, nil
		case err != nil && ctx.Err() == nil:
			if final(err) {
				return nil, err
			}
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

// final reports errors that polling again cannot cure.
func final(err error) bool {
	var te *mcpclient.ToolError
	var ue *mcpclient.UnauthorizedError
	var se *mcpclient.InsufficientScopeError
	var re *RefusedError
	return errors.As(err, &ue) || errors.As(err, &te) || errors.As(err, &se) || errors.As(err, &re)
}

// WaitError is the end of a wait whose last polls failed.
type WaitError struct {
	Err  error
	Last error
}

func (e *WaitError) Error() string { return fmt.Sprintf("%v (last poll: %v)", e.Err, e.Last) }
func (e *WaitError) Unwrap() error { return e.Err }
