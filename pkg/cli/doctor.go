package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/doctor"
	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/spf13/cobra"
)

// DoctorOptions are the inputs of 'ncmcp doctor'.
type DoctorOptions struct {
	g *globalOptions

	JSON bool
}

func newDoctorCmd(g *globalOptions, runF func(context.Context, *DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{g: g}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the server, the identity provider and this machine",
		Long: `Check, with a line each: server reachable, the server's version and auth
mode, protected-resource metadata, server generation, the authorization
server's metadata, PKCE S256, registration and revocation endpoints,
offline_access, the provisioning tools (when logged in), the keyring, the
loopback listener and a way to open a browser. Exits 1 when a check FAILs.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDoctor(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON on stdout")
	return cmd
}

// DoctorJSON is the output of 'ncmcp doctor --json'.
type DoctorJSON struct {
	Server string         `json:"server,omitempty"`
	OK     bool           `json:"ok"`
	Checks []doctor.Check `json:"checks"`
}

func runDoctor(ctx context.Context, opts *DoctorOptions) error {
	g, d := opts.g, opts.g.deps
	st, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	serverURL := g.Server
	if serverURL == "" {
		serverURL, _, _ = g.selectServer(cfg)
	}
	hc := g.httpClient()
	in := doctor.Inputs{ServerURL: serverURL, HTTP: hc, Store: st, Getenv: d.Getenv,
		Discover: func(ctx context.Context, u string, o discovery.Options) (*discovery.Result, error) {
			o.Issuer, o.PublicIssuer, o.Generation = g.Issuer, g.PublicIssuer, g.Generation
			return discovery.DiscoverWith(ctx, hc, u, o)
		}}
	if srv := cfg.Servers[serverURL]; srv != nil {
		if acct := srv.FindAccount(g.Account); acct != nil {
			in.Tools = func(ctx context.Context) ([]mcpclient.Tool, error) {
				sess, err := connectMCP(ctx, g, st, srv, acct, loginPolicy{}, nil)
				if err != nil {
					return nil, err
				}
				defer sess.Close()
				return sess.Tools(ctx)
			}
		}
	}
	checks := doctor.Run(ctx, in)
	out := DoctorJSON{Server: serverURL, OK: !doctor.Failed(checks), Checks: checks}
	if opts.JSON {
		if err := printJSON(d.Stdout, out); err != nil {
			return err
		}
	} else {
		printChecks(d.Stderr, checks)
	}
	if !out.OK {
		return failure(errors.New("doctor found problems: see the FAIL checks"), "fix the FAIL lines first; each says what to do")
	}
	return nil
}

func printChecks(w io.Writer, checks []doctor.Check) {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	for _, c := range checks {
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", c.Status, width, c.Name, c.Detail)
		if c.Hint != "" && c.Status != doctor.OK {
			fmt.Fprintf(w, "      %-*s  -> %s\n", width, "", c.Hint)
		}
	}
}
