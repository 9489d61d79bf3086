package session

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/devserver/devlogin"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/ncmcp/ncmcp/pkg/wwwauth"
)

// fixture is a generation-2 dev server whose IdP approves at once, a file
// store, and real browser logins through pkg/login.
type fixture struct {
	srv    *devserver.Server
	st     *store.Store
	disc   *discovery.Result
	logins [][]string // the challenged scopes of each login
}

func newFixture(t *testing.T, opts devserver.Options) *fixture {
	t.Helper()
	opts.AutoApprove = true
	srv, disc := devlogin.Start(t, opts)
	return &fixture{srv: srv, st: devlogin.FileStore(t), disc: disc}
}

// login is a LoginFunc: a real browser login at the dev server.
func (f *fixture) login(ctx context.Context, _ string, challenged []string) (Login, error) {
	f.logins = append(f.logins, challenged)
	scopes, err := (&login.Flow{}).Scopes(f.disc, challenged, nil)
	if err != nil {
		return Login{}, err
	}
	out := Login{Asked: scopes}
	res, err := devlogin.Login(ctx, f.st, f.disc, scopes)
	if err != nil {
		return out, err
	}
	out.Server, out.Subject, out.Token = res.Server, res.Subject, res.Token.AccessToken
	return out, nil
}

func (f *fixture) credentials(subject string, canLogin bool) *Credentials {
	c := &Credentials{Store: f.st, Server: f.disc.ServerURL, Endpoint: f.disc.Endpoint, Subject: subject,
		Source: func(u, sub string) *credential.Source {
			return &credential.Source{Store: f.st, HTTP: http.DefaultClient, Server: u, Subject: sub}
		}}
	if canLogin {
		c.Login = f.login
	}
	return c
}

func unauthorized() mcpclient.Refusal { return mcpclient.Refusal{Status: http.StatusUnauthorized} }

