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
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/registration"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
)

// LoginOptions are the inputs of 'ncmcp login'.
type LoginOptions struct {
	g *globalOptions

	NoBrowser bool
	Timeout   time.Duration
	Port      int
	// Paste also reads the redirected URL (or the code) from stdin, for a
	// browser on another machine that cannot reach the loopback listener.
	Paste bool
	// WithRefreshToken reads a refresh token from stdin and stores it
	// instead of running a browser flow.
	WithRefreshToken bool
	// Scopes are extra scopes to ask for (generation 2; a generation-1
	// server decides the IdP scopes itself).
	Scopes []string
}

func newLoginCmd(g *globalOptions, runF func(context.Context, *LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{g: g}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to an MCP server in the browser (OAuth Flow 1)",
		Long: `Log in to a Nextcloud MCP server: ncmcp listens on 127.0.0.1, has the
browser make the authorization request (PKCE S256, state and nonce) through
a one-time page of that listener, receives the code, exchanges it, and
stores the tokens (OS keyring, or an owner-only file: see --storage).

Who logged in is established as well as the server allows: an ID token
issued by the authorization server itself as an OpenID Provider is verified
(generation 1); the tokens a generation-2 server relays are read, not
verified; 'ncmcp status' says which.

The authorization URL is always printed on stderr, so it can be opened
elsewhere.`,
		Example: `  ncmcp login --server https://mcp.example.com --client-id test-mcp-client
  ncmcp login --no-browser --timeout 10m
  ncmcp login --paste            # browser on another machine: paste where it ends up
  ncmcp login --with-refresh-token < token.txt`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("no-browser") {
				opts.NoBrowser = envBool(g.deps.Getenv("NCMCP_NO_BROWSER"))
			}
			if opts.Timeout <= 0 {
				return usageErrorf("use a positive duration such as 5m", "invalid --timeout %s", opts.Timeout)
			}
			if opts.Paste && opts.WithRefreshToken {
				return usageErrorf("use one of them", "--paste and --with-refresh-token both read stdin")
			}
			if opts.Port < 0 || opts.Port > 65535 {
				return usageErrorf("use a port between 1 and 65535, or 0 for a random one", "invalid --port %d", opts.Port)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLogin(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.NoBrowser, "no-browser", false, "print the URL instead of opening a browser (env NCMCP_NO_BROWSER=1)")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for the browser login")
	cmd.Flags().IntVar(&opts.Port, "port", 0, "loopback port for the redirect (default: random, or the port the client's registration fixes)")
	cmd.Flags().BoolVar(&opts.Paste, "paste", false, "also accept the URL the browser ends on (or the code) pasted on stdin, for a browser on another machine")
	cmd.Flags().BoolVar(&opts.WithRefreshToken, "with-refresh-token", false, "read a refresh token from stdin and store it, without a browser")
	cmd.Flags().StringSliceVar(&opts.Scopes, "scopes", nil, "extra scopes to ask a generation-2 server for (spelled as its scopes_supported lists them), besides openid, profile, email and offline_access where it lists those")
	return cmd
}

func runLogin(ctx context.Context, opts *LoginOptions) error {
	g, d := opts.g, opts.g.deps
	st, cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	serverURL, err := serverForSetup(g, cfg)
	if err != nil {
		return err
	}
	known := cfg.Servers[serverURL]
	hc := g.httpClient()

	disc, err := g.discover(ctx, hc, serverURL)
	if err != nil {
		return err
	}

	client, fixedPort, err := loginClient(ctx, g, st, known, disc)
	if err != nil {
		return err
	}
	if opts.WithRefreshToken {
		return loginWithRefreshToken(ctx, g, st, hc, disc, client)
	}
	port := opts.Port
	if port == 0 {
		port = fixedPort
	}
	ln, err := loopback.Listen(port)
	if err != nil {
		var pe *loopback.PortInUseError
		if errors.As(err, &pe) {
			return failure(err, "stop whatever listens on 127.0.0.1:"+strconv.Itoa(pe.Port)+", or choose another port with --port (if the client's registration allows it)")
		}
		return failure(err, "")
	}
	defer ln.Close()

	login, err := newLogin(g, disc, client, ln.RedirectURI(), opts.Scopes)
	if err != nil {
		return err
	}
	authURL := login.URL()
	// The browser gets a one-time page of the listener, not the
	// authorization request: other users can read a command line. The page
	// makes the one authorization request and passes its answer on, so
	// that a refusal reaches the terminal too.
	startURL := ln.Start(func(ctx context.Context) (string, error) {
		return authorize(ctx, hc, authURL, client.ID)
	})

	fmt.Fprintf(d.Stderr, "Open this URL in a browser to log in to %s:\n\n  %s\n\n", serverURL, authURL)
	if opts.Paste || d.Getenv("SSH_CONNECTION") != "" {
		fmt.Fprintf(d.Stderr, "Browser on another machine? Forward the port first: ssh -L %d:127.0.0.1:%d <this host>\n", ln.Port(), ln.Port())
	}
	if !opts.NoBrowser {
		if err := g.openURL(startURL); err != nil {
			fmt.Fprintf(d.Stderr, "warning: could not open a browser (%s): open the URL above yourself\n", oneLine(err.Error()))
		}
	}
	fmt.Fprintf(d.Stderr, "Waiting for the browser to return to %s (up to %s)...\n", ln.RedirectURI(), opts.Timeout)
	var pasted <-chan string
	if opts.Paste {
		fmt.Fprintln(d.Stderr, "Or paste here the address the browser ends on (it may fail to load), or just the code, then press Enter:")
		pasted = readLines(d.Stdin)
	}
	rejected := func(err error) {
		fmt.Fprintf(d.Stderr, "Not accepted: %v. Paste the address again:\n", err)
	}

	wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var done *loginResult
	var completeErr error
	_, err = ln.WaitOrPaste(wctx, login.State, func(cctx context.Context, code string) loopback.Result {
		done, completeErr = completeLogin(cctx, g, st, hc, disc, login, code)
		if completeErr != nil {
			return loopback.Result{Title: "Login failed", Message: oneLine(completeErr.Error()) + ". Nothing was stored; see the terminal."}
		}
		return loopback.Result{OK: true, Title: "Logged in", Message: fmt.Sprintf("ncmcp is logged in to %s as %s.", serverURL, done.id.Display())}
	}, pasted, rejected)
	switch {
	case err == nil && completeErr != nil:
		return completeErr
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return timedOut(fmt.Errorf("timed out after %s waiting for the browser login; nothing was stored", opts.Timeout),
			"run 'ncmcp login' again (--timeout waits longer; --no-browser prints the URL to open elsewhere)")
	default:
		var ae *loopback.AuthError
		if errors.As(err, &ae) {
			if ae.Code == "invalid_scope" && len(opts.Scopes) > 0 {
				return failure(err, "a scope you asked for with --scopes is refused: use the names the server lists in scopes_supported ('ncmcp doctor' shows them)")
			}
			return failure(err, authErrorHint(ae))
		}
		var se *loopback.StartError
		if errors.As(err, &se) {
			return se.Err
		}
		if errors.Is(err, loopback.ErrStartReused) {
			return failure(err, "run 'ncmcp login' again; if this repeats, something on this machine is watching for ncmcp's login links")
		}
		return failure(err, "")
	}
	printLoginSummary(d.Stderr, d.Now(), serverURL, done)
	return nil
}

// loginClient picks the OAuth client: --client-id, else the account's or
// the server's stored client, else one registered now when the server's
// discovery offers registration. The secret comes from NCMCP_CLIENT_SECRET
// or storage. It also returns the loopback port the client's registration
// fixes (0: any).
func loginClient(ctx context.Context, g *globalOptions, st *store.Store, known *store.Server, disc *discovery.Result) (oauth.Client, int, error) {
	c := oauth.Client{ID: g.ClientID, AuthMethods: disc.Provider.TokenEndpointAuthMethodsSupported}
	if c.ID == "" && known != nil {
		if a := known.FindAccount(g.Account); a != nil && a.ClientID != "" && known.Client(a.ClientID) != nil {
			c.ID = a.ClientID
		} else if len(known.Clients) > 0 {
			c.ID = known.Clients[len(known.Clients)-1].ID
		}
	}
	if c.ID == "" {
		if disc.Provider.RegistrationEndpoint == "" {
			return c, 0, usageErrorf("pass --client-id ID (or set NCMCP_CLIENT_ID) with a client the server allows, or record one with 'ncmcp clients add ID'; 'ncmcp clients register' needs a server or IdP that offers registration, and this one does not",
				"no OAuth client is known for %s", disc.ServerURL)
		}
		fmt.Fprintf(g.deps.Stderr, "No client is stored for %s: registering one at %s.\n", disc.ServerURL, disc.Provider.RegistrationEndpoint)
		reg, err := registerClient(ctx, g, st, disc, 0)
		if err != nil {
			return c, 0, err
		}
		if known == nil {
			known = &store.Server{URL: disc.ServerURL}
		}
		known.PutClient(*reg)
		c.ID = reg.ID
	}
	c.Secret = g.deps.Getenv("NCMCP_CLIENT_SECRET")
	port := 0
	if known != nil {
		if sc := known.Client(c.ID); sc != nil {
			port = sc.RedirectPort
			if !sc.SecretExpiresAt.IsZero() && !g.deps.Now().Before(sc.SecretExpiresAt) {
				return c, 0, failure(fmt.Errorf("the secret of client %s expired at %s", c.ID, sc.SecretExpiresAt.Local().Format(time.RFC3339)),
					"register a new client: 'ncmcp clients remove "+c.ID+"' then 'ncmcp clients register'")
			}
			if c.Secret == "" && sc.Confidential {
				s, err := readClientSecret(st, disc.ServerURL, sc)
				if err != nil {
					return c, 0, err
				}
				c.Secret = s
			}
		}
	}
	return c, port, nil
}

func readClientSecret(st *store.Store, serverURL string, c *store.Client) (string, error) {
	b, err := st.Backend(c.SecretStorage)
	if err != nil {
		return "", failure(err, "")
	}
	s, err := b.Get(store.ClientSecretKey(serverURL, c.ID))
	if err != nil {
		return "", failure(fmt.Errorf("read the secret of client %s: %w", c.ID, err), "set NCMCP_CLIENT_SECRET, or unlock the keyring")
	}
	return s, nil
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
		return "", failure(fmt.Errorf("reach the server's authorize endpoint: %w", errors.Unwrap(err)), "check that the server is running and reachable")
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		loc, err := resp.Location()
		if err != nil || (loc.Scheme != "http" && loc.Scheme != "https") {
			return "", failure(errors.New("the server's authorize endpoint redirected to no usable http(s) address"), "check the server's logs")
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
		return "", failure(fmt.Errorf("the server's authorize endpoint answered HTTP %d", resp.StatusCode), "check the server's logs; 'ncmcp login --debug' traces the requests")
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

// loginResult is what a completed login stored.
type loginResult struct {
	id         *oauth.Identity
	tok        *oauth2.Token
	scopes     []string
	backend    string
	fellBack   error
	clientID   string
	generation int
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
		case disc.Generation == discovery.Generation2:
			return nil, failure(fmt.Errorf("%w (the server's codes work once, for 60 s: it was not retried)", err), "run 'ncmcp login' again to start over")
		}
		return nil, failure(err, "run 'ncmcp login' again; 'ncmcp login --debug' traces the requests")
	}
	id, err := identifier(disc, login.Client.ID).Identify(ctx, hc, tok, login.Nonce)
	if err != nil {
		return nil, failure(err, "the ID token is not valid for this login; nothing was stored. If this repeats, the IdP or server is misconfigured")
	}
	return saveLogin(ctx, g, st, disc, login.Client, id, tok, "", login.Scopes)
}

// saveLogin stores a login: secrets first, then the config, under the store
// lock. On failure nothing stays stored.
//
// requested are the scopes the authorization request asked for: a token
// response without a scope parameter grants exactly those (RFC 6749
// section 5.1).
func saveLogin(ctx context.Context, g *globalOptions, st *store.Store, disc *discovery.Result, client oauth.Client, id *oauth.Identity, tok *oauth2.Token, seed string, requested []string) (*loginResult, error) {
	tok.Expiry = oauth.Expiry(tok)
	res := &loginResult{id: id, tok: tok, scopes: oauth.Scopes(tok), clientID: client.ID, generation: disc.Generation}
	if res.scopes == nil && len(requested) > 0 {
		res.scopes = slices.Clone(requested)
	}
	subject := id.Subject
	if subject == "" {
		subject = store.UnknownSubject(client.ID)
	}
	secrets := &store.Tokens{AccessToken: tok.AccessToken, TokenType: tok.Type(), RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}

	unlock, err := st.Lock(ctx)
	if err != nil {
		return nil, failure(err, "")
	}
	defer unlock()
	cfg, err := store.LoadConfig(st.Dir)
	if err != nil {
		return nil, failure(err, "")
	}
	backend, fellBack, err := st.PutTokens(disc.ServerURL, subject, secrets)
	if err != nil {
		return nil, failure(fmt.Errorf("store the tokens: %w; nothing was stored", err), storageHint(st.Mode))
	}
	res.backend, res.fellBack = backend, fellBack
	var clientSecretBackend string
	if client.Secret != "" {
		b, _, err := st.Put(store.ClientSecretKey(disc.ServerURL, client.ID), client.Secret)
		if err != nil {
			_ = deleteTokens(st, backend, disc.ServerURL, subject)
			return nil, failure(fmt.Errorf("store the client secret: %w; nothing was stored", err), storageHint(st.Mode))
		}
		clientSecretBackend = b
	}

	srv := serverEntry(cfg, disc)
	if srv.Accounts == nil {
		srv.Accounts = map[string]*store.Account{}
	}
	if old := srv.Accounts[subject]; old != nil && old.Storage != backend {
		_ = deleteTokens(st, old.Storage, disc.ServerURL, subject)
	}
	srv.Accounts[subject] = &store.Account{
		Subject: subject, Username: id.Username, Email: id.Email, Name: id.Name,
		ClientID: client.ID, Scopes: res.scopes, AccessTokenExpiry: tok.Expiry,
		HasRefreshToken: tok.RefreshToken != "", Storage: backend, LoggedInAt: g.deps.Now().UTC(), Seed: seed,
		Identity: string(id.Source), IdentityOverTLS: id.OverTLS,
	}
	srv.ActiveAccount = subject
	c := store.Client{ID: client.ID}
	if prev := srv.Client(c.ID); prev != nil {
		c = *prev
	}
	if clientSecretBackend != "" {
		c.Confidential, c.SecretStorage = true, clientSecretBackend
	}
	srv.PutClient(c)
	if err := store.SaveConfig(st.Dir, cfg); err != nil {
		_ = deleteTokens(st, backend, disc.ServerURL, subject)
		return nil, failure(fmt.Errorf("save the config: %w; nothing was stored", err), "")
	}
	return res, nil
}

func deleteTokens(st *store.Store, backend, serverURL, subject string) error {
	b, err := st.Backend(backend)
	if err != nil {
		return err
	}
	return b.Delete(store.TokenKey(serverURL, subject))
}

func storageHint(m store.Mode) string {
	if m == store.ModeKeyring {
		return "--storage keyring needs a working, unlocked OS keyring (Secret Service on Linux); unlock it, or use --storage auto or file"
	}
	return "check that the config directory is writable (NCMCP_CONFIG_DIR)"
}

func printLoginSummary(w io.Writer, now time.Time, serverURL string, r *loginResult) {
	if r.fellBack != nil {
		fmt.Fprintf(w, "warning: the OS keyring is not usable (%s); secrets were stored in an owner-only file instead\n", oneLine(r.fellBack.Error()))
	}
	if r.id.Source == oauth.IdentityUnknown {
		fmt.Fprintf(w, "Logged in to %s with client %s; the server's tokens do not say who you are.\n", serverURL, r.clientID)
	} else {
		fmt.Fprintf(w, "Logged in to %s as %s (sub %s) with client %s.\n", serverURL, r.id.Display(), r.id.Subject, r.clientID)
		fmt.Fprintf(w, "Identity: %s.\n", r.id.Describe())
	}
	if len(r.scopes) > 0 {
		fmt.Fprintf(w, "Scopes: %s\n", strings.Join(r.scopes, " "))
	} else {
		fmt.Fprintln(w, "Scopes: not reported by the IdP")
	}
	if r.tok.Expiry.IsZero() {
		fmt.Fprintln(w, "Access token: lifetime not reported by the IdP")
	} else {
		fmt.Fprintf(w, "Access token: valid for %s (until %s)\n", r.tok.Expiry.Sub(now).Round(time.Second), r.tok.Expiry.Local().Format(time.RFC3339))
	}
	where := "the OS keyring"
	if r.backend == store.BackendFile {
		where = "an owner-only file"
	}
	if r.tok.RefreshToken != "" {
		fmt.Fprintf(w, "Refresh token: yes; 'ncmcp token' renews the access token. Tokens are in %s.\n", where)
		return
	}
	fmt.Fprintf(w, "Tokens are in %s.\n", where)
	msg := "warning: the IdP issued no refresh token: 'ncmcp token' stops working when the access token expires, and you will have to log in again."
	switch {
	case r.generation == discovery.Generation1:
		msg += " The server admin must add offline_access to the scopes the server requests (NEXTCLOUD_OIDC_SCOPES) and allow it for client " + r.clientID + " at the IdP."
	case !slices.Contains(r.scopes, "offline_access"):
		msg += " The server does not offer offline_access; its admin must allow it (for the server's own client at the IdP)."
	default:
		msg += " The server's IdP did not grant offline_access; its admin must allow it for the server's client."
	}
	fmt.Fprintln(w, msg)
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

// loginWithRefreshToken stores a refresh token read from stdin: it is used
// once at the token endpoint, which proves it and yields an access token and
// the identity (ID token, else userinfo).
func loginWithRefreshToken(ctx context.Context, g *globalOptions, st *store.Store, hc *http.Client, disc *discovery.Result, client oauth.Client) error {
	d := g.deps
	b, err := io.ReadAll(io.LimitReader(d.Stdin, 64<<10))
	if err != nil {
		return failure(fmt.Errorf("read the refresh token from stdin: %w", err), "")
	}
	rt := strings.TrimSpace(string(b))
	if rt == "" || strings.ContainsAny(rt, " \n\t") {
		return usageErrorf("pipe exactly one refresh token: ncmcp login --with-refresh-token < token.txt", "no refresh token on stdin")
	}
	tok, err := oauth.Refresh(ctx, hc, disc.Provider.TokenEndpoint, client, rt)
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) && te.Refused() {
			return authNeeded(fmt.Errorf("the IdP refused the refresh token: %w", err), "get a new refresh token (ncmcp login on a machine with a browser, then copy it), and check --client-id: refresh tokens are bound to their client")
		}
		return failure(err, "")
	}
	id, err := identifier(disc, client.ID).Identify(ctx, hc, tok, "")
	if err != nil {
		return failure(err, "")
	}
	res, err := saveLogin(ctx, g, st, disc, client, id, tok, "", nil)
	if err != nil {
		return err
	}
	printLoginSummary(d.Stderr, d.Now(), disc.ServerURL, res)
	return nil
}

// identifier establishes identities for logins at the discovered server.
func identifier(disc *discovery.Result, clientID string) *oauth.Identifier {
	p := disc.Provider
	return &oauth.Identifier{Issuer: p.Issuer, JWKSURI: p.JWKSURI, ClientID: clientID, Algs: p.IDTokenSigningAlgValuesSupported,
		UserinfoEndpoint: p.UserinfoEndpoint, TokenEndpoint: p.TokenEndpoint}
}

// newLogin prepares the authorization request for the server's generation:
// generation 1 authorizes at the server's /oauth/authorize (which passes the
// browser on to the IdP) and exchanges at the IdP; generation 2 authorizes
// and exchanges at the server, asking for offline_access.
func newLogin(g *globalOptions, disc *discovery.Result, client oauth.Client, redirectURI string, scopes []string) (*oauth.Login, error) {
	if disc.Generation == discovery.Generation1 {
		if len(scopes) > 0 {
			return nil, usageErrorf("leave --scopes out: the server's configuration decides them", "a generation-1 server does not take scopes from the client")
		}
		return oauth.NewLogin(disc.ServerURL+"/oauth/authorize", disc.Provider.TokenEndpoint, client, redirectURI), nil
	}
	l := oauth.NewLogin(disc.Provider.AuthorizationEndpoint, disc.Provider.TokenEndpoint, client, redirectURI)
	want := append([]string{"openid", "profile", "email", "offline_access"}, scopes...)
	if len(disc.Provider.ScopesSupported) > 0 {
		// Ask only for standard scopes the server lists, plus what the
		// user asked for (in the server's spelling).
		var base []string
		for _, s := range want[:4] {
			if slices.Contains(disc.Provider.ScopesSupported, s) {
				base = append(base, s)
			}
		}
		extra, notes := oauth.MatchScopes(scopes, disc.Provider.ScopesSupported)
		for _, n := range notes {
			fmt.Fprintf(g.deps.Stderr, "note: asking for %s, as the server spells it\n", n)
		}
		want = append(base, extra...)
	}
	l.Scopes = want
	l.NoVerifierFallback = true
	return l, nil
}
