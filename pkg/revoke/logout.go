package revoke

import (
	"context"
	"fmt"
	"time"

	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// States of a ServerCredential.
const (
	// Held: the server holds a credential of its own for the account.
	Held = "held"
	// NotHeld: the server says it holds none.
	NotHeld = "not_held"
	// NotOffered: the server runs without offline access (no provisioning
	// tools), so it holds none.
	NotOffered = "not_offered"
	// Unknown: the server could not be asked (Reason says why).
	Unknown = "unknown"
)

// ServerCredential is the server's own credential for an account (an app
// password from Nextcloud Login Flow v2, or a Flow 2 refresh token), as
// the server's status tool reports it.
type ServerCredential struct {
	// State is Held, NotHeld, NotOffered or Unknown.
	State string
	// Kind is provision.KindLoginFlow or provision.KindFlow2 (or the
	// server's own word) when Held.
	Kind  string
	Since *time.Time
	// Reason says why the State is Unknown or NotOffered.
	Reason string
}

// Fate is what became of one credential in a logout.
type Fate string

// Fates of a credential.
const (
	// NotAsked: ending it was not asked for; it stays valid.
	NotAsked Fate = "not asked"
	// Ended: it was revoked (a token at the revocation endpoint, the
	// server's credential by the server).
	Ended Fate = "ended"
	// Absent: there was none to end.
	Absent Fate = "absent"
	// NoEndpoint: a token that could not be revoked because the
	// authorization server has no revocation endpoint; it stays valid until
	// it expires.
	NoEndpoint Fate = "no revocation endpoint"
	// Failed: ending it was tried and failed (Err says why).
	Failed Fate = "failed"
	// Untried: not tried because an earlier step failed; it stays, and so
	// does the account, so that the logout can be tried again.
	Untried Fate = "untried"
)

// Credential is one credential of a logout and what became of it.
type Credential struct {
	Fate Fate
	// Err says why ending it Failed.
	Err error
	// Endpoint is where a token was revoked.
	Endpoint string
	// Answer is the server's answer when it ended its own credential.
	Answer string
}

// Gone reports whether nothing of the credential remains valid: it was
// ended, or there was none.
func (c Credential) Gone() bool { return c.Fate == Ended || c.Fate == Absent }

// LogoutOptions say what Logout ends besides forgetting the account.
type LogoutOptions struct {
	// Revoke revokes the account's tokens at the authorization server
	// (RFC 7009, where it has a revocation endpoint).
	Revoke bool
	// ServerSide ends the server's own credential for the account first
	// (MCP tool revoke_nextcloud_access).
	ServerSide bool
}

// LogoutReport is what Logout did for one account, credential by
// credential.
type LogoutReport struct {
	Server  *store.Server
	Account *store.Account
	Asked   LogoutOptions
	// Held is what the server held of its own for the account before the
	// logout (Unknown with no ServerStatus).
	Held ServerCredential
	// ServerSide is what became of the server's own credential.
	ServerSide Credential
	// RefreshToken and AccessToken are what became of the account's
	// tokens at the authorization server.
	RefreshToken, AccessToken Credential
	// ClientErr is set when the client's credentials could not be read:
	// the tokens were revoked as a public client's.
	ClientErr error
	// Removed is set when the account was removed from storage; RemoveErr
	// says why it was not, when removing was tried.
	Removed   bool
	RemoveErr error
}

// Complete reports whether everything asked was done: every credential
// asked for ended (or absent), and the account removed from storage.
func (r *LogoutReport) Complete() bool {
	if !r.Removed {
		return false
	}
	if r.Asked.ServerSide && !r.ServerSide.Gone() {
		return false
	}
	return !r.Asked.Revoke || r.RefreshToken.Gone() && r.AccessToken.Gone()
}

// StillHeldError reports a server that answered its revocation tool with
// success while its status tool still reports a credential for the
// account.
type StillHeldError struct {
	// Answer is the revocation tool's message.
	Answer string
	// Now is what the status tool reports after it.
	Now ServerCredential
}

func (e *StillHeldError) Error() string {
	held := "a credential of its own"
	if e.Now.Kind != "" {
		held += " (" + e.Now.Kind + ")"
	}
	return fmt.Sprintf("the server said it ended its credential (%s), but its status tool still reports %s for the account", e.Answer, held)
}

// Logout ends what opts ask for and forgets the account, in the order
// that keeps every step possible: first it asks the server what it holds
// of its own for the account (ServerStatus); with opts.ServerSide it has
// the server end that credential (which needs the account's token, so
// before the tokens are revoked) and confirms with the status tool; with
// opts.Revoke it then revokes the tokens; last it removes the account.
//
// A step that fails stops the logout there and keeps the account (and
// its tokens) stored, so that it can be run again: when the server could
// not end its credential, the tokens are not revoked (the next try needs
// them); when a token could not be revoked, the account is not removed.
// Tokens that cannot be revoked because there is no revocation endpoint
// do not stop it: trying again would not help.
func (r *Revoker) Logout(ctx context.Context, srv *store.Server, acct *store.Account, opts LogoutOptions) *LogoutReport {
	rep := &LogoutReport{Server: srv, Account: acct, Asked: opts,
		Held:       ServerCredential{State: Unknown, Reason: "not asked"},
		ServerSide: Credential{Fate: NotAsked}, RefreshToken: Credential{Fate: NotAsked}, AccessToken: Credential{Fate: NotAsked}}
	if r.ServerStatus != nil {
		rep.Held = r.ServerStatus(ctx, srv, acct)
	}
	if opts.ServerSide {
		rep.ServerSide = r.endServerSide(ctx, srv, acct, rep.Held)
		if !rep.ServerSide.Gone() {
			if opts.Revoke {
				rep.RefreshToken, rep.AccessToken = Credential{Fate: Untried}, Credential{Fate: Untried}
			}
			return rep
		}
	}
	if opts.Revoke && !r.revokeTokens(ctx, srv, acct, rep) {
		return rep
	}
	if _, err := r.Store.RemoveAccount(ctx, srv.URL, acct.Subject); err != nil {
		rep.RemoveErr = err
		return rep
	}
	rep.Removed = true
	return rep
}

// endServerSide has the server end its own credential, unless its status
// tool said there is none, and confirms with the status tool.
func (r *Revoker) endServerSide(ctx context.Context, srv *store.Server, acct *store.Account, held ServerCredential) Credential {
	if held.State == NotHeld || held.State == NotOffered {
		return Credential{Fate: Absent}
	}
	answer, err := r.ServerSide(ctx, srv, acct)
	if err != nil {
		return Credential{Fate: Failed, Err: err}
	}
	if r.ServerStatus != nil {
		if now := r.ServerStatus(ctx, srv, acct); now.State == Held {
			return Credential{Fate: Failed, Answer: answer, Err: &StillHeldError{Answer: answer, Now: now}}
		}
	}
	return Credential{Fate: Ended, Answer: answer}
}

// revokeTokens revokes the account's tokens into rep and reports whether
// the logout may go on: every token revoked, absent, or without a
// revocation endpoint to revoke it at.
func (r *Revoker) revokeTokens(ctx context.Context, srv *store.Server, acct *store.Account, rep *LogoutReport) bool {
	src := r.Source(srv.URL, acct.Subject)
	tok, err := src.Stored(srv, acct)
	if err != nil {
		rep.RefreshToken, rep.AccessToken = Credential{Fate: Failed, Err: err}, Credential{Fate: Failed, Err: err}
		return false
	}
	client, err := src.Client(srv, acct.ClientID)
	if err != nil {
		rep.ClientErr = err
		client = oauth.Client{ID: acct.ClientID}
	}
	rep.RefreshToken = r.revokeToken(ctx, srv, client, tok.RefreshToken, "refresh_token")
	rep.AccessToken = r.revokeToken(ctx, srv, client, tok.AccessToken, "access_token")
	return rep.RefreshToken.Fate != Failed && rep.AccessToken.Fate != Failed
}
