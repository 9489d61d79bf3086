package login_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver/devlogin"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
	"golang.org/x/oauth2"
)

// TestWorkloadStoresTheFileWithTheLogin: a workload login without a
// client stores the account with its JWT's file and no client, all in
// the login's one save (Complete), so that no one sees a workload account
// without its file.
func TestWorkloadStoresTheFileWithTheLogin(t *testing.T) {
	var grants []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		grants = append(grants, r.PostForm.Get("grant_type"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "wl-token", "token_type": "Bearer", "expires_in": 600})
	}))
	defer ts.Close()
	disc := &discovery.Result{ServerURL: ts.URL, Endpoint: ts.URL + "/mcp", Issuer: ts.URL, Generation: discovery.GenerationOther,
		Provider: discovery.Provider{Issuer: ts.URL, TokenEndpoint: ts.URL + "/token"}}
	f := &login.Flow{Store: devlogin.FileStore(t), HTTP: http.DefaultClient, Now: func() time.Time { return clock }}
	file := "/run/secrets/workload-token"
	res, err := f.Workload(context.Background(), disc, oauth.Client{}, "", login.WorkloadJWT{Assertion: "a.b.c", File: file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(grants) != 1 {
		t.Errorf("token requests %q", grants)
	}
	acct, tok := account(t, f, ts.URL, res.Subject)
	if acct.Grant != store.GrantWorkloadIdentity || acct.AssertionFile != file || acct.ClientID != "" || tok.AccessToken != "wl-token" {
		t.Errorf("stored %+v, token %q", acct, tok.AccessToken)
	}
	cfg, err := store.LoadConfig(f.Store.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Servers[ts.URL].Clients); n != 0 {
		t.Errorf("%d clients stored for a login without a client: %+v", n, cfg.Servers[ts.URL].Clients)
	}

	// The one save stores it all.
	rec := &login.Record{Client: oauth.Client{}, Identity: &oauth.Identity{Subject: "bot"}, Token: &oauth2.Token{AccessToken: "wl-token-2", TokenType: "Bearer", Expiry: clock.Add(time.Hour)}, Grant: store.GrantWorkloadIdentity, AssertionFile: file}
	if _, err := f.Complete(context.Background(), disc, rec); err != nil {
		t.Fatal(err)
	}
	acct, _ = account(t, f, ts.URL, "bot")
	cfg, _ = store.LoadConfig(f.Store.Dir)
	if acct.AssertionFile != file || len(cfg.Servers[ts.URL].Clients) != 0 {
		t.Errorf("Complete stored %+v, clients %+v", acct, cfg.Servers[ts.URL].Clients)
	}
}
