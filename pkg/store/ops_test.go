package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func testLogin(subject string) *Login {
	return &Login{
		Server:       Server{URL: "https://mcp.example.com", Generation: 2, Issuer: "https://mcp.example.com", TokenEndpoint: "https://mcp.example.com/oauth/token"},
		Account:      Account{Subject: subject, ClientID: "c1", Scopes: []string{"openid"}},
		Tokens:       Tokens{AccessToken: "at-" + subject, RefreshToken: "rt-" + subject},
		Client:       Client{ID: "c1", AuthMethod: "client_secret_post"},
		ClientSecret: "secret",
	}
}

func TestSaveLogin(t *testing.T) {
	kr := &fakeKeyring{items: map[string]string{}}
	s := New(t.TempDir(), ModeAuto, kr, time.Second)
	ctx := context.Background()
	saved, err := s.SaveLogin(ctx, testLogin("alice"))
	if err != nil || saved.Backend != BackendKeyring || saved.FellBack != nil {
		t.Fatalf("SaveLogin = %+v, %v", saved, err)
	}
	cfg, _ := LoadConfig(s.Dir)
	srv := cfg.Servers["https://mcp.example.com"]
	if cfg.DefaultServer != srv.URL || srv.ActiveAccount != "alice" || srv.Accounts["alice"].Storage != BackendKeyring || srv.TokenEndpoint == "" {
		t.Fatalf("stored %+v", srv)
	}
	c := srv.Client("c1")
	if c == nil || !c.Confidential || c.AuthMethod != "client_secret_post" {
		t.Fatalf("client %+v", c)
	}
	if v, err := s.ClientSecret(srv.URL, c); err != nil || v != "secret" {
		t.Errorf("secret %q, %v", v, err)
	}

	// The keyring goes away: the next login falls back to the file.
	kr.err = errors.New("locked")
	saved, err = s.SaveLogin(ctx, testLogin("bob"))
	if err != nil || saved.Backend != BackendFile || saved.FellBack == nil {
		t.Fatalf("SaveLogin without a keyring = %+v, %v", saved, err)
	}

	// Keyring mode refuses, and nothing of the login stays.
	strict := New(t.TempDir(), ModeKeyring, kr, time.Second)
	if _, err := strict.SaveLogin(ctx, testLogin("carol")); !errors.As(err, new(*SaveError)) {
		t.Fatalf("SaveLogin in keyring mode with a refusing keyring: %v", err)
	}
	if cfg, _ := LoadConfig(strict.Dir); len(cfg.Servers) != 0 {
		t.Errorf("stored %v after a failed login", cfg.ServerURLs())
	}

	// RemoveAccount takes the tokens with it.
	kr.err = nil
	gone, err := s.RemoveAccount(ctx, "https://mcp.example.com", "alice")
	if err != nil || gone == nil || gone.Subject != "alice" {
		t.Fatalf("RemoveAccount = %+v, %v", gone, err)
	}
	if _, err := s.GetTokens(BackendKeyring, "https://mcp.example.com", "alice"); err == nil {
		t.Error("alice's tokens outlived her account")
	}
	cfg, _ = LoadConfig(s.Dir)
	if srv := cfg.Servers["https://mcp.example.com"]; srv.Accounts["alice"] != nil || srv.ActiveAccount != "bob" {
		t.Errorf("after removal: %+v", srv)
	}
	if gone, err := s.RemoveAccount(ctx, "https://mcp.example.com", "alice"); gone != nil || err != nil {
		t.Errorf("removing again = %+v, %v", gone, err)
	}
}

func TestSaveAndForgetClient(t *testing.T) {
	kr := &fakeKeyring{items: map[string]string{}}
	s := New(t.TempDir(), ModeAuto, kr, time.Second)
	ctx := context.Background()
	const u = "https://mcp.example.com"
	meta := &Server{Issuer: "https://idp.example.com", TokenEndpoint: "https://idp.example.com/token"}
	c, fellBack, err := s.SaveClient(ctx, u, meta, Client{ID: "reg", Registered: true}, ClientSecrets{Secret: "s", RegistrationToken: "rat"})
	if err != nil || fellBack != nil || !c.Confidential || c.RegistrationTokenStorage != BackendKeyring {
		t.Fatalf("SaveClient = %+v, %v, %v", c, fellBack, err)
	}
	cfg, _ := LoadConfig(s.Dir)
	if cfg.Servers[u].Issuer != meta.Issuer || cfg.DefaultServer != u {
		t.Errorf("server entry %+v", cfg.Servers[u])
	}
	if tok, err := s.RegistrationToken(u, &c); err != nil || tok != "rat" {
		t.Errorf("registration token %q, %v", tok, err)
	}
	if _, err := s.SaveLogin(ctx, &Login{Server: Server{URL: u}, Account: Account{Subject: "alice", ClientID: "reg"}, Client: Client{ID: "reg"}}); err != nil {
		t.Fatal(err)
	}
	users, err := s.ForgetClient(ctx, u, "reg")
	if err != nil || len(users) != 1 || users[0] != "alice" {
		t.Fatalf("ForgetClient = %q, %v", users, err)
	}
	if len(kr.items) != 1 { // alice's tokens only
		t.Errorf("keyring items left: %v", kr.items)
	}
	if users, err := s.ForgetClient(ctx, u, "reg"); users != nil || err != nil {
		t.Errorf("forgetting again = %q, %v", users, err)
	}
}
