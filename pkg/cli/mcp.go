package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// maxAuthorizations bounds the browser logins one command makes for the
// MCP requests it sends (a first login, then step-ups), so that a server
// that keeps asking for scopes it never accepts cannot make ncmcp loop.
const maxAuthorizations = 3

// mcpCredentials are the MCP credentials of an account: its stored token,
// refreshed when it expires or the server refuses it. With interactive
// set (commands meant to change state), a browser login follows when
// nothing else helps, and a 403 insufficient_scope leads to a new
// authorization for the scopes granted and those the server asks for.
type mcpCredentials struct {
	g           *globalOptions
	st          *store.Store
	server      string // the server's key
	endpoint    string
	subject     string // empty: not logged in (yet)
	interactive bool
	noBrowser   bool

	token          string
	authorizations int
	// asked are the scopes the logins of this command asked for.
	asked []string
}

// loginPolicy says whether a command may log in on the way, and how.
type loginPolicy struct {
	// Allowed is set for commands meant to change state.
	Allowed   bool
	NoBrowser bool
}

// newCredentials returns the credentials of an account (nil: none yet) at
// the server.
func newCredentials(g *globalOptions, st *store.Store, srv *store.Server, acct *store.Account, lp loginPolicy) *mcpCredentials {
	c := &mcpCredentials{g: g, st: st, server: srv.URL, endpoint: srv.MCPEndpoint(), interactive: lp.Allowed, noBrowser: lp.NoBrowser}
	if acct != nil {
		c.subject = acct.Subject
	}
	return c
}

// Token returns the account's access token, refreshed first when it
// expires within a minute; none before a login.
func (c *mcpCredentials) Token(ctx context.Context) (string, error) {
	if c.token != "" || c.subject == "" {
		return c.token, nil
	}
	tok, err := c.g.source(c.st, c.server, c.subject).Token(ctx, time.Minute)
	if err != nil {
		return "", c.clientGone(ctx, credentialError(err))
	}
	c.token = tok.AccessToken
	return c.token, nil
}

// clientGone reports a client the server forgot; only interactive
// commands, which may change state, register a replacement.
func (c *mcpCredentials) clientGone(ctx context.Context, err error) error {
	var cg *credential.ClientGoneError
	if !errors.As(err, &cg) || c.interactive {
		return handleClientGone(ctx, c.g, c.st, err)
	}
	return authNeeded(cg, "the server no longer knows client "+cg.ClientID+": 'ncmcp login --server "+c.server+"' registers a new one")
}

// Renew answers the server's refusal of token: a 401 with a refresh (or
// the token another process stored meanwhile), else a login; a 403
// insufficient_scope with a login for more scopes.
func (c *mcpCredentials) Renew(ctx context.Context, token string, r mcpclient.Refusal) (string, error) {
	if r.Status == http.StatusForbidden {
		return c.stepUp(ctx, r)
	}
	if c.subject != "" && token != "" {
		tok, err := c.g.source(c.st, c.server, c.subject).Refresh(ctx, time.Minute, token)
		if err == nil {
			c.token = tok.AccessToken
			return c.token, nil
		}
		err = credentialError(err)
		var e *Error
		if !errors.As(err, &e) || e.Code != ExitAuth || !c.interactive {
			return "", c.clientGone(ctx, err)
		}
	}
	if !c.interactive {
		return "", authNeeded(r.Err(), "log in: 'ncmcp login --server "+c.server+"'")
	}
	return c.login(ctx, r, nil)
}

