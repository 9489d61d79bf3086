package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/registration"
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

// browserLogin runs the authorization code flow: the loopback listener,
// the one-time start page that makes the one authorization request, the
// browser, the code, its exchange; then it stores the login.
func browserLogin(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result, client oauth.Client, o browserOptions) (*loginResult, error) {
	d, hc := g.deps, g.httpClient()
	ln, err := loopback.Listen(o.port)
	if err != nil {
		var pe *loopback.PortInUseError
		if errors.As(err, &pe) {
			return nil, failure(err, "stop whatever listens on 127.0.0.1:"+strconv.Itoa(pe.Port)+", or choose another port with --port (if the client's registration allows it)")
		}
		return nil, failure(err, "")
	}
	defer ln.Close()

	login, err := newLogin(disc, client, ln.RedirectURI(), o.scopes)
	if err != nil {
		return nil, err
	}
	authURL := login.URL()
	// The browser gets a one-time page of the listener, not the
	// authorization request: other users can read a command line. The page
	// makes the one authorization request and passes its answer on, so
	// that a refusal reaches the terminal too.
	startURL := ln.Start(func(ctx context.Context) (string, error) {
		return authorize(ctx, hc, authURL, client.ID)
	})

	fmt.Fprintf(d.Stderr, "Open this URL in a browser to log in to %s:\n\n  %s\n\n", disc.ServerURL, authURL)
	if o.paste || d.Getenv("SSH_CONNECTION") != "" {
		fmt.Fprintf(d.Stderr, "Browser on another machine? Forward the port first: ssh -L %d:127.0.0.1:%d <this host>\n", ln.Port(), ln.Port())
	}
	if !o.noBrowser {
		if err := g.openURL(startURL); err != nil {
			fmt.Fprintf(d.Stderr, "warning: could not open a browser (%s): open the URL above yourself\n", oneLine(err.Error()))
		}
	}
	fmt.Fprintf(d.Stderr, "Waiting for the browser to return to %s (up to %s)...\n", ln.RedirectURI(), o.timeout)
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
	var done *loginResult
	var completeErr error
	_, err = ln.WaitOrPaste(wctx, login.State, func(cctx context.Context, code string) loopback.Result {
		done, completeErr = completeLogin(cctx, g, st, hc, disc, login, code)
		if completeErr != nil {
			return loopback.Result{Title: "Login failed", Message: oneLine(completeErr.Error()) + ". Nothing was stored; see the terminal."}
		}
		return loopback.Result{OK: true, Title: "Logged in", Message: fmt.Sprintf("ncmcp is logged in to %s as %s.", disc.ServerURL, done.id.Display())}
	}, pasted, rejected)
	switch {
	case err == nil && completeErr != nil:
		return nil, completeErr
	case err == nil:
		return done, nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return nil, timedOut(fmt.Errorf("timed out after %s waiting for the browser login; nothing was stored", o.timeout),
			"run 'ncmcp login' again (--timeout waits longer; --no-browser prints the URL to open elsewhere)")
	}
	var ae *loopback.AuthError
	if errors.As(err, &ae) {
		if ae.Code == "invalid_scope" && o.extraScopes {
			return nil, failure(err, "a scope you asked for with --scopes is refused: use the names the server lists in scopes_supported ('ncmcp doctor' shows them)")
		}
		return nil, failure(err, authErrorHint(ae))
	}
	var se *loopback.StartError
	if errors.As(err, &se) {
		return nil, se.Err
	}
	if errors.Is(err, loopback.ErrStartReused) {
		return nil, failure(err, "run 'ncmcp login' again; if this repeats, something on this machine is watching for ncmcp's login links")
	}
	return nil, failure(err, "")
}

