package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/session"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// loginPolicy says whether a command may log in on the way, and how.
type loginPolicy struct {
	// Allowed is set for commands meant to change state.
	Allowed   bool
	NoBrowser bool
	// AtExpiry logs in when a token that cannot be renewed expires, for a
	// long-running session (the proxy); commands report the expiry.
	AtExpiry bool
}

// newCredentials returns the MCP credentials of an account (nil: none
// yet) at the server. Only commands meant to change state (lp.Allowed) log
// in or register a client in place of one the server forgot.
func newCredentials(g *globalOptions, st *store.Store, srv *store.Server, acct *store.Account, lp loginPolicy) *session.Credentials {
	c := &session.Credentials{
		Store: st, Server: srv.URL, Endpoint: srv.MCPEndpoint(),
		Source: func(serverURL, subject string) *credential.Source { return g.source(st, serverURL, subject) },
		Notice: func(m string) { fmt.Fprintln(g.deps.Stderr, m) },
	}
	if acct != nil {
		c.Subject = acct.Subject
	}
	if lp.Allowed {
		c.LoginAtExpiry = lp.AtExpiry
		c.Login = func(ctx context.Context, endpoint string, challenged []string) (session.Login, error) {
			return sessionLogin(ctx, g, st, endpoint, challenged, lp.NoBrowser)
		}
		c.Recover = func(ctx context.Context, cg *credential.ClientGoneError) error {
			return replaceClient(ctx, g, st, cg)
		}
	}
	return c
}

// sessionLogin runs a browser login for the server of endpoint, asking for
// the challenged scopes (nil: by the specification's rules).
func sessionLogin(ctx context.Context, g *globalOptions, st *store.Store, endpoint string, challenged []string, noBrowser bool) (session.Login, error) {
	var out session.Login
	disc, err := g.discover(ctx, g.httpClient(), endpoint)
	if err != nil {
		return out, err
	}
	if err := followAuthorizationServer(ctx, g, st, disc); err != nil {
		return out, err
	}
	client, err := loginClient(ctx, g, st, disc)
	if err != nil {
		return out, err
	}
	scopes, err := loginScopes(g, st, disc, challenged, nil)
	if err != nil {
		return out, err
	}
	out.Asked = scopes
	res, err := loginReplacingForgotten(ctx, g, st, disc, client, func(c *login.Client) (*login.Result, error) {
		return browserLogin(ctx, g, st, disc, c.Client, browserOptions{port: c.Port, scopes: scopes, noBrowser: noBrowser, timeout: 5 * time.Minute})
	})
	if err != nil {
		return out, err
	}
	printLoginSummary(g.deps.Stderr, g.deps.Now(), res)
	out.Server, out.Subject, out.Token = disc.ServerURL, res.Subject, res.Token.AccessToken
	return out, nil
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
			return nil, sessionError(err, srv.URL)
		}
	}
	sess, err := mcpclient.Connect(ctx, g.httpClient(), srv.MCPEndpoint(), creds, mcpclient.Options{Version: binaryVersion(g.deps.Version, g.deps.Commit, g.deps.Date).Version, OnElicit: onElicit})
	if err != nil {
		// An answer that is no MCP answer may come from no MCP server
		// at all: discovery tells. Other failures (a refused login, a
		// timeout) are no cause to ask the server again.
		var (
			he *mcpclient.HTTPError
			ae *mcpclient.AnswerError
		)
		if errors.As(err, &he) || errors.As(err, &ae) {
			if nm := notMCP(ctx, g, srv.URL); nm != nil {
				return nil, nm
			}
		}
		return nil, toolFailure(err, srv.URL)
	}
	return sess, nil
}

// notMCP tells, after a failed connection, whether the server's URL is no
// MCP server at all (discovery says what answered there), as an error with
// its hint; nil when it is one, or cannot be told.
func notMCP(ctx context.Context, g *globalOptions, serverURL string) error {
	_, err := discovery.Discover(ctx, g.httpClient(), serverURL)
	var nm *discovery.NotMCPError
	if !errors.As(err, &nm) {
		return nil
	}
	return notMCPFailure(serverURL, nm)
}

// notMCPFailure reports err, which says no MCP server answers at
// serverURL, with notMCPHint.
func notMCPFailure(serverURL string, err error) error {
	return failure(fmt.Errorf("%s: %w", serverURL, err), notMCPHint)
}

// notMCPHint is what to do about a URL where no MCP server answers.
const notMCPHint = "check --server: it must be an MCP server's endpoint or base URL ('ncmcp doctor --server URL' shows what answered)"
