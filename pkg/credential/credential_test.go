package credential

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/store"
)

// tokenEndpoint is an authorization server's token endpoint over real
// HTTP: it counts the requests and answers with what answer returns.
type tokenEndpoint struct {
	srv    *httptest.Server
	mu     sync.Mutex
	n      int
	forms  []map[string]string
	answer func(n int, form map[string]string) (int, string)
}

func newEndpoint(t *testing.T, answer func(n int, form map[string]string) (int, string)) *tokenEndpoint {
	e := &tokenEndpoint{answer: answer}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form := map[string]string{}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		if id, secret, ok := r.BasicAuth(); ok {
			form["basic"] = id + ":" + secret
		}
		e.mu.Lock()
		e.n++
		n := e.n
		e.forms = append(e.forms, form)
		e.mu.Unlock()
		status, body := e.answer(n, form)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

// rotating issues access token atN and refresh token rtN for request N.
func rotating(n int, _ map[string]string) (int, string) {
	return 200, fmt.Sprintf(`{"access_token":"at%d","token_type":"bearer","expires_in":3600,"refresh_token":"rt%d","scope":"openid notes.read"}`, n, n)
}

const server = "https://mcp.example.com"

// setup stores one account of server with the given tokens, in a file
// store under a temporary directory, and returns its source.
func setup(t *testing.T, e *tokenEndpoint, acct store.Account, tok store.Tokens, clients ...store.Client) *Source {
	t.Helper()
	st := store.New(filepath.Join(t.TempDir(), "config"), store.ModeFile, nil, time.Second)
	backend, _, err := st.PutTokens(server, acct.Subject, &tok)
	if err != nil {
		t.Fatal(err)
	}
	acct.Storage = backend
	cfg := &store.Config{Servers: map[string]*store.Server{server: {
		URL: server, Generation: 2, TokenEndpoint: e.srv.URL, Resource: server + "/mcp",
		Accounts: map[string]*store.Account{acct.Subject: &acct}, Clients: clients,
	}}}
	if err := store.SaveConfig(st.Dir, cfg); err != nil {
		t.Fatal(err)
	}
	return &Source{Store: st, HTTP: e.srv.Client(), Server: server, Subject: acct.Subject}
}

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func TestValidTokenNeedsNoRequest(t *testing.T) {
	e := newEndpoint(t, rotating)
	s := setup(t, e, store.Account{Subject: "alice", ClientID: "c"}, store.Tokens{AccessToken: "at0", RefreshToken: "rt0", Expiry: now.Add(time.Hour)})
	s.Now = func() time.Time { return now }
	tok, err := s.Token(context.Background(), time.Minute)
	if err != nil || tok.AccessToken != "at0" || e.requests() != 0 {
		t.Fatalf("%+v, %v, %d requests", tok, err, e.requests())
	}
	// The injected clock decides: an hour later the token is due.
	s.Now = func() time.Time { return now.Add(time.Hour) }
	tok, err = s.Token(context.Background(), time.Minute)
	if err != nil || tok.AccessToken != "at1" || e.requests() != 1 {
		t.Fatalf("%+v, %v, %d requests", tok, err, e.requests())
	}
}

// TestRefreshStoresWhatRotated: the new refresh token and expiry are stored
// before the token is returned; the request carries the resource indicator.
func TestRefreshStoresWhatRotated(t *testing.T) {
	e := newEndpoint(t, rotating)
	s := setup(t, e, store.Account{Subject: "alice", ClientID: "c"}, store.Tokens{AccessToken: "at0", RefreshToken: "rt0", Expiry: time.Now().Add(-time.Hour)})
	tok, err := s.Token(context.Background(), time.Minute)
	if err != nil || tok.AccessToken != "at1" || tok.Scopes[1] != "notes.read" {
		t.Fatalf("%+v, %v", tok, err)
	}
	if f := e.forms[0]; f["refresh_token"] != "rt0" || f["resource"] != server+"/mcp" || f["client_id"] != "c" {
		t.Fatalf("refresh request %v", f)
	}
	stored, _ := s.Store.GetTokens(store.BackendFile, server, "alice")
	cfg, _ := store.LoadConfig(s.Store.Dir)
	if stored.RefreshToken != "rt1" || stored.AccessToken != "at1" || cfg.Servers[server].Accounts["alice"].AccessTokenExpiry.IsZero() {
		t.Fatalf("stored %+v", stored)
	}
}

// TestOneRefreshForManyCallers: callers that find the token expired at the
// same time make one request; the others use what it stored.
func TestOneRefreshForManyCallers(t *testing.T) {
	e := newEndpoint(t, func(n int, f map[string]string) (int, string) {
		time.Sleep(50 * time.Millisecond) // every caller is waiting by now
		return rotating(n, f)
	})
	s := setup(t, e, store.Account{Subject: "alice", ClientID: "c"}, store.Tokens{AccessToken: "at0", RefreshToken: "rt0", Expiry: time.Now().Add(-time.Hour)})
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *s // each caller its own source, as separate processes
			if tok, err := c.Token(context.Background(), time.Minute); err == nil {
				got[i] = tok.AccessToken
			}
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != "at1" {
			t.Fatalf("tokens %v", got)
		}
	}
	if e.requests() != 1 {
		t.Fatalf("%d refreshes, want 1", e.requests())
	}
}

