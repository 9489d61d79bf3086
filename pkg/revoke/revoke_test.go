package revoke

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/devserver/devlogin"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// loggedIn logs in at a dev server of the generation (its IdP approves at
// once) and returns the revoker on the login's store.
func loggedIn(t *testing.T, gen int) (*Revoker, *devserver.Server, *store.Server, *store.Account, *login.Result) {
	t.Helper()
	srv, disc := devlogin.Start(t, devserver.Options{AutoApprove: true, Generation: gen})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st := devlogin.FileStore(t)
	res, err := devlogin.Login(ctx, st, disc, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := store.LoadConfig(st.Dir)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Servers[disc.ServerURL]
	r := &Revoker{Store: st, HTTP: http.DefaultClient, Source: func(u, sub string) *credential.Source {
		return &credential.Source{Store: st, HTTP: http.DefaultClient, Server: u, Subject: sub}
	}}
	return r, srv, s, s.Accounts[res.Subject], res
}

func kinds(rep *Report) []string {
	var out []string
	for _, s := range rep.Steps {
		k := s.Kind
		switch {
		case s.Err != nil:
			k += " failed"
		case s.LocalOnly:
			k += " local"
		}
		out = append(out, k)
	}
	return out
}

func stillStored(t *testing.T, r *Revoker, serverURL, sub string) bool {
	t.Helper()
	cfg, err := store.LoadConfig(r.Store.Dir)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Servers[serverURL]
	return s != nil && s.Accounts[sub] != nil
}

func TestRevokedAtTheIdP(t *testing.T) {
	r, _, srv, acct, res := loggedIn(t, 1)
	if srv.RevocationEndpoint == "" {
		t.Fatal("the generation-1 dev IdP has no revocation endpoint")
	}
	rep := r.Account(context.Background(), srv, acct, false)
	if !rep.Removed || len(rep.Steps) != 3 || rep.Steps[0].Endpoint != srv.RevocationEndpoint {
		t.Fatalf("steps %q, removed %v", kinds(rep), rep.Removed)
	}
	if stillStored(t, r, srv.URL, acct.Subject) {
		t.Error("the account is still stored")
	}
	// The IdP no longer takes the refresh token.
	_, err := oauth.Refresh(context.Background(), http.DefaultClient, srv.TokenEndpoint, oauth.Client{ID: devserver.PublicClientID}, res.Token.RefreshToken, "")
	var te *oauth.TokenError
	if !errors.As(err, &te) || !te.Refused() {
		t.Errorf("refresh after revocation: %v, want a refusal", err)
	}
}

func TestNoRevocationEndpoint(t *testing.T) {
	r, _, srv, acct, _ := loggedIn(t, 2)
	rep := r.Account(context.Background(), srv, acct, false)
	want := []string{"refresh token local", "access token local", "remove"}
	if !rep.Removed || len(kinds(rep)) != 3 || kinds(rep)[0] != want[0] || kinds(rep)[1] != want[1] {
		t.Errorf("steps %q, removed %v; want %q", kinds(rep), rep.Removed, want)
	}
}

func TestNothingForgottenUnlessRevoked(t *testing.T) {
	r, dev, srv, acct, _ := loggedIn(t, 1)
	if err := dev.StopIdP(); err != nil {
		t.Fatal(err)
	}
	rep := r.Account(context.Background(), srv, acct, false)
	if rep.Removed || !stillStored(t, r, srv.URL, acct.Subject) {
		t.Fatalf("steps %q: the account was removed although the IdP was down", kinds(rep))
	}
	if k := kinds(rep); len(k) != 2 || k[0] != "refresh token failed" {
		t.Errorf("steps %q, want both revocations failed", k)
	}

	r2, _, srv2, acct2, _ := loggedIn(t, 2)
	r2.ServerSide = func(context.Context, *store.Server, *store.Account) (string, error) {
		return "", errors.New("the server is down")
	}
	rep = r2.Account(context.Background(), srv2, acct2, true)
	if rep.Removed || rep.Steps[0].Kind != StepServerSide || rep.Steps[0].Err == nil || !stillStored(t, r2, srv2.URL, acct2.Subject) {
		t.Errorf("steps %q: a failed server-side revocation must keep the account", kinds(rep))
	}
}
