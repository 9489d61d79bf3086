package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

// ProvisionOptions are the inputs of 'ncmcp provision'.
type ProvisionOptions struct {
	g *globalOptions

	Force     bool
	NoWait    bool
	NoBrowser bool
	JSON      bool
	Timeout   time.Duration
	Interval  time.Duration

	intervalSet bool
}

func newProvisionCmd(g *globalOptions, runF func(context.Context, *ProvisionOptions) error) *cobra.Command {
	opts := &ProvisionOptions{g: g}
	cmd := &cobra.Command{
		Use:   "provision",
		Short: "Give the server offline access to your account (OAuth Flow 2)",
		Long: `Give the MCP server its own refresh token for your account, for background
work. ncmcp asks the server to start (MCP tool provision_nextcloud_access),
opens the page it returns (only an http(s) URL on the server's own origin),
and polls check_provisioning_status until the server confirms, because the
server's success page is no proof. Newer servers' nc_auth_provision_access /
nc_auth_check_status (Nextcloud Login Flow app passwords) are used when
those are what the server offers; their page may be on the Nextcloud host,
which ncmcp then prints but does not open. Needs a login ('ncmcp login').`,
		Example: `  ncmcp provision
  ncmcp provision --no-browser --timeout 10m
  ncmcp provision --force      # provision again, replacing the server's token`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("no-browser") {
				opts.NoBrowser = envBool(g.deps.Getenv("NCMCP_NO_BROWSER"))
			}
			opts.intervalSet = cmd.Flags().Changed("interval")
			if opts.Timeout <= 0 || opts.Interval <= 0 {
				return usageErrorf("use positive durations", "invalid --timeout or --interval")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runProvision(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Force, "force", false, "provision again even when the server already has a token")
	f.BoolVar(&opts.NoWait, "no-wait", false, "return after opening the page, without waiting for the server to confirm")
	f.BoolVar(&opts.NoBrowser, "no-browser", false, "print the URL instead of opening a browser (env NCMCP_NO_BROWSER=1)")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON on stdout")
	f.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for the server to confirm")
	f.DurationVar(&opts.Interval, "interval", 2*time.Second, "how often to ask the server (default 2s; 5s for Login Flow servers)")
	return cmd
}

// ProvisionJSON is the output of 'ncmcp provision --json'.
type ProvisionJSON struct {
	Server             string     `json:"server"`
	Subject            string     `json:"sub"`
	Provisioned        bool       `json:"provisioned"`
	AlreadyProvisioned bool       `json:"already_provisioned"`
	URL                string     `json:"url,omitempty"`
	ProvisionedAt      *time.Time `json:"provisioned_at,omitempty"`
	ClientID           string     `json:"client_id,omitempty"`
	Scopes             []string   `json:"scopes,omitempty"`
	FlowType           string     `json:"flow_type,omitempty"`
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
	sess, err := connectMCP(ctx, g, st, srv, acct)
	if err != nil {
		return err
	}
	defer sess.Close()
	ts, err := flow2Tools(ctx, sess)
	if err != nil {
		return err
	}
	out := ProvisionJSON{Server: srv.URL, Subject: acct.Subject}
	name := accountName(acct)

	start, err := ts.Start(ctx, sess, acct.Subject)
	if err != nil {
		return toolFailure(err, srv.URL)
	}
	if start.AlreadyProvisioned && opts.Force {
		if !ts.CanRevoke() {
			return failure(errors.New("the server already has a token and offers no revoke_nextcloud_access tool to replace it"), "")
		}
		if _, err := ts.Revoke(ctx, sess, acct.Subject); err != nil {
			return toolFailure(err, srv.URL)
		}
		fmt.Fprintf(d.Stderr, "Removed the server's token for %s; provisioning again.\n", name)
		if start, err = ts.Start(ctx, sess, acct.Subject); err != nil {
			return toolFailure(err, srv.URL)
		}
	}
	if start.AlreadyProvisioned {
		out.AlreadyProvisioned, out.Provisioned = true, true
		if s, err := ts.Status(ctx, sess, acct.Subject); err == nil && s.IsProvisioned {
			fillProvisioned(&out, s)
		}
		fmt.Fprintf(d.Stderr, "%s already has offline access for %s%s; --force provisions again.\n", srv.URL, name, since(out.ProvisionedAt))
		return printProvision(opts, out)
	}

	pageURL := start.URL()
	place := provision.OpenIt
	if ts.LoginFlow {
		place, err = provision.CheckLoginFlowURL(pageURL, srv.URL)
	} else {
		err = provision.CheckURL(pageURL, srv.URL)
	}
	if err != nil {
		return failure(err, "the server returned a page ncmcp will not open; report this to the server's admin")
	}
	out.URL = pageURL
	fmt.Fprintf(d.Stderr, "Open this URL in a browser to give %s offline access to %s's account:\n\n  %s\n\n", srv.URL, name, pageURL)
	switch {
	case place == provision.ShowIt:
		u, _ := url.Parse(pageURL)
		fmt.Fprintf(d.Stderr, "The page is on %s, not on the server, so ncmcp does not open it: open it yourself if that is your Nextcloud.\n", u.Host)
	case !opts.NoBrowser:
		if err := g.openURL(pageURL); err != nil {
			fmt.Fprintf(d.Stderr, "warning: could not open a browser (%v): open the URL above yourself\n", err)
		}
	}
	if opts.NoWait {
		fmt.Fprintln(d.Stderr, "Not waiting for the server to confirm: check later with 'ncmcp status'.")
		return printProvision(opts, out)
	}

	wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	tick := waitIndicator(d, opts.Timeout)
	interval := opts.Interval
	if !opts.intervalSet {
		interval = ts.PollInterval()
	}
	s, err := provision.Wait(wctx, interval, func(ctx context.Context) (*provision.Status, error) {
		return ts.Status(ctx, sess, acct.Subject)
	}, tick)
	tick(-1)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return timedOut(fmt.Errorf("the server did not confirm offline access within %s: %w", opts.Timeout, err),
				"finish the login in the browser and run 'ncmcp provision' again (the URL works once); if the browser showed an error, the IdP refused")
		}
		return toolFailure(err, srv.URL)
	}
	out.Provisioned = true
	fillProvisioned(&out, s)
	fmt.Fprintf(d.Stderr, "%s now has offline access for %s%s", srv.URL, name, since(out.ProvisionedAt))
	if len(s.Scopes) > 0 {
		fmt.Fprintf(d.Stderr, ", scopes %s", strings.Join(s.Scopes, " "))
	}
	if s.FlowType != "" {
		fmt.Fprintf(d.Stderr, ", via %s", s.FlowType)
	}
	fmt.Fprintln(d.Stderr, ".")
	return printProvision(opts, out)
}