func forbidden(scope string) mcpclient.Refusal {
	return mcpclient.Refusal{Status: http.StatusForbidden, Challenge: wwwauth.Challenge{Error: "insufficient_scope", Scope: scope}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRenewRefreshesFirst(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	first, err := f.login(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := f.credentials(first.Subject, true)
	tok, err := c.Token(ctx(t))
	if err != nil || tok != first.Token {
		t.Fatalf("Token = %q, %v; want the stored one", tok, err)
	}
	before := f.srv.TokenRequests("refresh_token")
	renewed, err := c.Renew(ctx(t), tok, unauthorized())
	if err != nil || renewed == tok || renewed == "" {
		t.Fatalf("Renew = %q, %v; want a new token", renewed, err)
	}
	if f.srv.TokenRequests("refresh_token") != before+1 || len(f.logins) != 1 {
		t.Errorf("refreshes %d, logins %d: a 401 is answered with one refresh and no login", f.srv.TokenRequests("refresh_token")-before, len(f.logins)-1)
	}
}

func TestRenewWithoutLogin(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	c := f.credentials("", false)
	if tok, err := c.Token(ctx(t)); tok != "" || err != nil {
		t.Fatalf("Token before any login = %q, %v", tok, err)
	}
	_, err := c.Renew(ctx(t), "", unauthorized())
	var ln *LoginNeededError
	if !errors.As(err, &ln) || !errors.As(err, new(*mcpclient.UnauthorizedError)) {
		t.Fatalf("Renew without a login = %v, want LoginNeededError wrapping the 401", err)
	}
	if _, err := c.Renew(ctx(t), "", forbidden("notes.read")); !isStepUp(err, NoLogin) {
		t.Errorf("403 without a login = %v, want StepUpError NoLogin", err)
	}
}

func TestRenewLogsInWhenTheRefreshIsRefused(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	first, err := f.login(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.revokeRefreshToken(t, first.Subject)

	readOnly := f.credentials(first.Subject, false)
	if _, err := readOnly.Renew(ctx(t), first.Token, unauthorized()); !errors.As(err, new(*credential.LoginRequiredError)) {
		t.Fatalf("read-only Renew = %v, want LoginRequiredError", err)
	}
	if len(f.logins) != 1 {
		t.Fatalf("a read-only session logged in")
	}
	c := f.credentials(first.Subject, true)
	renewed, err := c.Renew(ctx(t), first.Token, unauthorized())
	if err != nil || renewed == "" || renewed == first.Token || len(f.logins) != 2 {
		t.Fatalf("Renew = %q, %v after %d logins; want one new login", renewed, err, len(f.logins)-1)
	}
}

// revokeRefreshToken replaces the account's stored refresh token by one
// the dev server refuses.
func (f *fixture) revokeRefreshToken(t *testing.T, subject string) {
	t.Helper()
	cfg, _ := store.LoadConfig(f.st.Dir)
	a := cfg.Servers[f.disc.ServerURL].Accounts[subject]
	tok, err := f.st.GetTokens(a.Storage, f.disc.ServerURL, subject)
	if err != nil {
		t.Fatal(err)
	}
	tok.RefreshToken = "revoked"
	if err := f.st.PutTokensIn(a.Storage, f.disc.ServerURL, subject, tok); err != nil {
		t.Fatal(err)
	}
}

func isStepUp(err error, r StepUpReason) bool {
	var e *StepUpError
	return errors.As(err, &e) && e.Reason == r
}

func TestStepUp(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	first, err := f.login(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := f.credentials(first.Subject, true)
	if _, err := c.Renew(ctx(t), first.Token, forbidden("")); !isStepUp(err, NoScopeNamed) {
		t.Errorf("403 naming no scope: %v", err)
	}
	if _, err := c.Renew(ctx(t), first.Token, forbidden("openid profile")); !isStepUp(err, AllGranted) {
		t.Errorf("403 for granted scopes: %v", err)
	}
	if len(f.logins) != 1 {
		t.Fatalf("%d step-up logins where none can help", len(f.logins)-1)
	}
	// A scope not granted (the stored grant is narrowed to make email
	// one): one login asking for the granted ones and it.
	if err := f.st.Update(ctx(t), func(cfg *store.Config) error {
		a := cfg.Servers[f.disc.ServerURL].Accounts[first.Subject]
		a.Scopes = slices.DeleteFunc(a.Scopes, func(s string) bool { return s == "email" })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Renew(ctx(t), first.Token, forbidden("email"))
	if err != nil || tok == "" || len(f.logins) != 2 {
		t.Fatalf("step-up: %q, %v after %d logins", tok, err, len(f.logins)-1)
	}
	if got := f.logins[len(f.logins)-1]; !slices.Contains(got, "email") || !slices.Contains(got, "openid") {
		t.Errorf("step-up asked for %q, want the granted scopes and email", got)
	}
}

func TestStepUpOnlyOnce(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	c := f.credentials("", true)
	// The server asks for a scope the dev IdP never grants (it is not in
	// its scopes): the first 403 leads to a login asking for it, the
	// second to none.
	if _, err := c.Renew(ctx(t), "", unauthorized()); err != nil {
		t.Fatal(err)
	}
	_, err := c.Renew(ctx(t), "t", forbidden("notes.read"))
	if !isStepUp(err, LoginRefused) || !errors.As(err, new(*mcpclient.InsufficientScopeError)) {
		t.Fatalf("first step-up: %v, want LoginRefused with the server's refusal", err)
	}
	n := len(f.logins)
	if _, err := c.Renew(ctx(t), "t", forbidden("notes.read")); !isStepUp(err, AskedAlready) {
		t.Errorf("second 403 for the same scope: %v, want AskedAlready", err)
	}
	if len(f.logins) != n {
		t.Errorf("logged in again for a scope already asked for")
	}
}

func TestLoginsAreBounded(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	c := f.credentials("", true)
	// A server that refuses every token, with refresh tokens that stop
	// working: each refusal needs a new login.
	var err error
	tok := ""
	for i := 0; i <= MaxLogins; i++ {
		var next string
		if next, err = c.Renew(ctx(t), tok, unauthorized()); err == nil {
			tok = next
			f.revokeRefreshToken(t, c.Subject)
		}
	}
	if !errors.As(err, new(*TooManyLoginsError)) || len(f.logins) != MaxLogins {
		t.Errorf("after %d logins: %v; want TooManyLoginsError after %d", len(f.logins), err, MaxLogins)
	}
}

func TestClientGoneGoesToRecover(t *testing.T) {
	// Generation 1: the IdP refreshes for the clients it knows only.
	f := newFixture(t, devserver.Options{Generation: 1})
	first, err := f.login(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The server forgets the client: its refresh is refused with
	// invalid_client. Rewriting the stored client id makes the dev server
	// answer so.
	if err := f.st.Update(ctx(t), func(cfg *store.Config) error {
		srv := cfg.Servers[f.disc.ServerURL]
		srv.Accounts[first.Subject].ClientID = "forgotten"
		srv.PutClient(store.Client{ID: "forgotten", Registered: true})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c := f.credentials(first.Subject, false)
	_, err = c.Renew(ctx(t), first.Token, unauthorized())
	var cg *credential.ClientGoneError
	if !errors.As(err, &cg) {
		t.Fatalf("Renew = %v, want ClientGoneError", err)
	}
	recovered := errors.New("recovered")
	c.Recover = func(_ context.Context, got *credential.ClientGoneError) error {
		if got.ClientID != "forgotten" {
			t.Errorf("Recover got %s", got.ClientID)
		}
		return recovered
	}
	if _, err := c.Renew(ctx(t), first.Token, unauthorized()); !errors.Is(err, recovered) {
		t.Errorf("Renew with Recover = %v", err)
	}
}

func TestTokenRenewedBeforeItExpires(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	first, err := f.login(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := f.credentials(first.Subject, false)
	withClock(c, &now)
	tok, err := c.Token(ctx(t))
	if err != nil || tok != first.Token {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	before := f.srv.TokenRequests("refresh_token")
	// Later in a long session, within a minute of the token's expiry: the
	// next request gets a new token without the server refusing the old.
	now = now.Add(2 * time.Hour)
	tok2, err := c.Token(ctx(t))
	if err != nil || tok2 == tok || f.srv.TokenRequests("refresh_token") != before+1 {
		t.Errorf("Token later = %q, %v, %d refreshes; want one refresh and a new token", tok2, err, f.srv.TokenRequests("refresh_token")-before)
	}
	// Back to the real time, at which the new token is fresh: it is kept.
	now = time.Now()
	if again, _ := c.Token(ctx(t)); again != tok2 || f.srv.TokenRequests("refresh_token") != before+1 {
		t.Errorf("the new token was not kept: %q, %d refreshes", again, f.srv.TokenRequests("refresh_token")-before)
	}
}

func TestOneLoginForSessionsStartingTogether(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	toks := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each session has its own Credentials, as separate proxy
			// processes would; the login lock is the store's file lock.
			c := f.credentials("", true)
			toks[i], errs[i] = c.Renew(ctx(t), "", unauthorized())
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] == "" {
			t.Fatalf("session %d: %q, %v", i, toks[i], errs[i])
		}
	}
	if len(f.logins) != 1 {
		t.Errorf("%d logins for %d sessions starting together, want 1", len(f.logins), n)
	}
}

// TestShortTokensAreNotRenewedPerRequest: a token that lives less than
// MinTTL is renewed once, then kept for most of its life; before, every
// request refreshed it.
func TestShortTokensAreNotRenewedPerRequest(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2, AccessTokenTTL: 20 * time.Second})
	first, err := f.login(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := f.credentials(first.Subject, false)
	before := f.srv.TokenRequests("refresh_token")
	var tok string
	for range 20 {
		next, err := c.Token(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" && next != tok {
			t.Fatal("the token changed from one request to the next")
		}
		tok = next
	}
	if n := f.srv.TokenRequests("refresh_token") - before; n > 1 {
		t.Errorf("%d refreshes for 20 requests with a 20 s token, want at most 1", n)
	}
	if m := c.margin(); m <= 0 || m > 5*time.Second {
		t.Errorf("margin %s for a 20 s token, want a quarter of its life", m)
	}
}

// withClock makes the credentials and their sources see *now.
func withClock(c *Credentials, now *time.Time) {
	c.Now = func() time.Time { return *now }
	src := c.Source
	c.Source = func(u, sub string) *credential.Source {
		s := src(u, sub)
		s.Now = func() time.Time { return *now }
		return s
	}
}

// TestNonRenewableTokenUsedUntilItExpires: a token without a refresh
// token is used until it really expires, not refused a minute before;
// then a session that may log in does, and one that may not says why.
func TestNonRenewableTokenUsedUntilItExpires(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	first, err := f.login(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := store.LoadConfig(f.st.Dir)
	a := cfg.Servers[f.disc.ServerURL].Accounts[first.Subject]
	stored, err := f.st.GetTokens(a.Storage, f.disc.ServerURL, first.Subject)
	if err != nil {
		t.Fatal(err)
	}
	stored.RefreshToken = ""
	if err := f.st.PutTokensIn(a.Storage, f.disc.ServerURL, first.Subject, stored); err != nil {
		t.Fatal(err)
	}
	// 30 s before its expiry: within MinTTL, and still good.
	now := stored.Expiry.Add(-30 * time.Second)
	for _, canLogin := range []bool{false, true} {
		c := f.credentials(first.Subject, canLogin)
		c.LoginAtExpiry = true
		withClock(c, &now)
		now = stored.Expiry.Add(-30 * time.Second)
		if tok, err := c.Token(ctx(t)); err != nil || tok != stored.AccessToken {
			t.Fatalf("Token 30 s before expiry = %q, %v; want the stored token", tok, err)
		}
		now = stored.Expiry.Add(time.Second)
		tok, err := c.Token(ctx(t))
		if !canLogin {
			var lr *credential.LoginRequiredError
			if !errors.As(err, &lr) || lr.Reason != credential.NoRefreshToken {
				t.Errorf("Token after expiry, no login = %q, %v; want LoginRequiredError NoRefreshToken", tok, err)
			}
			continue
		}
		if err != nil || tok == "" || tok == stored.AccessToken || len(f.logins) != 2 {
			t.Errorf("Token after expiry = %q, %v after %d logins; want a new login's token", tok, err, len(f.logins)-1)
		}
	}
}

// TestNonRenewableTokenNotReloadedPerRequest: once a token that cannot
// be renewed is taken for its last minute, the requests of that minute
// use it without reading the store again (before, each read the account
// and its tokens three times, under the store lock).
func TestNonRenewableTokenNotReloadedPerRequest(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	first, err := f.login(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := store.LoadConfig(f.st.Dir)
	a := cfg.Servers[f.disc.ServerURL].Accounts[first.Subject]
	stored, err := f.st.GetTokens(a.Storage, f.disc.ServerURL, first.Subject)
	if err != nil {
		t.Fatal(err)
	}
	stored.RefreshToken = ""
	if err := f.st.PutTokensIn(a.Storage, f.disc.ServerURL, first.Subject, stored); err != nil {
		t.Fatal(err)
	}
	c := f.credentials(first.Subject, false)
	now := time.Now()
	withClock(c, &now)
	sources := 0
	src := c.Source
	c.Source = func(u, sub string) *credential.Source { sources++; return src(u, sub) }
	if tok, err := c.Token(ctx(t)); err != nil || tok != stored.AccessToken {
		t.Fatalf("Token = %q, %v; want the stored token", tok, err)
	}
	for i := range 5 {
		now = stored.Expiry.Add(time.Duration(-50+10*i) * time.Second)
		if tok, err := c.Token(ctx(t)); err != nil || tok != stored.AccessToken {
			t.Fatalf("Token %d s before expiry = %q, %v; want the stored token", 50-10*i, tok, err)
		}
	}
	if sources != 2 {
		t.Errorf("%d reads of the account for a request, then 5 in the token's last minute; want 2", sources)
	}
	now = stored.Expiry.Add(time.Second)
	var lr *credential.LoginRequiredError
	if _, err := c.Token(ctx(t)); !errors.As(err, &lr) || lr.Reason != credential.NoRefreshToken {
		t.Errorf("Token after expiry = %v; want LoginRequiredError NoRefreshToken", err)
	}
}

// TestClientGoneReplacedThenLogin: a client the authorization server
// forgot is replaced (Recover), and the session logs in with the new
// one, once; forgotten again, it gives up.
func TestClientGoneReplacedThenLogin(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 1})
	first, err := f.login(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	forget := func() {
		t.Helper()
		if err := f.st.Update(ctx(t), func(cfg *store.Config) error {
			srv := cfg.Servers[f.disc.ServerURL]
			srv.Accounts[first.Subject].ClientID = "forgotten"
			srv.PutClient(store.Client{ID: "forgotten", Registered: true})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	forget()
	c := f.credentials(first.Subject, true)
	recovered := 0
	c.Recover = func(context.Context, *credential.ClientGoneError) error { recovered++; return nil }
	tok, err := c.Renew(ctx(t), first.Token, unauthorized())
	if err != nil || tok == "" || tok == first.Token || recovered != 1 || len(f.logins) != 2 {
		t.Fatalf("Renew = %q, %v, %d recoveries, %d logins; want one recovery and a login", tok, err, recovered, len(f.logins)-1)
	}
	forget()
	_, err = c.Renew(ctx(t), tok, unauthorized())
	if !errors.As(err, new(*credential.ClientGoneError)) || recovered != 1 {
		t.Errorf("forgotten again: %v, %d recoveries; want ClientGoneError and no second recovery", err, recovered)
	}
}

// TestFailedLoginsSaySo: logins that all failed are reported as failed,
// with the last one's error, not as a server that refuses what it got.
func TestFailedLoginsSaySo(t *testing.T) {
	f := newFixture(t, devserver.Options{Generation: 2})
	c := f.credentials("", true)
	failure := errors.New("the token endpoint answered invalid_client")
	c.Login = func(context.Context, string, []string) (Login, error) { return Login{}, failure }
	var err error
	for range MaxLogins + 1 {
		_, err = c.Renew(ctx(t), "", unauthorized())
	}
	var tm *TooManyLoginsError
	if !errors.As(err, &tm) || !tm.AllFailed() || !errors.Is(err, failure) {
		t.Fatalf("after %d failed logins: %v; want TooManyLoginsError, all failed, with the last failure", MaxLogins, err)
	}
	if want := "3 logins failed, the last: " + failure.Error(); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q, want it to say %q", err, want)
	}
}
