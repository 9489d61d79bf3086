package revoke

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// revocations counts the requests to revocation endpoints.
type revocations struct{ n atomic.Int32 }

func (c *revocations) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/revoke") {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// fakeServer stands in for the server's status and revocation tools: it
// holds a credential until revoked, unless stubborn.
type fakeServer struct {
	held, stubborn bool
	err            error
	calls          []string
}

func (f *fakeServer) status(context.Context, *store.Server, *store.Account) ServerCredential {
	f.calls = append(f.calls, "status")
	if f.held {
		return ServerCredential{State: Held, Kind: "login-flow-v2"}
	}
	return ServerCredential{State: NotHeld}
}

func (f *fakeServer) revoke(context.Context, *store.Server, *store.Account) (string, error) {
	f.calls = append(f.calls, "revoke")
	if f.err != nil {
		return "", f.err
	}
	f.held = f.held && f.stubborn
	return "Successfully revoked", nil
}

// TestLogoutServerSideFirst: the server's credential is ended while the
// account's tokens are still stored and unrevoked (the server's tools need
// them), confirmed with the status tool, then the tokens are revoked and
// the account removed.
func TestLogoutServerSideFirst(t *testing.T) {
	r, _, srv, acct, res := loggedIn(t, 1)
	count := &revocations{}
	r.HTTP = &http.Client{Transport: count}
	f := &fakeServer{held: true}
	r.ServerStatus = f.status
	r.ServerSide = func(ctx context.Context, s *store.Server, a *store.Account) (string, error) {
		if n := count.n.Load(); n != 0 || !stillStored(t, r, s.URL, a.Subject) {
			t.Errorf("the server's credential is ended after %d revocations, stored %v", n, stillStored(t, r, s.URL, a.Subject))
		}
		return f.revoke(ctx, s, a)
	}
	rep := r.Logout(context.Background(), srv, acct, LogoutOptions{Revoke: true, ServerSide: true})
	if !rep.Complete() || rep.Held.State != Held || rep.ServerSide.Fate != Ended || rep.ServerSide.Answer != "Successfully revoked" ||
		rep.RefreshToken.Fate != Ended || rep.AccessToken.Endpoint != srv.RevocationEndpoint {
		t.Fatalf("report %+v", rep)
	}
	if got := strings.Join(f.calls, " "); got != "status revoke status" {
		t.Errorf("server calls %q, want status, revoke, and status to confirm", got)
	}
	if stillStored(t, r, srv.URL, acct.Subject) {
		t.Error("the account is still stored")
	}
	_, err := oauth.Refresh(context.Background(), http.DefaultClient, srv.TokenEndpoint, oauth.Client{ID: devserver.PublicClientID}, res.Token.RefreshToken, "")
	var te *oauth.TokenError
	if !errors.As(err, &te) || !te.Refused() {
		t.Errorf("refresh after logout: %v, want a refusal", err)
	}
}

// TestLogoutServerSideFailureStopsThere: when the server does not end
// its credential, the tokens are neither revoked nor forgotten: trying
// again needs them.
func TestLogoutServerSideFailureStopsThere(t *testing.T) {
	for name, f := range map[string]*fakeServer{
		"refused":        {held: true, err: errors.New("the server is down")},
		"still reported": {held: true, stubborn: true},
	} {
		t.Run(name, func(t *testing.T) {
			r, _, srv, acct, _ := loggedIn(t, 1)
			count := &revocations{}
			r.HTTP = &http.Client{Transport: count}
			r.ServerStatus, r.ServerSide = f.status, f.revoke
			rep := r.Logout(context.Background(), srv, acct, LogoutOptions{Revoke: true, ServerSide: true})
			if rep.Complete() || rep.Removed || rep.ServerSide.Fate != Failed || rep.RefreshToken.Fate != Untried || rep.AccessToken.Fate != Untried {
				t.Fatalf("report %+v", rep)
			}
			var still *StillHeldError
			if f.stubborn != errors.As(rep.ServerSide.Err, &still) {
				t.Errorf("error %v", rep.ServerSide.Err)
			}
			if n := count.n.Load(); n != 0 || !stillStored(t, r, srv.URL, acct.Subject) {
				t.Errorf("%d revocations, stored %v: want none, and the account kept", n, stillStored(t, r, srv.URL, acct.Subject))
			}
		})
	}
}

// TestLogoutNothingToEnd: a server that says it holds nothing is not
// asked to end it.
func TestLogoutNothingToEnd(t *testing.T) {
	r, _, srv, acct, _ := loggedIn(t, 1)
	f := &fakeServer{}
	r.ServerStatus, r.ServerSide = f.status, f.revoke
	rep := r.Logout(context.Background(), srv, acct, LogoutOptions{ServerSide: true})
	if !rep.Complete() || rep.ServerSide.Fate != Absent || rep.RefreshToken.Fate != NotAsked || strings.Join(f.calls, " ") != "status" {
		t.Fatalf("report %+v, calls %q", rep, f.calls)
	}
}

// TestLogoutWithoutRevocationEndpoint: generation 2 has no revocation
// endpoint: the tokens are forgotten, but the logout is not complete.
func TestLogoutWithoutRevocationEndpoint(t *testing.T) {
	r, _, srv, acct, _ := loggedIn(t, 2)
	f := &fakeServer{held: true}
	r.ServerStatus, r.ServerSide = f.status, f.revoke
	rep := r.Logout(context.Background(), srv, acct, LogoutOptions{Revoke: true})
	if rep.Complete() || !rep.Removed || rep.RefreshToken.Fate != NoEndpoint || rep.AccessToken.Fate != NoEndpoint ||
		rep.ServerSide.Fate != NotAsked || rep.Held.State != Held || !f.held {
		t.Fatalf("report %+v", rep)
	}
	if stillStored(t, r, srv.URL, acct.Subject) {
		t.Error("the account is still stored")
	}
}