// loginScopes returns the scopes of an authorization request: none for a
// generation-1 server (its configuration decides them), else the scopes
// the MCP authorization specification selects (challenged, the server's
// challenge, its metadata's scopes_supported) and the extra ones asked
// for, in the authorization server's spelling.
func loginScopes(g *globalOptions, disc *discovery.Result, challenged, extra []string) ([]string, error) {
	if disc.Generation == discovery.Generation1 {
		if len(extra) > 0 {
			return nil, usageErrorf("leave --scopes out: the server's configuration decides them", "a generation-1 server does not take scopes from the client")
		}
		return nil, nil
	}
	scopes := disc.Scopes(challenged)
	if len(extra) > 0 {
		matched, notes := oauth.MatchScopes(extra, disc.Provider.ScopesSupported)
		for _, n := range notes {
			fmt.Fprintf(g.deps.Stderr, "note: asking for %s, as the server spells it\n", n)
		}
		for _, s := range matched {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	return scopes, nil
}

// resourceIndicator is the resource parameter of a server's authorization
// and token requests: none for a generation-1 server, whose IdP does not
// know its MCP server as a resource.
func resourceIndicator(disc *discovery.Result) string {
	if disc.Generation == discovery.Generation1 {
		return ""
	}
	return disc.ResourceIndicator()
}

// newLogin prepares the authorization request. Generation 1 authorizes at
// the server's /oauth/authorize (which passes the browser on to the IdP)
// and exchanges at the IdP; any other server at the endpoints of its
// authorization server's metadata, which must offer PKCE with S256.
func newLogin(disc *discovery.Result, client oauth.Client, redirectURI string, scopes []string) (*oauth.Login, error) {
	if disc.Generation == discovery.Generation1 {
		return oauth.NewLogin(disc.ServerURL+"/oauth/authorize", disc.Provider.TokenEndpoint, client, redirectURI), nil
	}
	if !disc.Provider.SupportsS256() {
		return nil, failure(fmt.Errorf("the authorization server %s does not offer PKCE with S256 (code_challenge_methods_supported), which MCP requires", disc.Issuer),
			"the server's admin must enable PKCE (S256) at the authorization server")
	}
	l := oauth.NewLogin(disc.Provider.AuthorizationEndpoint, disc.Provider.TokenEndpoint, client, redirectURI)
	l.Scopes = scopes
	l.Resource = resourceIndicator(disc)
	// Codes of authorization servers that follow OAuth 2.1 are spent by a
	// failed exchange: never try one twice.
	l.NoVerifierFallback = true
	return l, nil
}

// authorize makes the authorization request for the browser and returns
// where the browser goes on to: the authorization server's redirect (to
// the IdP, or straight back with a code), or the request itself when the
// server answers with a page of its own or sets cookies (the browser must
// then make it again). A refusal (unknown client, bad parameters) becomes
// an error for the terminal instead of JSON in a browser tab.
func authorize(ctx context.Context, hc *http.Client, authURL, clientID string) (string, error) {
	nc := *hc
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", failure(err, "")
	}
	resp, err := nc.Do(req)
	if err != nil {
		return "", failure(fmt.Errorf("reach the authorization endpoint: %w", errors.Unwrap(err)), "check that the server is running and reachable")
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		loc, err := resp.Location()
		if err != nil || (loc.Scheme != "http" && loc.Scheme != "https") {
			return "", failure(errors.New("the authorization endpoint redirected to no usable http(s) address"), "check the server's logs")
		}
		if len(resp.Cookies()) > 0 {
			return authURL, nil
		}
		return loc.String(), nil
	case resp.StatusCode == http.StatusOK:
		return authURL, nil // a login page served directly
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return "", failure(fmt.Errorf("the authorization endpoint answered HTTP %d", resp.StatusCode), "check the server's logs; 'ncmcp login --debug' traces the requests")
	}
	msg := fmt.Errorf("the server refused the authorization request (HTTP %d %s): %s", resp.StatusCode, e.Error, e.Description)
	switch e.Error {
	case "unauthorized_client":
		return "", failure(msg, fmt.Sprintf("client %q is not allowed by this server: use a client id its admin allowed (ALLOWED_MCP_CLIENTS) with --client-id", clientID))
	default:
		return "", failure(msg, "")
	}
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

// completeLogin exchanges the code, establishes the identity (a verified ID
// token where the server allows it) and stores the result: secrets first,
// then the config. Nothing is stored on failure.
func completeLogin(ctx context.Context, g *globalOptions, st *store.Store, hc *http.Client, disc *discovery.Result, login *oauth.Login, code string) (*loginResult, error) {
	tok, err := login.Exchange(ctx, hc, code)
	if err != nil {
		var te *oauth.TokenError
		switch {
		case errors.As(err, &te) && te.Status == 0 && !te.Unusable:
			return nil, failure(err, "the token endpoint was not reachable; run 'ncmcp login' again when it is up")
		case errors.As(err, &te) && registration.UnknownClient(te.Code, te.Description):
			return nil, failure(err, "the server no longer knows this client (restarted?): 'ncmcp clients remove "+login.Client.ID+" --local-only', then 'ncmcp login' registers a new one")
		case login.NoVerifierFallback:
			return nil, failure(fmt.Errorf("%w (codes work once: it was not retried)", err), "run 'ncmcp login' again to start over")
		}
		return nil, failure(err, "run 'ncmcp login' again; 'ncmcp login --debug' traces the requests")
	}
	id, err := identifier(disc, login.Client.ID).Identify(ctx, hc, tok, login.Nonce)
	if err != nil {
		return nil, failure(err, "the ID token is not valid for this login; nothing was stored. If this repeats, the IdP or server is misconfigured")
	}
	return saveLogin(ctx, g, st, disc, newLoginRecord(login.Client, id, tok, login.Scopes))
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
