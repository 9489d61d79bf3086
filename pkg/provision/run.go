package provision

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
)

// UI is how a provisioning run reaches the user.
type UI interface {
	// ShowPage asks the user to open p: it shows the page and, where the
	// user consents (see Decide), opens it in the browser.
	ShowPage(ctx context.Context, p Page)
	// Notice tells the user something worth knowing. It may quote the
	// server's text, which the UI must render safely.
	Notice(msg string)
	// Waiting reports progress while the server is polled; a negative
	// elapsed time ends the display.
	Waiting(elapsed time.Duration)
}

// Input is what a provisioning run is asked to do.
type Input struct {
	Method Method
	// Subject is the user's sub, for servers whose tools take user_id.
	Subject string
	// Force revokes what the server holds and provisions again.
	Force bool
	// Scopes restrict a new Login Flow grant (nil: no restriction beyond
	// the user's token).
	Scopes []string
	// AddScopes and RemoveScopes change an existing Login Flow grant.
	AddScopes, RemoveScopes []string
	// NoWait returns once the page is shown, without polling.
	NoWait bool
	// Interval between polls; zero means PollInterval(method).
	Interval time.Duration
	// Timeout bounds the polling.
	Timeout time.Duration
}

// Outcome is how a run ended.
type Outcome string

// Outcomes of a run.
const (
	OutcomeProvisioned Outcome = "provisioned"
	OutcomeAlready     Outcome = "already_provisioned"
	// OutcomeStarted: the page was shown, not waited for (NoWait).
	OutcomeStarted Outcome = "started"
	// OutcomeUnchanged: a scope update that changed nothing.
	OutcomeUnchanged Outcome = "unchanged"
)

// Result is the end of a run.
type Result struct {
	Method  Method
	Outcome Outcome
	// Page is the page the user was asked to open, if any.
	Page *Page
	// Status is what the server holds at the end, when it said.
	Status *Status
	// Message is the server's message for OutcomeUnchanged.
	Message string
	// Replaced is set when what the server held was revoked first (Force,
	// or a scope change that needs a new grant).
	Replaced bool
}

// Provisioner runs provisioning for one server and answers the server's
// elicitations during it (connect the MCP session with OnElicit).
type Provisioner struct {
	ServerURL string
	UI        UI

	mu    sync.Mutex
	shown map[string]bool
}

// OnElicit answers an elicitation of a provisioning tool: a page to open
// (url mode, or a form whose message names the page) is checked like any
// provisioning page, shown, and accepted; the form's fields keep their
// defaults (ncmcp does not claim the user finished: polling confirms that).
// Anything else is declined, with the server's message passed on.
func (p *Provisioner) OnElicit(ctx context.Context, e mcpclient.Elicitation) (mcpclient.ElicitAction, map[string]any) {
	raw := e.URL
	if e.Mode != "url" {
		raw = FindURL(e.Message)
	}
	if raw == "" {
		p.UI.Notice("The server asked for input that ncmcp cannot give (declined): " + e.Message)
		return mcpclient.ElicitDecline, nil
	}
	page, err := CheckPage(raw, p.ServerURL, "login-flow")
	if err != nil {
		p.UI.Notice("The server asked to open a page that ncmcp refuses (declined): " + err.Error())
		return mcpclient.ElicitDecline, nil
	}
	p.show(ctx, page)
	return mcpclient.ElicitAccept, nil
}

// show shows a page once per run, however often the server names it.
func (p *Provisioner) show(ctx context.Context, page Page) {
	p.mu.Lock()
	if p.shown == nil {
		p.shown = map[string]bool{}
	}
	seen := p.shown[page.URL]
	p.shown[page.URL] = true
	p.mu.Unlock()
	if !seen {
		p.UI.ShowPage(ctx, page)
	}
}

