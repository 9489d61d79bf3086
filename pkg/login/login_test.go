package login_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/clients"
	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/devserver/devlogin"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

var clock = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// setup starts a dev server and returns a flow on a fresh file store, with
// a fixed clock and the notices it gave.
func setup(t *testing.T, opts devserver.Options) (*login.Flow, *discovery.Result, *devserver.Server, *[]string) {
	t.Helper()
	srv, disc := devlogin.Start(t, opts)
	notices := &[]string{}
	st := devlogin.FileStore(t)
	f := &login.Flow{Store: st, HTTP: http.DefaultClient, Now: func() time.Time { return clock },
		Notice:  func(s string) { *notices = append(*notices, s) },
		Clients: &clients.Manager{Store: st, HTTP: http.DefaultClient}}
	return f, disc, srv, notices
}

// browse opens the attempt's start page as a browser would; the dev IdP
// approves (or refuses) at once.
func browse(_ *testing.T, a *login.Attempt) { devlogin.Browse(a.StartURL) }

func account(t *testing.T, f *login.Flow, serverURL, subject string) (*store.Account, *store.Tokens) {
	t.Helper()
	cfg, err := store.LoadConfig(f.Store.Dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.Servers[serverURL]
	if srv == nil || srv.Accounts[subject] == nil {
		t.Fatalf("no account %s on %s stored", subject, serverURL)
	}
	a := srv.Accounts[subject]
	tok, err := f.Store.GetTokens(a.Storage, serverURL, subject)
	if err != nil {
		t.Fatal(err)
	}
	return a, tok
}

func TestBrowserLoginStoresTheAccount(t *testing.T) {
	for _, gen := range []int{1, 2} {
		t.Run("generation "+string(rune('0'+gen)), func(t *testing.T) {
			f, disc, _, _ := setup(t, devserver.Options{AutoApprove: true, Generation: gen})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := f.Pick(ctx, disc, login.ClientRequest{ID: devserver.PublicClientID})
			if err != nil {
				t.Fatal(err)
			}
			scopes, err := f.Scopes(disc, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			a, err := f.Start(login.Browser{Disc: disc, Client: c.Client, Scopes: scopes})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			browse(t, a)
			res, err := a.Wait(ctx, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Subject == "" || res.Token.AccessToken == "" || res.Generation != gen || res.ClientID != devserver.PublicClientID {
				t.Fatalf("result %+v", res)
			}
			acct, tok := account(t, f, disc.ServerURL, res.Subject)
			if tok.AccessToken != res.Token.AccessToken || tok.RefreshToken == "" {
				t.Errorf("stored tokens differ from the login's, or no refresh token")
			}
			if !acct.LoggedInAt.Equal(clock) || acct.ClientID != devserver.PublicClientID || !acct.HasRefreshToken {
				t.Errorf("stored account %+v", acct)
			}
		})
	}
}

func TestBrowserLoginRefused(t *testing.T) {
	f, disc, _, _ := setup(t, devserver.Options{AutoDeny: true, Generation: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := f.Start(login.Browser{Disc: disc, Client: oauth.Client{ID: devserver.PublicClientID}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	browse(t, a)
	_, err = a.Wait(ctx, nil, nil)
	var ae *loopback.AuthError
	if !errors.As(err, &ae) || ae.Code != "access_denied" {
		t.Fatalf("err = %v, want access_denied", err)
	}
	cfg, _ := store.LoadConfig(f.Store.Dir)
	if len(cfg.Servers) != 0 {
		t.Errorf("stored %v after a refused login", cfg.ServerURLs())
	}

	noPKCE := *disc
	noPKCE.Provider.CodeChallengeMethodsSupported = nil
	if _, err := f.Start(login.Browser{Disc: &noPKCE, Client: oauth.Client{ID: "x"}}); !errors.As(err, new(*login.NoPKCEError)) {
		t.Errorf("without S256: %v, want login.NoPKCEError", err)
	}
}

// recorder is a transport that notes the URL of every request ncmcp makes.
type recorder struct {
	mu   sync.Mutex
	urls []*url.URL
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// made returns the requests made to the endpoint of u (query aside).
func (r *recorder) made(u string) []string {
	want, _ := url.Parse(u)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, got := range r.urls {
		if got.Scheme == want.Scheme && got.Host == want.Host && got.Path == want.Path {
			out = append(out, got.String())
		}
	}
	return out
}

// TestBrowserMakesTheAuthorizationRequest: the start page redirects the
// browser to the authorization request exactly as printed, and the login
// completes without ncmcp ever requesting the authorization endpoint.
func TestBrowserMakesTheAuthorizationRequest(t *testing.T) {
	for _, gen := range []int{1, 2} {
		t.Run(fmt.Sprintf("generation %d", gen), func(t *testing.T) {
			f, disc, _, _ := setup(t, devserver.Options{AutoApprove: true, Generation: gen})
			rec := &recorder{}
			f.HTTP = &http.Client{Transport: rec}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			a, err := f.Start(login.Browser{Disc: disc, Client: oauth.Client{ID: devserver.PublicClientID}})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			type outcome struct {
				res *login.Result
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				res, err := a.Wait(ctx, nil, nil)
				done <- outcome{res, err}
			}()
			resp, err := noFollow.Get(a.StartURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != a.AuthURL {
				t.Fatalf("start page: %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), a.AuthURL)
			}
			devlogin.Browse(a.AuthURL)
			if o := <-done; o.err != nil || o.res.Token.AccessToken == "" {
				t.Fatalf("Wait = %+v, %v", o.res, o.err)
			}
			if got := rec.made(a.AuthURL); len(got) > 0 {
				t.Errorf("ncmcp requested the authorization endpoint: %q", got)
			}
		})
	}
}

// TestRefusalInTheBrowserKeepsWaiting: a refusal the authorization server
// shows in the browser (here an unknown client, which must not be
// redirected back) never reaches ncmcp: the wait goes on until its
// context ends, and nothing is stored.
func TestRefusalInTheBrowserKeepsWaiting(t *testing.T) {
	f, disc, _, _ := setup(t, devserver.Options{Generation: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := f.Start(login.Browser{Disc: disc, Client: oauth.Client{ID: "nobody-knows-me"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	done := make(chan error, 1)
	go func() {
		_, err := a.Wait(ctx, nil, nil)
		done <- err
	}()
	resp, err := http.Get(a.StartURL) // follows the start page's redirect
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Request.URL.String() != a.AuthURL {
		t.Fatalf("the browser ended on %d %s, want the authorization endpoint's 401", resp.StatusCode, resp.Request.URL)
	}
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v while the browser showed the refusal", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want the context's end", err)
	}
	if cfg, _ := store.LoadConfig(f.Store.Dir); len(cfg.Servers) != 0 {
		t.Errorf("stored %v", cfg.ServerURLs())
	}
}

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestPick(t *testing.T) {
	f, disc, _, notices := setup(t, devserver.Options{Generation: 1})
	ctx := context.Background()

	// None stored, the OP registers: one is registered and kept.
	c, err := f.Pick(ctx, disc, login.ClientRequest{})
	if err != nil || c.Registered == nil || c.Port == 0 || len(*notices) != 1 {
		t.Fatalf("Pick = %+v, %v, notices %q: want a client registered now, with its port", c, err, *notices)
	}
	again, err := f.Pick(ctx, disc, login.ClientRequest{})
	if err != nil || again.ID != c.ID || again.Registered != nil {
		t.Errorf("second Pick = %+v, %v: want the stored client %s", again, err, c.ID)
	}
	// A metadata document URL is not used where the server does not take one.
	if c, err := f.Pick(ctx, disc, login.ClientRequest{MetadataURL: "https://app.example/cimd.json"}); err != nil || c.ID == "https://app.example/cimd.json" {
		t.Errorf("Pick with an unsupported metadata URL = %+v, %v", c, err)
	}
	cimd := *disc
	cimd.Provider.ClientIDMetadataDocumentSupported = true
	if c, err := f.Pick(ctx, &cimd, login.ClientRequest{MetadataURL: "https://app.example/cimd.json"}); err != nil || c.ID != "https://app.example/cimd.json" || c.AuthMethod != "none" {
		t.Errorf("Pick with a metadata URL = %+v, %v", c, err)
	}

	// A stored confidential client brings its secret; an expired one is refused.
	if _, _, err := f.Clients.Add(ctx, disc.ServerURL, store.Client{ID: "conf"}, "s3cret"); err != nil {
		t.Fatal(err)
	}
	if c, err := f.Pick(ctx, disc, login.ClientRequest{ID: "conf"}); err != nil || c.Secret != "s3cret" {
		t.Errorf("Pick(conf) = %+v, %v: want the stored secret", c, err)
	}
	if c, err := f.Pick(ctx, disc, login.ClientRequest{ID: "conf", Secret: "given"}); err != nil || c.Secret != "given" {
		t.Errorf("Pick with a secret given = %+v, %v", c, err)
	}
	if _, _, err := f.Clients.Add(ctx, disc.ServerURL, store.Client{ID: "old", SecretExpiresAt: clock.Add(-time.Hour)}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Pick(ctx, disc, login.ClientRequest{ID: "old"}); !errors.As(err, new(*login.SecretExpiredError)) {
		t.Errorf("Pick(old) = %v, want login.SecretExpiredError by the flow's clock", err)
	}

	bare := *disc
	bare.ServerURL = "https://elsewhere.example"
	bare.Provider.RegistrationEndpoint = ""
	if _, err := f.Pick(ctx, &bare, login.ClientRequest{}); !errors.As(err, new(*login.NoClientError)) {
		t.Errorf("Pick without registration = %v, want login.NoClientError", err)
	}
}

func TestScopes(t *testing.T) {
	f, disc, _, notices := setup(t, devserver.Options{Generation: 2})
	disc.Provider.ScopesSupported = append(disc.Provider.ScopesSupported, "notes.read")
	scopes, err := f.Scopes(disc, nil, []string{"NOTES.READ"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(scopes, "notes.read") || !slices.Contains(scopes, "openid") || len(*notices) != 1 {
		t.Errorf("scopes %q, notices %q: want the server's scopes plus notes.read as it spells it", scopes, *notices)
	}
	gen1 := *disc
	gen1.Generation = discovery.Generation1
	if _, err := f.Scopes(&gen1, nil, []string{"notes.read"}); !errors.Is(err, login.ErrScopesFixed) {
		t.Errorf("generation 1 with scopes: %v", err)
	}
	if s, err := f.Scopes(&gen1, []string{"openid"}, nil); err != nil || s != nil {
		t.Errorf("generation 1: %q, %v; want no scopes", s, err)
	}
}

func TestRefreshTokens(t *testing.T) {
	f, disc, _, _ := setup(t, devserver.Options{AutoApprove: true, Generation: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := f.Start(login.Browser{Disc: disc, Client: oauth.Client{ID: devserver.PublicClientID}})
	if err != nil {
		t.Fatal(err)
	}
	browse(t, a)
	first, err := a.Wait(ctx, nil, nil)
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	client := oauth.Client{ID: devserver.PublicClientID}

	// A refresh token given on stdin: a fresh store gets the account.
	other := &login.Flow{Store: devlogin.FileStore(t), HTTP: http.DefaultClient}
	res, err := other.RefreshToken(ctx, disc, client, first.Token.RefreshToken)
	if err != nil || res.Subject != first.Subject {
		t.Fatalf("RefreshToken = %+v, %v", res, err)
	}

	// NCMCP_REFRESH_TOKEN without keeping: nothing is stored.
	ci := &login.Flow{Store: devlogin.FileStore(t), HTTP: http.DefaultClient}
	tok, kept, err := ci.EnvRefreshToken(ctx, disc, client, res.Token.RefreshToken, false)
	if err != nil || tok.AccessToken == "" || kept != nil {
		t.Fatalf("EnvRefreshToken = %v, %+v, %v", tok, kept, err)
	}
	if cfg, _ := store.LoadConfig(ci.Store.Dir); len(cfg.Servers) != 0 {
		t.Error("stored without keep")
	}
	// With keep, the login is marked with the variable's hash.
	tok2, kept, err := ci.EnvRefreshToken(ctx, disc, client, tok.RefreshToken, true)
	if err != nil || kept == nil {
		t.Fatalf("EnvRefreshToken(keep) = %v, %+v, %v", tok2, kept, err)
	}
	acct, _ := account(t, ci, disc.ServerURL, kept.Subject)
	if acct.EnvRefreshTokenHash != login.EnvRefreshTokenHash(tok.RefreshToken) || acct.EnvRefreshTokenHash == "" {
		t.Errorf("stored hash %q", acct.EnvRefreshTokenHash)
	}
	// An unknown token is refused, and the refusal names the party.
	_, _, err = ci.EnvRefreshToken(ctx, disc, client, "not-a-refresh-token", false)
	var ge *login.GrantError
	var te *oauth.TokenError
	if !errors.As(err, &ge) || ge.Party != login.AuthorizationServer || !errors.As(err, &te) || !te.Refused() {
		t.Errorf("a spent refresh token: %v, want the authorization server's refusal", err)
	}
}

// TestClientCredentials runs the grant against a token endpoint of
// httptest: the dev server's OP does not offer it.
func TestClientCredentials(t *testing.T) {
	var form []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = append(form, r.PostForm.Get("grant_type"), r.PostForm.Get("scope"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "cc-token", "token_type": "Bearer", "expires_in": 600})
	}))
	defer ts.Close()
	disc := &discovery.Result{ServerURL: ts.URL, Endpoint: ts.URL + "/mcp", Issuer: ts.URL, Generation: discovery.GenerationOther,
		Provider: discovery.Provider{Issuer: ts.URL, TokenEndpoint: ts.URL + "/token"}}
	f := &login.Flow{Store: devlogin.FileStore(t), HTTP: http.DefaultClient, Now: func() time.Time { return clock }}
	res, err := f.ClientCredentials(context.Background(), disc, oauth.Client{ID: "ci-bot", Secret: "s"}, []string{"mcp"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(form, []string{"client_credentials", "mcp"}) {
		t.Errorf("token request %q", form)
	}
	acct, tok := account(t, f, ts.URL, res.Subject)
	if res.Subject != store.UnknownSubject("ci-bot") || acct.Grant != store.GrantClientCredentials || tok.AccessToken != "cc-token" || !slices.Equal(acct.Scopes, []string{"mcp"}) {
		t.Errorf("stored %+v, token %q", acct, tok.AccessToken)
	}
	cfg, _ := store.LoadConfig(f.Store.Dir)
	c := cfg.Servers[ts.URL].Client("ci-bot")
	if s, err := f.Store.ClientSecret(ts.URL, c); err != nil || s != "s" {
		t.Errorf("the client's secret was not kept for renewals: %q, %v", s, err)
	}
}
