// Package revoke revokes an account's tokens at its authorization server
// (RFC 7009), and the server's own access for it when asked, then forgets
// the account, but only when everything attempted was revoked. It prints
// nothing: Account ('ncmcp tokens revoke') reports each step in a Report,
// Logout ('ncmcp logout') each credential in a LogoutReport.
package revoke

import (
	"context"
	"errors"
	"net/http"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// Revoker revokes the accounts of one store.
type Revoker struct {
	Store *store.Store
	HTTP  *http.Client
	// Source returns the credential source of an account, which reads its
	// tokens and client.
	Source func(serverURL, subject string) *credential.Source
	// ServerSide asks the server to delete its own access for the account
	// and returns its answer; needed only for Account's serverSide.
	ServerSide func(ctx context.Context, srv *store.Server, acct *store.Account) (string, error)
	// ServerStatus asks the server what it holds of its own for the
	// account (its status tool); any failure is a ServerCredential of
	// State Unknown. Used by Logout only, which without it knows nothing
	// of the server's credential.
	ServerStatus func(ctx context.Context, srv *store.Server, acct *store.Account) ServerCredential
}

// Step kinds of a Report.
const (
	StepServerSide   = "server-side"
	StepRefreshToken = "refresh token"
	StepAccessToken  = "access token"
	// StepClient is reading the client's credentials; when that fails the
	// tokens are revoked as a public client's.
	StepClient = "client"
	// StepRead is reading the tokens.
	StepRead = "read"
	// StepRemove is removing the account from storage.
	StepRemove = "remove"
)

// Step is one thing Account did or tried.
type Step struct {
	Kind string
	// Err is nil when the step succeeded.
	Err error
	// Answer is the server's answer to a server-side revocation.
	Answer string
	// Endpoint is where a token was revoked.
	Endpoint string
	// LocalOnly is set for tokens that were not revoked because the
	// authorization server has no revocation endpoint.
	LocalOnly bool
}

// Report is what Account did for one account.
type Report struct {
	Server  string
	Account *store.Account
	Steps   []Step
	// Removed is set when the account was removed from storage.
	Removed bool
}

// Account revokes one account's tokens (and with serverSide the server's
// own access) and removes the account from storage only when every
// revocation that was attempted succeeded, or there was nothing to revoke
// at.
func (r *Revoker) Account(ctx context.Context, srv *store.Server, acct *store.Account, serverSide bool) *Report {
	rep := &Report{Server: srv.URL, Account: acct}
	ok := true
	if serverSide {
		answer, err := r.ServerSide(ctx, srv, acct)
		rep.Steps = append(rep.Steps, Step{Kind: StepServerSide, Err: err, Answer: answer})
		ok = err == nil
	}
	src := r.Source(srv.URL, acct.Subject)
	tok, err := src.Stored(srv, acct)
	if err != nil {
		rep.Steps = append(rep.Steps, Step{Kind: StepRead, Err: err})
		return rep
	}
	client, err := src.Client(srv, acct.ClientID)
	if err != nil {
		rep.Steps = append(rep.Steps, Step{Kind: StepClient, Err: err})
		client = oauth.Client{ID: acct.ClientID}
	}
	for _, part := range []struct{ kind, hint, value string }{
		{StepRefreshToken, "refresh_token", tok.RefreshToken},
		{StepAccessToken, "access_token", tok.AccessToken},
	} {
		c := r.revokeToken(ctx, srv, client, part.value, part.hint)
		switch c.Fate {
		case Absent:
			continue
		case NoEndpoint:
			rep.Steps = append(rep.Steps, Step{Kind: part.kind, LocalOnly: true})
		case Failed:
			rep.Steps = append(rep.Steps, Step{Kind: part.kind, Err: c.Err})
			ok = false
		default:
			rep.Steps = append(rep.Steps, Step{Kind: part.kind, Endpoint: c.Endpoint})
		}
	}
	if !ok {
		return rep
	}
	if _, err := r.Store.RemoveAccount(ctx, srv.URL, acct.Subject); err != nil {
		rep.Steps = append(rep.Steps, Step{Kind: StepRemove, Err: err})
		return rep
	}
	rep.Steps = append(rep.Steps, Step{Kind: StepRemove})
	rep.Removed = true
	return rep
}

// revokeToken revokes one token (hint: its token_type_hint) at the
// server's revocation endpoint: Absent when there is no token, NoEndpoint
// when there is no endpoint.
func (r *Revoker) revokeToken(ctx context.Context, srv *store.Server, client oauth.Client, token, hint string) Credential {
	if token == "" {
		return Credential{Fate: Absent}
	}
	err := oauth.Revoke(ctx, r.HTTP, srv.RevocationEndpoint, client, token, hint)
	switch {
	case errors.Is(err, oauth.ErrNoRevocation):
		return Credential{Fate: NoEndpoint}
	case err != nil:
		return Credential{Fate: Failed, Err: err}
	}
	return Credential{Fate: Ended, Endpoint: srv.RevocationEndpoint}
}
