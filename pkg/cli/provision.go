package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
	"github.com/spf13/cobra"
)

// ProvisionOptions are the inputs of 'ncmcp provision'.
type ProvisionOptions struct {
	g *globalOptions

	Method       string
	Force        bool
	NoWait       bool
	NoBrowser    bool
	Open         bool
	NoLogin      bool
	JSON         bool
	Timeout      time.Duration
	Interval     time.Duration
	Scopes       []string
	AddScopes    []string
	RemoveScopes []string
}

func newProvisionCmd(g *globalOptions, runF func(context.Context, *ProvisionOptions) error) *cobra.Command {
	opts := &ProvisionOptions{g: g}
	cmd := &cobra.Command{
		Use:   "provision",
		Short: "Give the server its own access to your Nextcloud (Login Flow v2 or Flow 2)",
		Long: `Give the MCP server its own access to your Nextcloud account, for work done
while you are away, and confirm it with the server.

Current servers get a Nextcloud app password through Nextcloud's Login Flow
v2 (MCP tools nc_auth_provision_access and nc_auth_check_status): ncmcp asks
the server to start, opens the login page it returns, and polls the server
until it reports the grant. Older servers get their own offline refresh token
through Flow 2 (provision_nextcloud_access, check_provisioning_status); newer
ones answer that tool with a Nextcloud settings page instead, which ncmcp
shows and then waits for. --method picks one where a server offers both.

The page is usually on your Nextcloud, another host than the MCP server.
ncmcp prints the whole URL and opens pages on the server's own origin in
the browser. For another origin it asks first, on a terminal ("Open ...
in your browser? [Y/n]"), and remembers a yes for this server ('ncmcp
status' shows it, 'ncmcp config unset page-origin' forgets it): later
runs open it without asking, and a server that names another origin is
reported and asked about again. Without a terminal it opens only an
approved origin, or with --open (which approves it); otherwise it prints
the URL and keeps waiting, so that you can open it on any device. Plain
http off this machine is allowed, with a warning. When the server asks
for input while starting (MCP elicitation), ncmcp answers it the same way.
Needs a login ('ncmcp login'). When the server refuses the token and a
refresh does not help, or asks for more scopes, ncmcp logs in again in the
browser (--no-login fails instead).`,
		Example: `  ncmcp provision
  ncmcp provision --no-browser --timeout 10m
  ncmcp provision --open       # in a script: open Nextcloud's page without asking
  ncmcp provision --scopes notes.read,files.read     # a restricted app password
  ncmcp provision --remove-scopes notes.write        # change an existing one
  ncmcp provision --force      # provision again, replacing the server's access`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("no-browser") {
				opts.NoBrowser = envBool(g.deps.Getenv("NCMCP_NO_BROWSER"))
			}
			if opts.Open && opts.NoBrowser {
				return usageErrorf("--open opens the page in the browser; --no-browser never does", "conflicting flags")
			}
			if opts.Timeout <= 0 || (cmd.Flags().Changed("interval") && opts.Interval <= 0) {
				return usageErrorf("use positive durations", "invalid --timeout or --interval")
			}
			if _, err := provision.ParseMethod(opts.Method); err != nil {
				return usageErrorf("use --method auto, login-flow or flow2", "%v", err)
			}
			updating := len(opts.AddScopes) > 0 || len(opts.RemoveScopes) > 0
			if updating && (len(opts.Scopes) > 0 || opts.Force) {
				return usageErrorf("--add-scopes/--remove-scopes change an existing grant; --scopes and --force make a new one", "conflicting flags")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runProvision(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Method, "method", "auto", "auto (Login Flow v2 where offered, else Flow 2), login-flow or flow2")
	f.BoolVar(&opts.Force, "force", false, "provision again even when the server already has access, replacing it")
	f.BoolVar(&opts.NoWait, "no-wait", false, "return after showing the page, without waiting for the server to confirm")
	f.BoolVar(&opts.NoBrowser, "no-browser", false, "print the URL instead of opening a browser (env NCMCP_NO_BROWSER=1)")
	f.BoolVar(&opts.Open, "open", false, "open the page in the browser without asking, even on another origin than the server's (your Nextcloud), and remember that origin for this server")
	f.BoolVar(&opts.NoLogin, "no-login", false, "fail instead of logging in again when the server refuses the token or asks for more scopes")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON on stdout")
	f.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for the server to confirm")
	f.DurationVar(&opts.Interval, "interval", 0, "how often to ask the server (default 5s for Login Flow v2, 2s for Flow 2)")
	f.StringSliceVar(&opts.Scopes, "scopes", nil, "Login Flow v2: restrict the new app password to these scopes (e.g. notes.read,files.read); default: no restriction beyond your token")
	f.StringSliceVar(&opts.AddScopes, "add-scopes", nil, "Login Flow v2: add scopes to the server's existing grant")
	f.StringSliceVar(&opts.RemoveScopes, "remove-scopes", nil, "Login Flow v2: remove scopes from the server's existing grant (needs a new grant in the browser)")
	_ = cmd.RegisterFlagCompletionFunc("method", cobra.FixedCompletions([]string{"auto", "login-flow", "flow2"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// ProvisionJSON is the output of 'ncmcp provision --json'.
type ProvisionJSON struct {
	Server             string `json:"server"`
	Subject            string `json:"sub"`
	Method             string `json:"method"`
	Outcome            string `json:"outcome"`
	Provisioned        bool   `json:"provisioned"`
	AlreadyProvisioned bool   `json:"already_provisioned"`
	URL                string `json:"url,omitempty"`
	// Kind is flow2 (a refresh token) or login-flow-v2 (an app password).
	Kind          string     `json:"kind,omitempty"`
	ProvisionedAt *time.Time `json:"provisioned_at,omitempty"`
	ClientID      string     `json:"client_id,omitempty"`
	Scopes        []string   `json:"scopes,omitempty"`
	// FlowType is Kind, under its earlier name.
	FlowType string `json:"flow_type,omitempty"`
	// Username is the Nextcloud login name of an app password.
	Username string `json:"username,omitempty"`
}

func runProvision(ctx context.Context, opts *ProvisionOptions) error {
	g, d := opts.g, opts.g.deps
	st, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	srv, acct, err := g.selectAccount(cfg)
	if err != nil {
		return err
	}
	name := acct.DisplayName()
	// --timeout bounds the whole run: a server that stops answering in the
	// middle of a request cannot hold it longer.
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	ui := &provisionUI{g: g, st: st, noBrowser: opts.NoBrowser, open: opts.Open, approved: srv.PageOrigin,
		interactive: d.StdinIsTerminal != nil && d.StdinIsTerminal() && d.StderrIsTerminal != nil && d.StderrIsTerminal(),
		server:      srv.URL, name: name, limit: opts.Timeout}
	p := &provision.Provisioner{ServerURL: srv.URL, UI: ui}
	timedOutErr := func(err error) error {
		hint := "finish in the browser and run 'ncmcp provision' again (a provisioning page works once); --timeout waits longer"
		if ui.notOpened != "" {
			hint = "ncmcp did not open the page (no terminal to ask): open it yourself within --timeout, or run 'ncmcp provision --open' to let ncmcp open pages on " +
				ui.notOpened + " for " + srv.URL
		}
		return timedOut(fmt.Errorf("the server did not confirm its access within %s: %w", opts.Timeout, err), hint)
	}
	sess, err := connectMCP(ctx, g, st, srv, acct, loginPolicy{Allowed: !opts.NoLogin, NoBrowser: opts.NoBrowser}, p.OnElicit)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			return timedOutErr(err)
		}
		return err
	}
	defer sess.Close()
	ts, err := provisioningTools(ctx, sess)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			return timedOutErr(err)
		}
		return err
	}
	method, _ := provision.ParseMethod(opts.Method)
	res, err := p.Run(ctx, sess, ts, provision.Input{
		Method: method, Subject: acct.Subject, Force: opts.Force,
		Scopes: opts.Scopes, AddScopes: opts.AddScopes, RemoveScopes: opts.RemoveScopes,
		NoWait: opts.NoWait, Interval: opts.Interval, Timeout: opts.Timeout,
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			return timedOutErr(err)
		}
		return toolFailure(err, srv.URL)
	}
	out := ProvisionJSON{Server: srv.URL, Subject: acct.Subject, Method: string(res.Method), Outcome: string(res.Outcome)}
	if res.Page != nil {
		out.URL = res.Page.URL
	}
	if s := res.Status; s != nil && s.Provisioned {
		out.Provisioned = true
		out.Kind, out.FlowType, out.ProvisionedAt, out.ClientID, out.Scopes, out.Username = s.Kind, s.Kind, s.ProvisionedAt, s.ClientID, s.Scopes, s.Username
	}
	w := d.Stderr
	switch res.Outcome {
	case provision.OutcomeAlready:
		out.AlreadyProvisioned, out.Provisioned = true, true
		fmt.Fprintf(w, "%s already has access to Nextcloud for %s%s; --force provisions again.\n", srv.URL, name, describeGrant(res.Status))
	case provision.OutcomeStarted:
		fmt.Fprintln(w, "Not waiting for the server to confirm: check later with 'ncmcp status'.")
	case provision.OutcomeUnchanged:
		fmt.Fprintf(w, "Nothing changed: %s\n", termsafe.Lines(res.Message))
	case provision.OutcomeProvisioned:
		fmt.Fprintf(w, "%s now has access to Nextcloud for %s%s.\n", srv.URL, name, describeGrant(res.Status))
	}
	if !opts.JSON {
		return nil
	}
	return printJSON(d.Stdout, out)
}

func provisioningTools(ctx context.Context, sess *mcpclient.Session) (*provision.Toolset, error) {
	tools, err := sess.Tools(ctx)
	if err != nil {
		return nil, toolFailure(err, "")
	}
	ts, err := provision.Detect(tools)
	if err != nil {
		return nil, failure(err, "the server's admin must enable offline access (background operations) for 'ncmcp provision' to work")
	}
	return ts, nil
}