// Run provisions with the tools ts of the session c.
func (p *Provisioner) Run(ctx context.Context, c Caller, ts *Toolset, in Input) (*Result, error) {
	m, err := ts.Choose(in.Method)
	if err != nil {
		return nil, err
	}
	if len(in.AddScopes) > 0 || len(in.RemoveScopes) > 0 {
		if m != MethodLoginFlow || !ts.CanUpdateScopes() {
			return nil, errors.New("the server offers no " + ToolNCAuthUpdate + " tool to change the scopes of its access")
		}
		return p.updateScopes(ctx, c, ts, in)
	}
	if m == MethodLoginFlow {
		return p.loginFlow(ctx, c, ts, in)
	}
	return p.flow2(ctx, c, ts, in)
}

// replace revokes what the server holds, for Force.
func (p *Provisioner) replace(ctx context.Context, c Caller, ts *Toolset, in Input) error {
	if !ts.CanRevoke() {
		return errors.New("the server already has access and offers no " + ToolRevoke + " tool to replace it")
	}
	if _, err := ts.Revoke(ctx, c, in.Subject); err != nil {
		return err
	}
	p.UI.Notice("Removed the server's current access; provisioning again.")
	return nil
}

// loginFlow starts Nextcloud Login Flow v2 and waits for the grant.
func (p *Provisioner) loginFlow(ctx context.Context, c Caller, ts *Toolset, in Input) (*Result, error) {
	res := &Result{Method: MethodLoginFlow}
	start, err := p.callNC(ctx, c, ts.ncProvision.Name, scopeArgs(in.Scopes))
	if err != nil {
		return nil, err
	}
	if start.Status == "already_provisioned" && in.Force {
		if err := p.replace(ctx, c, ts, in); err != nil {
			return nil, err
		}
		res.Replaced = true
		if start, err = p.callNC(ctx, c, ts.ncProvision.Name, scopeArgs(in.Scopes)); err != nil {
			return nil, err
		}
	}
	switch start.Status {
	case "already_provisioned", "provisioned":
		res.Outcome = OutcomeAlready
		res.Status, _ = ts.Status(ctx, c, in.Subject)
		return res, nil
	case "login_required":
	default:
		return nil, &RefusedError{Tool: ts.ncProvision.Name, State: start.Status, Message: start.Message}
	}
	if err := p.showPage(ctx, res, start.LoginURL, "login-flow"); err != nil {
		return nil, err
	}
	return p.wait(ctx, res, in, MethodLoginFlow, func(ctx context.Context) (*Status, error) {
		s, err := ts.loginFlowStatus(ctx, c)
		if err == nil && !s.Provisioned && !s.Pending {
			// not_initiated: the server lost the flow (restarted);
			// error: Nextcloud refused.
			return nil, &RefusedError{Tool: ts.ncCheck.Name, State: s.State, Message: s.Message}
		}
		return s, err
	})
}

// updateScopes changes the scopes of an existing Login Flow grant. The
// server answers a change that needs a new grant with a new Login Flow,
// but keeps using (and reporting) the old app password until that is
// gone; so the old one is revoked for the new grant to be picked up.
func (p *Provisioner) updateScopes(ctx context.Context, c Caller, ts *Toolset, in Input) (*Result, error) {
	res := &Result{Method: MethodLoginFlow}
	args := map[string]any{}
	if len(in.AddScopes) > 0 {
		args["add_scopes"] = in.AddScopes
	}
	if len(in.RemoveScopes) > 0 {
		args["remove_scopes"] = in.RemoveScopes
	}
	r, err := p.callNC(ctx, c, ts.ncUpdate.Name, args)
	if err != nil {
		return nil, err
	}
	switch r.Status {
	case "unchanged":
		res.Outcome, res.Message = OutcomeUnchanged, r.Message
		return res, nil
	case "login_required":
	default:
		return nil, &RefusedError{Tool: ts.ncUpdate.Name, State: r.Status, Message: r.Message}
	}
	if err := p.showPage(ctx, res, r.LoginURL, "login-flow"); err != nil {
		return nil, err
	}
	if !ts.CanRevoke() {
		return nil, errors.New("the new grant needs the old app password removed, and the server offers no " + ToolRevoke + " tool")
	}
	if _, err := ts.Revoke(ctx, c, in.Subject); err != nil {
		return nil, err
	}
	res.Replaced = true
	p.UI.Notice("Removed the server's old app password, so that it uses the new grant once you give it; until then the server has no access.")
	return p.wait(ctx, res, in, MethodLoginFlow, func(ctx context.Context) (*Status, error) {
		return ts.loginFlowStatus(ctx, c)
	})
}

