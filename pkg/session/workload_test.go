package session

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// TestWorkloadNeverFallsBackToALogin: when the authorization server
// refuses the workload's JWT, a session that may log in still does not (a
// browser login would be another grant for another identity): the
// refusal is the answer. A 403 gets no step-up either, and a token that
// cannot be renewed no login at its expiry.
func TestWorkloadNeverFallsBackToALogin(t *testing.T) {
	requests := 0
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"JWT expired"}`))
	}))
	t.Cleanup(as.Close)
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	enc := base64.RawURLEncoding.EncodeToString
	if err := os.WriteFile(file, []byte(enc([]byte(`{"alg":"RS256"}`))+"."+enc([]byte(`{"sub":"w"}`))+".c2ln"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := store.New(filepath.Join(dir, "config"), store.ModeFile, nil, time.Second)
	const srvURL = "https://mcp.example.com"
	backend, _, err := st.PutTokens(srvURL, "w", &store.Tokens{AccessToken: "at0", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &store.Config{Servers: map[string]*store.Server{srvURL: {URL: srvURL, TokenEndpoint: as.URL, Generation: 2,
		Accounts: map[string]*store.Account{"w": {Subject: "w", Storage: backend, Grant: store.GrantWorkloadIdentity, AssertionFile: file}}}}}
	if err := store.SaveConfig(st.Dir, cfg); err != nil {
		t.Fatal(err)
	}
	logins := 0
	c := &Credentials{Store: st, Server: srvURL, Endpoint: srvURL + "/mcp", Subject: "w", LoginAtExpiry: true,
		Source: func(u, sub string) *credential.Source {
			return &credential.Source{Store: st, HTTP: as.Client(), Server: u, Subject: sub}
		},
		Login: func(context.Context, string, []string) (Login, error) {
			logins++
			return Login{}, errors.New("no browser here")
		}}
	tok, err := c.Token(context.Background())
	if err != nil || tok != "at0" {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	_, err = c.Renew(context.Background(), tok, unauthorized())
	var lr *credential.LoginRequiredError
	if !errors.As(err, &lr) || lr.Reason != credential.AssertionRefused {
		t.Fatalf("Renew = %v, want the authorization server's refusal of the JWT", err)
	}
	if _, err := c.Renew(context.Background(), tok, forbidden("notes.read")); !isStepUp(err, NoLogin) {
		t.Errorf("403 = %v, want StepUpError NoLogin", err)
	}
	// The same account with its JWT from stdin, once the token expired.
	cfg.Servers[srvURL].Accounts["w"].AssertionFile = ""
	if err := store.SaveConfig(st.Dir, cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutTokens(srvURL, "w", &store.Tokens{AccessToken: "at0", Expiry: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	c.token = ""
	if _, err := c.Token(context.Background()); !errors.As(err, &lr) || lr.Reason != credential.AssertionFromStdin {
		t.Errorf("Token after expiry = %v, want AssertionFromStdin", err)
	}
	if logins != 0 || requests != 1 {
		t.Errorf("%d logins and %d token requests, want none and one", logins, requests)
	}
}
