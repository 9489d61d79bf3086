package cli

import (
	"errors"
	"regexp"
	"strings"
	"sync"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/session"
)

// toolFailure maps MCP errors to exit codes: a refused token means log in
// again, a tool error is the server's answer.
func toolFailure(err error, serverURL string) error {
	if mapped, ok := mapSessionError(err, serverURL); ok {
		return mapped // the credentials' own error
	}
	var ue *mcpclient.UnauthorizedError
	if errors.As(err, &ue) {
		return authNeeded(err, "log in again: 'ncmcp login --server "+serverURL+"'")
	}
	var se *mcpclient.InsufficientScopeError
	if errors.As(err, &se) {
		if len(se.Scopes) == 0 {
			return authNeeded(err, "the server wants a scope your token lacks and did not say which: its scopes_supported lists the candidates ('ncmcp doctor'); log in with 'ncmcp login --scopes SCOPE'")
		}
		return authNeeded(err, "log in again asking for it: 'ncmcp login --server "+serverURL+" --scopes "+strings.Join(se.Scopes, ",")+"'")
	}
	var te *mcpclient.ToolError
	if errors.As(err, &te) {
		return failure(err, toolErrorHint(te.Message, serverURL))
	}
	var pe *provision.PageError
	if errors.As(err, &pe) {
		return failure(err, "ncmcp opens and shows only http(s) pages: this is the server's answer, its admin can say why it names such a page")
	}
	var re *provision.RefusedError
	if errors.As(err, &re) {
		return failure(err, "this is the server's answer; its logs say more")
	}
	return failure(err, "check that the server is reachable; 'ncmcp doctor' checks each step")
}

// missingScopes reads the scope check of newer servers' tools: "Missing
// required scopes: openid. Token has scopes: none." It is compiled on first
// use, not in package initialisation, which every command pays for.
var missingScopes = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`Missing required scopes: ([^.]*)\.(?:\s*Token has scopes: ([^.]*)\.)?`)
})

// toolErrorHint explains a tool's error result, which is the server's
// answer, not an ncmcp failure.
func toolErrorHint(msg, serverURL string) string {
	m := missingScopes().FindStringSubmatch(msg)
	if m == nil {
		return "this is the server's answer; its logs say more"
	}
	missing := strings.Join(strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == ' ' }), ",")
	if has := strings.TrimSpace(m[2]); has == "none" || has == "" {
		return "the server checks the scope claim of your access token, and this token has none: the IdP the server logs you in with issues tokens without scopes (Dex does; Nextcloud's OIDC app does not). Only the server's admin can fix this (an IdP that puts scopes in tokens, or the server's setting for tokens without them); logging in again does not help"
	}
	return "your token lacks the scope " + missing + ": log in again asking for it ('ncmcp login --server " + serverURL + " --scopes " + missing + "'); if the IdP does not grant it, its admin must allow it for the client"
}

// sessionError maps the errors of an MCP session's credentials to exit
// codes and hints.
func sessionError(err error, serverURL string) error {
	if mapped, ok := mapSessionError(err, serverURL); ok {
		return mapped
	}
	return failure(err, "")
}

// mapSessionError maps the errors sessionError knows, the credential
// source's included; ok is false for others (the server's answers).
func mapSessionError(err error, serverURL string) (mapped error, ok bool) {
	var (
		e  *Error
		cg *credential.ClientGoneError
		ln *session.LoginNeededError
		su *session.StepUpError
		tm *session.TooManyLoginsError
	)
	// A step-up's own failure (with its hint) is inside a StepUpError:
	// the session's errors come first.
	switch {
	case errors.As(err, &su):
		return authNeeded(err, stepUpHint(su, serverURL)), true
	case errors.As(err, &tm) && tm.AllFailed():
		return authNeeded(err, "no login succeeded: 'ncmcp login --server "+serverURL+"' shows why, step by step with --debug"), true
	case errors.As(err, &tm):
		return authNeeded(err, "the server does not accept what its authorization server grants; its logs say more"), true
	case errors.As(err, &ln):
		return authNeeded(err, "log in: 'ncmcp login --server "+serverURL+"'"), true
	case errors.As(err, &e):
		return err, true
	case errors.As(err, &cg):
		return authNeeded(cg, "the server no longer knows client "+cg.ClientID+": 'ncmcp login --server "+serverURL+"' registers a new one"), true
	}
	return mapCredentialError(err)
}

func stepUpHint(e *session.StepUpError, serverURL string) string {
	switch e.Reason {
	case session.NoScopeNamed:
		return "the server wants a scope your token lacks and did not say which: its scopes_supported lists the candidates ('ncmcp doctor'); log in with 'ncmcp login --scopes SCOPE'"
	case session.AskedAlready:
		return "ncmcp logged in again asking for " + strings.Join(e.Challenged, " ") + " and the server still refuses: the authorization server did not grant it to you or to this client; its admin must allow it"
	case session.AllGranted:
		return "the token was granted every scope the server asks for (" + strings.Join(e.Challenged, " ") + "), so logging in again would not help: the server's admin must grant the access"
	case session.ScopesFixed:
		return "a generation-1 server's configuration decides the scopes: its admin must add " + strings.Join(e.Missing, " ")
	case session.LoginRefused:
		var ce *Error
		if errors.As(e.Err, &ce) {
			return ce.Hint
		}
		return ""
	}
	return "log in again asking for it: 'ncmcp login --server " + serverURL + " --scopes " + strings.Join(e.Missing, ",") + "'"
}