// TestRefusedToken: a token the server refused is replaced even while it
// looks valid, unless another process stored a new one meanwhile.
func TestRefusedToken(t *testing.T) {
	e := newEndpoint(t, rotating)
	s := setup(t, e, store.Account{Subject: "alice", ClientID: "c"}, store.Tokens{AccessToken: "at0", RefreshToken: "rt0", Expiry: time.Now().Add(time.Hour)})
	tok, err := s.Refresh(context.Background(), time.Minute, "at0")
	if err != nil || tok.AccessToken != "at1" {
		t.Fatalf("%+v, %v", tok, err)
	}
	tok, err = s.Refresh(context.Background(), time.Minute, "an-older-token")
	if err != nil || tok.AccessToken != "at1" || e.requests() != 1 {
		t.Fatalf("%+v, %v, %d requests", tok, err, e.requests())
	}
}

// TestRefusals: the authorization server's refusals become typed errors,
// and nothing stored changes.
func TestRefusals(t *testing.T) {
	for _, tt := range []struct {
		body  string
		check func(error) bool
	}{
		{`{"error":"invalid_grant","error_description":"Token refresh failed"}`, func(err error) bool {
			var lr *LoginRequiredError
			return errors.As(err, &lr) && lr.Reason == RefreshRefused && lr.Generation == 2
		}},
		{`{"error":"invalid_client","error_description":"Unknown client_id"}`, func(err error) bool {
			var cg *ClientGoneError
			return errors.As(err, &cg) && cg.ClientID == "c"
		}},
	} {
		e := newEndpoint(t, func(int, map[string]string) (int, string) { return 400, tt.body })
		s := setup(t, e, store.Account{Subject: "alice", ClientID: "c"}, store.Tokens{AccessToken: "at0", RefreshToken: "rt0", Expiry: time.Now().Add(-time.Hour)})
		_, err := s.Token(context.Background(), time.Minute)
		if !tt.check(err) {
			t.Errorf("%s: %v (%T)", tt.body, err, err)
		}
		if stored, _ := s.Store.GetTokens(store.BackendFile, server, "alice"); stored.RefreshToken != "rt0" {
			t.Errorf("%s: stored %+v", tt.body, stored)
		}
	}
	e := newEndpoint(t, rotating)
	s := setup(t, e, store.Account{Subject: "alice", ClientID: "c"}, store.Tokens{AccessToken: "at0", Expiry: time.Now().Add(-time.Hour)})
	var lr *LoginRequiredError
	if _, err := s.Token(context.Background(), time.Minute); !errors.As(err, &lr) || lr.Reason != NoRefreshToken || e.requests() != 0 {
		t.Fatalf("no refresh token: %v", err)
	}
	s.Subject = "bob"
	if _, err := s.Token(context.Background(), time.Minute); !errors.As(err, &lr) || lr.Reason != LoggedOut {
		t.Fatalf("logged out: %v", err)
	}
}

// TestClientCredentialsRenewal: a client-credentials login gets its next
// token with the stored client secret, as its registration says.
func TestClientCredentialsRenewal(t *testing.T) {
	e := newEndpoint(t, rotating)
	acct := store.Account{Subject: "client:ci", ClientID: "ci", Grant: store.GrantClientCredentials, Scopes: []string{"mcp:read"}}
	s := setup(t, e, acct, store.Tokens{AccessToken: "at0", Expiry: time.Now().Add(-time.Hour)})
	backend, _, err := s.Store.Put(store.ClientSecretKey(server, "ci"), "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := store.LoadConfig(s.Store.Dir)
	cfg.Servers[server].PutClient(store.Client{ID: "ci", Confidential: true, SecretStorage: backend, AuthMethod: "client_secret_basic"})
	if err := store.SaveConfig(s.Store.Dir, cfg); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Token(context.Background(), time.Minute)
	if err != nil || tok.AccessToken != "at1" {
		t.Fatalf("%+v, %v", tok, err)
	}
	if f := e.forms[0]; f["grant_type"] != "client_credentials" || f["basic"] != "ci:s3cret" || f["scope"] != "mcp:read" || f["resource"] != server+"/mcp" {
		t.Fatalf("request %v", f)
	}
	// With NCMCP_CLIENT_SECRET's value given, that one is used.
	s.ClientSecret = "rotated"
	if _, err := s.Refresh(context.Background(), time.Minute, "at1"); err != nil || e.forms[1]["basic"] != "ci:rotated" {
		t.Fatalf("%v, %v", err, e.forms[1])
	}
}
