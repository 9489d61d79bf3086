package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/clients"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/registration"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

func newClientsCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Manage the OAuth clients ncmcp uses with each server",
		Long: `OAuth client registrations per server: register one dynamically (RFC 7591),
record a pre-registered one, list them, remove them (RFC 7592 where the
registration allows). 'ncmcp login' uses the server's stored client when no
--client-id is given.`,
		Args: usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newClientsRegisterCmd(g, nil), newClientsAddCmd(g, nil), newClientsListCmd(g, nil), newClientsRemoveCmd(g, nil))
	return cmd
}

// ClientsRegisterOptions are the inputs of 'ncmcp clients register'.
type ClientsRegisterOptions struct {
	g            *globalOptions
	RedirectPort int
}

func newClientsRegisterCmd(g *globalOptions, runF func(context.Context, *ClientsRegisterOptions) error) *cobra.Command {
	opts := &ClientsRegisterOptions{g: g}
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register ncmcp as an OAuth client (RFC 7591 dynamic registration)",
		Long: `Register ncmcp as a native public client at the registration endpoint that
discovery finds (the IdP's in generation 1, the server's in generation 2),
with a loopback redirect URI on a fixed port (registrations may match
redirect URIs exactly), grant types authorization_code and refresh_token.
The client id, and any secret and registration access token, are stored.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.RedirectPort < 0 || opts.RedirectPort > 65535 {
				return usageErrorf("use a port between 1 and 65535, or 0 to pick a free one", "invalid --redirect-port %d", opts.RedirectPort)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runClientsRegister(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.RedirectPort, "redirect-port", 0, "loopback port to register (default: a free one)")
	return cmd
}

func runClientsRegister(ctx context.Context, opts *ClientsRegisterOptions) error {
	g := opts.g
	st, serverURL, err := g.setupServer()
	if err != nil {
		return err
	}
	disc, err := g.discover(ctx, g.httpClient(), serverURL)
	if err != nil {
		return err
	}
	_, err = registerClient(ctx, g, st, disc, opts.RedirectPort)
	return err
}

// clients returns the client manager, with notices on stderr.
func (g *globalOptions) clients(st *store.Store) *clients.Manager {
	return &clients.Manager{
		Store: st, HTTP: g.httpClient(),
		Notice: func(m string) { fmt.Fprintln(g.deps.Stderr, m) },
		Discover: func(ctx context.Context, serverURL string) (*discovery.Result, error) {
			return g.discover(ctx, g.httpClient(), serverURL)
		},
	}
}

// registerClient registers a native client for the server, stores it and
// says so.
func registerClient(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result, port int) (*store.Client, error) {
	reg, err := g.clients(st).Register(ctx, disc, port)
	if err != nil {
		return nil, registrationError(err, st)
	}
	printRegistered(g.deps.Stderr, reg)
	return &reg.Client, nil
}

func printRegistered(w io.Writer, reg *clients.Registered) {
	c := reg.Client
	if reg.FellBack != nil {
		fmt.Fprintf(w, "warning: the OS keyring is not usable (%s); the client's secrets were stored in an owner-only file instead\n", oneLine(reg.FellBack.Error()))
	}
	kind := "public"
	if c.Confidential {
		kind = "confidential (the IdP issued a secret; it is stored)"
	}
	fmt.Fprintf(w, "Registered client %s at %s: %s, redirect URI %s (the registration fixes port %d).\n", c.ID, reg.Endpoint, kind, reg.Redirect, c.RedirectPort)
	if !c.SecretExpiresAt.IsZero() {
		fmt.Fprintf(w, "Its secret expires at %s; register again after that.\n", c.SecretExpiresAt.Local().Format(time.RFC3339))
	}
}

// registrationError maps the errors of a registration to exit codes and hints.
func registrationError(err error, st *store.Store) error {
	var (
		nr *clients.NoRegistrationError
		re *registration.Error
		se *store.SaveError
	)
	switch {
	case errors.As(err, &nr):
		return failure(err, "record a client its admin registered: 'ncmcp clients add CLIENT_ID' (or pass --client-id)")
	case errors.As(err, &re) && re.Status == http.StatusTooManyRequests:
		hint := "try again later"
		if re.RetryAfter > 0 {
			hint = fmt.Sprintf("try again in %s", re.RetryAfter.Round(time.Second))
		}
		return failure(err, hint)
	case errors.As(err, &re) && re.NotSupported():
		return failure(err, "this server does not register clients like ncmcp: record a pre-registered one with 'ncmcp clients add CLIENT_ID'")
	case errors.As(err, &re):
		return failure(err, "the registration was refused; ask the admin for a pre-registered client ('ncmcp clients add CLIENT_ID')")
	case errors.As(err, &se):
		return failure(err, storageHint(st.Mode))
	case errors.Is(err, context.Canceled):
		return err
	}
	return failure(err, "nothing was stored; try again when the endpoint answers properly")
}

// ClientsAddOptions are the inputs of 'ncmcp clients add'.
type ClientsAddOptions struct {
	g            *globalOptions
	ClientID     string
	SecretStdin  bool
	RedirectPort int
}

func newClientsAddCmd(g *globalOptions, runF func(context.Context, *ClientsAddOptions) error) *cobra.Command {
	opts := &ClientsAddOptions{g: g}
	cmd := &cobra.Command{
		Use:   "add CLIENT_ID",
		Short: "Record a pre-registered OAuth client for a server",
		Example: `  ncmcp clients add test-mcp-client --server https://mcp.example.com
  printf %s "$SECRET" | ncmcp clients add my-client --secret-stdin --redirect-port 8400`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ClientID = args[0]
			if strings.TrimSpace(opts.ClientID) == "" {
				return usageErrorf("pass the client id the admin registered", "empty client id")
			}
			if opts.RedirectPort < 0 || opts.RedirectPort > 65535 {
				return usageErrorf("use a port between 1 and 65535", "invalid --redirect-port %d", opts.RedirectPort)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runClientsAdd(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.SecretStdin, "secret-stdin", false, "read the client secret of a confidential client from stdin")
	cmd.Flags().IntVar(&opts.RedirectPort, "redirect-port", 0, "loopback port the registration fixes (0: any)")
	return cmd
}

func runClientsAdd(ctx context.Context, opts *ClientsAddOptions) error {
	g, d := opts.g, opts.g.deps
	st, serverURL, err := g.setupServer()
	if err != nil {
		return err
	}
	var secret string
	if opts.SecretStdin {
		b, err := io.ReadAll(io.LimitReader(d.Stdin, 64<<10))
		if err != nil {
			return failure(fmt.Errorf("read the secret from stdin: %w", err), "")
		}
		if secret = strings.TrimSpace(string(b)); secret == "" {
			return usageErrorf("pipe the secret: printf %s \"$SECRET\" | ncmcp clients add ID --secret-stdin", "no secret on stdin")
		}
	}
	c, fellBack, err := g.clients(st).Add(ctx, serverURL, store.Client{ID: opts.ClientID, RedirectPort: opts.RedirectPort}, secret)
	if err != nil {
		return registrationError(err, st)
	}
	if fellBack != nil {
		fmt.Fprintf(d.Stderr, "warning: the OS keyring is not usable (%s); the secret was stored in an owner-only file instead\n", oneLine(fellBack.Error()))
	}
	kind := "public"
	if c.Confidential {
		kind = "confidential"
	}
	fmt.Fprintf(d.Stderr, "Recorded %s client %s for %s.\n", kind, c.ID, serverURL)
	return nil
}