// stepUp logs in again for the scopes the server asks for, with those
// already granted; not when it asks for none, or only for scopes the token
// has (another authorization would not change its answer).
func (c *mcpCredentials) stepUp(ctx context.Context, r mcpclient.Refusal) (string, error) {
	challenged := r.Challenge.Scopes()
	var granted []string
	generation := 0
	if cfg, err := store.LoadConfig(c.st.Dir); err == nil && cfg.Servers[c.server] != nil {
		srv := cfg.Servers[c.server]
		generation = srv.Generation
		if a := srv.Accounts[c.subject]; a != nil {
			granted = a.Scopes
		}
	}
	missing := slices.DeleteFunc(slices.Clone(challenged), func(s string) bool { return slices.Contains(granted, s) })
	askedAll := len(challenged) > 0 && !slices.ContainsFunc(challenged, func(s string) bool { return !slices.Contains(c.asked, s) })
	switch {
	case len(challenged) == 0:
		return "", authNeeded(r.Err(), "the server wants a scope your token lacks and did not say which: its scopes_supported lists the candidates ('ncmcp doctor'); log in with 'ncmcp login --scopes SCOPE'")
	case askedAll:
		return "", authNeeded(r.Err(), "ncmcp logged in again asking for "+strings.Join(challenged, " ")+" and the server still refuses: the authorization server did not grant it to you or to this client; its admin must allow it")
	case len(missing) == 0:
		return "", authNeeded(r.Err(), "the token was granted every scope the server asks for ("+strings.Join(challenged, " ")+"), so logging in again would not help: the server's admin must grant the access")
	case generation == discovery.Generation1:
		return "", authNeeded(r.Err(), "a generation-1 server's configuration decides the scopes: its admin must add "+strings.Join(missing, " "))
	case !c.interactive:
		return "", authNeeded(r.Err(), "log in again asking for it: 'ncmcp login --server "+c.server+" --scopes "+strings.Join(missing, ",")+"'")
	}
	fmt.Fprintf(c.g.deps.Stderr, "The server asks for the scopes %s: logging in again to get them.\n", strings.Join(missing, " "))
	want := slices.Clone(granted)
	for _, s := range challenged {
		if !slices.Contains(want, s) {
			want = append(want, s)
		}
	}
	tok, err := c.login(ctx, r, want)
	var ae *loopback.AuthError
	if errors.As(err, &ae) {
		// The authorization server refused: the server's refusal stands.
		var e *Error
		hint := ""
		if errors.As(err, &e) {
			hint = e.Hint
		}
		return "", authNeeded(fmt.Errorf("%w; logging in again for %s failed: %w", r.Err(), strings.Join(missing, " "), ae), hint)
	}
	return tok, err
}

// login runs a browser login for the server, asking for the challenged
// scopes (nil: by the specification's rules), and uses its token.
func (c *mcpCredentials) login(ctx context.Context, r mcpclient.Refusal, challenged []string) (string, error) {
	if c.authorizations >= maxAuthorizations {
		return "", authNeeded(fmt.Errorf("%w, still, after %d logins", r.Err(), c.authorizations), "the server does not accept what its authorization server grants; its logs say more")
	}
	c.authorizations++
	g := c.g
	disc, err := g.discover(ctx, g.httpClient(), c.endpoint)
	if err != nil {
		return "", err
	}
	client, err := loginClient(ctx, g, c.st, disc)
	if err != nil {
		return "", err
	}
	if challenged == nil {
		challenged = r.Challenge.Scopes()
	}
	scopes, err := loginScopes(g, c.st, disc, challenged, nil)
	if err != nil {
		return "", err
	}
	c.asked = append(c.asked, scopes...)
	res, err := browserLogin(ctx, g, c.st, disc, client.Client, browserOptions{port: client.Port, scopes: scopes, noBrowser: c.noBrowser, timeout: 5 * time.Minute})
	if err != nil {
		return "", err
	}
	printLoginSummary(g.deps.Stderr, g.deps.Now(), res)
	c.server, c.subject, c.token = disc.ServerURL, res.Subject, res.Token.AccessToken
	return c.token, nil
}

// connectMCP opens an MCP session as the account. Only interactive
// commands (meant to change state) log in or register clients on the way.
// onElicit, if set, answers the server's elicitation requests.
func connectMCP(ctx context.Context, g *globalOptions, st *store.Store, srv *store.Server, acct *store.Account, lp loginPolicy, onElicit func(context.Context, mcpclient.Elicitation) (mcpclient.ElicitAction, map[string]any)) (*mcpclient.Session, error) {
	creds := newCredentials(g, st, srv, acct, lp)
	if acct != nil {
		// A stored login that cannot give a token is reported before
		// anything is sent.
		if _, err := creds.Token(ctx); err != nil {
			return nil, err
		}
	}
	sess, err := mcpclient.Connect(ctx, g.httpClient(), srv.MCPEndpoint(), creds, mcpclient.Options{Version: g.deps.Version, OnElicit: onElicit})
	if err != nil {
		return nil, toolFailure(err, srv.URL)
	}
	return sess, nil
}