func fillProvisioned(out *ProvisionJSON, s *provision.Status) {
	out.ProvisionedAt, out.ClientID, out.Scopes, out.FlowType = s.ProvisionedAt, s.ClientID, s.Scopes, s.FlowType
}

func since(t *time.Time) string {
	if t == nil {
		return ""
	}
	return " since " + t.Local().Format(time.RFC3339)
}

func printProvision(opts *ProvisionOptions, out ProvisionJSON) error {
	if !opts.JSON {
		return nil
	}
	return printJSON(opts.g.deps.Stdout, out)
}

func accountName(a *store.Account) string {
	if a.Username != "" {
		return a.Username
	}
	return a.Subject
}

// connectMCP opens an MCP session with the account's access token,
// refreshed first when it is about to expire.
func connectMCP(ctx context.Context, g *globalOptions, st *store.Store, srv *store.Server, acct *store.Account) (*mcpclient.Session, error) {
	tok, err := readTokens(st, srv, acct)
	if err != nil {
		return nil, err
	}
	const minTTL = time.Minute
	if !validFor(tok, g.deps.Now(), minTTL) {
		if tok, _, err = refreshLocked(ctx, g, st, srv.URL, acct.Subject, minTTL); err != nil {
			return nil, handleClientGone(ctx, g, st, err)
		}
	}
	sess, err := mcpclient.Connect(ctx, g.httpClient(), srv.URL+"/mcp", tok.AccessToken, g.deps.Version)
	if err != nil {
		return nil, toolFailure(err, srv.URL)
	}
	return sess, nil
}

func flow2Tools(ctx context.Context, sess *mcpclient.Session) (*provision.Toolset, error) {
	tools, err := sess.Tools(ctx)
	if err != nil {
		return nil, toolFailure(err, "")
	}
	ts, err := provision.Detect(tools)
	if err != nil {
		return nil, failure(err, "the server's admin must enable offline access (Flow 2) for 'ncmcp provision' to work")
	}
	return ts, nil
}

// toolFailure maps MCP errors to exit codes: a refused token means log in
// again, a tool error is the server's answer.
func toolFailure(err error, serverURL string) error {
	var ue *mcpclient.UnauthorizedError
	if errors.As(err, &ue) {
		return authNeeded(err, "log in again: 'ncmcp login --server "+serverURL+"'")
	}
	var te *mcpclient.ToolError
	if errors.As(err, &te) {
		hint := "this is the server's answer; its logs say more"
		if strings.Contains(te.Message, "Missing required scopes") || strings.Contains(te.Message, "Access denied") {
			hint = "the server wants scopes your token lacks: the server's admin must grant them to the client, then log in again"
		}
		return failure(err, hint)
	}
	return failure(err, "check that the server is reachable; 'ncmcp doctor' checks each step")
}

// waitIndicator returns a function that shows waiting progress: a spinner
// on a terminal (unless NO_COLOR), plain lines every 30 s otherwise. A
// negative duration ends the display.
func waitIndicator(d *Deps, limit time.Duration) func(time.Duration) {
	w := d.Stderr
	if d.StderrIsTerminal != nil && d.StderrIsTerminal() && d.Getenv("NO_COLOR") == "" {
		frames := []string{"|", "/", "-", "\\"}
		i := 0
		return func(elapsed time.Duration) {
			if elapsed < 0 {
				fmt.Fprint(w, "\r\033[K")
				return
			}
			fmt.Fprintf(w, "\r%s waiting for the server to confirm (%s of %s)", frames[i%len(frames)], elapsed.Round(time.Second), limit)
			i++
		}
	}
	var next time.Duration
	return func(elapsed time.Duration) {
		if elapsed < 0 {
			return
		}
		if elapsed >= next {
			fmt.Fprintf(w, "Waiting for the server to confirm (%s of %s)...\n", elapsed.Round(time.Second), limit)
			next += 30 * time.Second
		}
	}
}