// flow2 starts Flow 2 and waits until the server reports provisioned.
func (p *Provisioner) flow2(ctx context.Context, c Caller, ts *Toolset, in Input) (*Result, error) {
	res := &Result{Method: MethodFlow2}
	start, err := p.callFlow2(ctx, c, ts, in.Subject)
	if err != nil {
		return nil, err
	}
	if start.AlreadyProvisioned && in.Force {
		if err := p.replace(ctx, c, ts, in); err != nil {
			return nil, err
		}
		res.Replaced = true
		if start, err = p.callFlow2(ctx, c, ts, in.Subject); err != nil {
			return nil, err
		}
	}
	if start.AlreadyProvisioned {
		res.Outcome = OutcomeAlready
		res.Status, _ = ts.Status(ctx, c, in.Subject)
		return res, nil
	}
	if !start.Success {
		return nil, &RefusedError{Tool: ts.provision.Name, Message: start.Message}
	}
	switch {
	case start.AuthorizationURL != "":
		if err := p.showPage(ctx, res, start.AuthorizationURL, "flow2"); err != nil {
			return nil, err
		}
	case start.ProvisioningURL != "":
		// Newer servers moved this to a Nextcloud settings page, where
		// the user chooses and confirms by hand.
		if err := p.showPage(ctx, res, start.ProvisioningURL, "settings"); err != nil {
			return nil, err
		}
	default:
		return nil, &RefusedError{Tool: ts.provision.Name, Message: "no page to open in its answer: " + start.Message}
	}
	return p.wait(ctx, res, in, MethodFlow2, func(ctx context.Context) (*Status, error) {
		return ts.Status(ctx, c, in.Subject)
	})
}

func (p *Provisioner) showPage(ctx context.Context, res *Result, raw, purpose string) error {
	page, err := CheckPage(raw, p.ServerURL, purpose)
	if err != nil {
		return err
	}
	res.Page = &page
	p.show(ctx, page)
	return nil
}

// wait polls until provisioned, unless NoWait.
func (p *Provisioner) wait(ctx context.Context, res *Result, in Input, m Method, status func(context.Context) (*Status, error)) (*Result, error) {
	if in.NoWait {
		res.Outcome = OutcomeStarted
		return res, nil
	}
	interval := in.Interval
	if interval <= 0 {
		interval = PollInterval(m)
	}
	wctx, cancel := context.WithTimeout(ctx, in.Timeout)
	defer cancel()
	s, err := Wait(wctx, interval, status, p.UI.Waiting)
	p.UI.Waiting(-1)
	if err != nil {
		return nil, err
	}
	res.Outcome, res.Status = OutcomeProvisioned, s
	return res, nil
}

func scopeArgs(scopes []string) map[string]any {
	if len(scopes) == 0 {
		return map[string]any{}
	}
	return map[string]any{"scopes": scopes}
}

func (p *Provisioner) callNC(ctx context.Context, c Caller, tool string, args map[string]any) (*ncStatus, error) {
	var r ncStatus
	if err := c.Call(ctx, tool, args, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// flow2Start is the answer of provision_nextcloud_access.
type flow2Start struct {
	Success            bool   `json:"success"`
	AlreadyProvisioned bool   `json:"already_provisioned"`
	AuthorizationURL   string `json:"authorization_url"`
	ProvisioningURL    string `json:"provisioning_url"`
	Message            string `json:"message"`
}

func (p *Provisioner) callFlow2(ctx context.Context, c Caller, ts *Toolset, sub string) (*flow2Start, error) {
	var r flow2Start
	if err := c.Call(ctx, ts.provision.Name, userArgs(ts.provision, sub), &r); err != nil {
		return nil, err
	}
	return &r, nil
}
