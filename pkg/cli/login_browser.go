package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// browserOptions are the inputs of one browser login.
type browserOptions struct {
	port        int
	scopes      []string
	noBrowser   bool
	paste       bool
	timeout     time.Duration
	extraScopes bool // --scopes was given
}

// loginFlow returns the login use case, with notices on stderr.
func (g *globalOptions) loginFlow(st *store.Store) *login.Flow {
	return &login.Flow{Store: st, HTTP: g.httpClient(), Now: g.deps.Now, Clients: g.clients(st),
		Notice: func(m string) { fmt.Fprintln(g.deps.Stderr, m) }}
}

// browserLogin runs the authorization code flow on the terminal: the
// listener's one-time start page in the browser (or the URL printed), the
// wait for the browser or a pasted address, then the stored login.
func browserLogin(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result, client oauth.Client, o browserOptions) (*login.Result, error) {
	d := g.deps
	a, err := g.loginFlow(st).Start(login.Browser{Disc: disc, Client: client, Port: o.port, Scopes: o.scopes})
	if err != nil {
		return nil, loginError(err, st, o)
	}
	defer a.Close()

	fmt.Fprintf(d.Stderr, "Open this URL in a browser to log in to %s:\n\n  %s\n\n", disc.ServerURL, a.AuthURL)
	if o.paste || d.Getenv("SSH_CONNECTION") != "" {
		fmt.Fprintf(d.Stderr, "Browser on another machine? Forward the port first: ssh -L %d:127.0.0.1:%d <this host>\n", a.Port, a.Port)
	}
	if !o.noBrowser {
		if err := g.openURL(a.StartURL); err != nil {
			fmt.Fprintf(d.Stderr, "warning: could not open a browser (%s): open the URL above yourself\n", oneLine(err.Error()))
		}
	}
	fmt.Fprintf(d.Stderr, "Waiting for the browser to return to %s (up to %s)...\n", a.RedirectURI, o.timeout)
	// The browser makes the authorization request, so a refusal the
	// authorization server shows as a page of its own (an unknown client,
	// a redirect URI it does not allow) never reaches ncmcp.
	fmt.Fprintln(d.Stderr, "If the browser shows an error from the authorization server, this login cannot finish: read the error there, then stop ncmcp with Ctrl-C.")
	var pasted <-chan string
	if o.paste {
		fmt.Fprintln(d.Stderr, "Or paste here the address the browser ends on (it may fail to load), or just the code, then press Enter:")
		pasted = readLines(d.Stdin)
	}
	rejected := func(err error) {
		fmt.Fprintf(d.Stderr, "Not accepted: %v. Paste the address again:\n", err)
	}
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	res, err := a.Wait(wctx, pasted, rejected)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, timedOut(fmt.Errorf("timed out after %s waiting for the browser login; nothing was stored", o.timeout),
			"run 'ncmcp login' again (--timeout waits longer; --no-browser prints the URL to open elsewhere)")
	}
	if err != nil {
		return nil, loginError(err, st, o)
	}
	return res, nil
}

// loginError maps the errors of a browser login to exit codes and hints.
func loginError(err error, st *store.Store, o browserOptions) error {
	var (
		pe *loopback.PortInUseError
		np *login.NoPKCEError
		ae *loopback.AuthError
		is *loopback.IssuerError
		xe *login.ExchangeError
		ie *login.IdentityError
		sv *store.SaveError
	)
	switch {
	case errors.As(err, &pe):
		return failure(err, "stop whatever listens on 127.0.0.1:"+strconv.Itoa(pe.Port)+", or choose another port with --port (if the client's registration allows it)")
	case errors.As(err, &np):
		return failure(err, "the server's admin must enable PKCE (S256) at the authorization server")
	case errors.As(err, &is):
		return failure(err, "run 'ncmcp login' again and log in only where it sends the browser; if it is refused again, the authorization server's responses do not name it as its metadata does (iss, RFC 9207): tell the server's admin")
	case errors.As(err, &ae) && ae.Code == "invalid_scope" && o.extraScopes:
		return failure(err, "a scope you asked for with --scopes is refused: use the names the server lists in scopes_supported ('ncmcp doctor' shows them)")
	case errors.As(err, &ae):
		return failure(err, authErrorHint(ae))
	case errors.Is(err, loopback.ErrStartReused):
		return failure(err, "run 'ncmcp login' again; if this repeats, something on this machine is watching for ncmcp's login links")
	case errors.As(err, &xe) && xe.Unreachable:
		return failure(err, "the token endpoint was not reachable; run 'ncmcp login' again when it is up")
	case errors.As(err, &xe) && xe.UnknownClient:
		return failure(err, "the server no longer knows this client (restarted?): 'ncmcp clients remove CLIENT_ID --local-only', then 'ncmcp login' registers a new one")
	case errors.As(err, &xe) && xe.Spent:
		return failure(err, "run 'ncmcp login' again to start over")
	case errors.As(err, &xe):
		return failure(err, "run 'ncmcp login' again; 'ncmcp login --debug' traces the requests")
	case errors.As(err, &ie):
		return failure(err, "the ID token is not valid for this login; nothing was stored. If this repeats, the IdP or server is misconfigured")
	case errors.As(err, &sv):
		return failure(err, storageHint(st.Mode))
	}
	return failure(err, "")
}

func authErrorHint(e *loopback.AuthError) string {
	switch e.Code {
	case "access_denied":
		return "the login was refused or cancelled in the browser; run 'ncmcp login' again to retry"
	case "invalid_scope":
		return "the IdP does not allow a scope the server asks for; the server admin must fix the configured scopes"
	case "unauthorized_client", "invalid_client":
		return "the IdP does not know this client or its redirect URI; check --client-id and the client's registration at the IdP"
	}
	return ""
}

// readLines sends each line of r on the returned channel, closing it at EOF.
func readLines(r io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}
