package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// TestTokenDPoPBound: 'ncmcp token' and 'token --headers' refuse a
// DPoP-bound token (a bare bearer cannot use it) with a usage error and
// nothing on stdout; 'token --json' gives it with its binding. The token
// is valid: no request is made.
func TestTokenDPoPBound(t *testing.T) {
	dir := t.TempDir()
	const server = "https://mcp.example.com"
	k, _ := oauth.NewDPoPKey("ES256")
	key, _ := k.Marshal()
	st := store.New(dir, store.ModeFile, nil, time.Second)
	_, err := st.SaveLogin(context.Background(), &store.Login{
		Server:  store.Server{URL: server, Generation: 2, Issuer: server, TokenEndpoint: server + "/token"},
		Account: store.Account{Subject: "alice", ClientID: "c", Scopes: []string{"mcp"}},
		Tokens:  store.Tokens{AccessToken: "bound-token", TokenType: "DPoP", RefreshToken: "r", Expiry: time.Now().Add(time.Hour), DPoPKey: key},
		Client:  store.Client{ID: "c"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"token"}, {"token", "--headers"}} {
		code, out, errs := runIn(t, dir, args...)
		if code != ExitUsage || out != "" || !strings.Contains(errs, "DPoP-bound") || strings.Contains(errs, "bound-token") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, a message, no token", args, code, out, errs, ExitUsage)
		}
	}
	code, out, errs := runIn(t, dir, "token", "--json")
	if code != ExitOK {
		t.Fatalf("token --json: exit %d: %s", code, errs)
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	if j["access_token"] != "bound-token" || j["token_type"] != "DPoP" || j["dpop_bound"] != true || j["jkt"] != k.Thumbprint() {
		t.Errorf("token --json = %s", out)
	}
	if strings.Contains(out, key) {
		t.Error("token --json prints the private key")
	}
}
