package devserver

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestLoginForm(t *testing.T) {
	const oddClient = `<b>odd&client</b>`
	s := startServer(t, Options{AllowedClients: []string{PublicClientID, oddClient}})
	lb := newLoopback(t)

	// The flow stops at the OP's login page.
	open := func(clientID string) (loginURL *url.URL, page string) {
		t.Helper()
		resp, err := browser.Get(authorizeURL(s, clientID, lb.redirectURI(), "st-1", "x", nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Request.URL.Path != "/login" || !strings.HasPrefix(resp.Request.URL.String(), s.IssuerURL()) {
			t.Fatalf("flow ended at %s with %d", resp.Request.URL.Redacted(), resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("Content-Type = %q", ct)
		}
		return resp.Request.URL, string(body)
	}
	loginURL, page := open(PublicClientID)
	id := loginURL.Query().Get("id")
	for _, want := range []string{`<form method="post" action="/login">`, `name="username"`, `type="password"`, `value="` + id + `"`, PublicClientID} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q", want)
		}
	}

	// Whatever it shows is escaped.
	_, oddPage := open(oddClient)
	if strings.Contains(oddPage, oddClient) || !strings.Contains(oddPage, "&lt;b&gt;odd&amp;client&lt;/b&gt;") {
		t.Error("the login page does not escape the client id")
	}

	post := func(form url.Values) (*http.Response, string) {
		t.Helper()
		resp, err := browser.PostForm(s.IssuerURL()+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}

	// A wrong password shows an error and completes nothing.
	resp, body := post(url.Values{"id": {id}, "username": {"alice"}, "password": {"bob"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password") ||
		!strings.Contains(body, `value="alice"`) {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, body)
	}
	if lb.count() != 0 {
		t.Fatal("the flow completed after a wrong password")
	}
	if _, body := post(url.Values{"id": {"no-such-request"}, "username": {"alice"}, "password": {"alice"}}); !strings.Contains(body, "unknown or expired") {
		t.Errorf("unknown login request: %s", body)
	}

	// Deny on a second login request sends access_denied to the client.
	denyURL, _ := open(PublicClientID)
	resp, _ = post(url.Values{"id": {denyURL.Query().Get("id")}, "action": {"deny"}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/callback" || lb.count() != 1 {
		t.Fatalf("deny: ended at %s with %d", resp.Request.URL.Redacted(), resp.StatusCode)
	}
	if q := lb.last(t); q.Get("error") != "access_denied" || q.Get("state") != "st-1" || q.Get("code") != "" {
		t.Fatalf("deny: loopback got %v", q)
	}

	// The right password (of the second user) completes the flow.
	resp, _ = post(url.Values{"id": {id}, "username": {SecondUser.Username}, "password": {SecondUser.Password}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/callback" || lb.count() != 2 {
		t.Fatalf("right password: ended at %s with %d", resp.Request.URL.Redacted(), resp.StatusCode)
	}
	q := lb.last(t)
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("loopback got %v", q)
	}
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	tok, err := exchange(t, cfg, q.Get("code"), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	provider, err := oidc.NewProvider(ctx, s.IssuerURL())
	if err != nil {
		t.Fatal(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: PublicClientID}).Verify(ctx, rawID)
	if err != nil {
		t.Fatal(err)
	}
	if idt.Subject != SecondUser.Subject {
		t.Errorf("sub = %q, want %q", idt.Subject, SecondUser.Subject)
	}

	// A completed login request cannot be used again.
	if resp, _ := post(url.Values{"id": {id}, "username": {"alice"}, "password": {"alice"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("reused login request: %d", resp.StatusCode)
	}
}

func TestAutoApprove(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	lb := newLoopback(t)
	// One GET, redirects followed: no page on the way.
	code := login(t, s, lb, ClaudeDesktopClientID, "x", nil)
	cfg := oauthConfig(s, ClaudeDesktopClientID, "", lb.redirectURI(), oauth2.AuthStyleInHeader)
	tok, err := exchange(t, cfg, code, "")
	if err != nil {
		t.Fatal(err)
	}
	if sub := jwtClaims(t, tok.AccessToken)["sub"]; sub != DefaultUser.Subject {
		t.Errorf("sub = %v, want the default user", sub)
	}
}

func TestRequestLogHidesSecrets(t *testing.T) {
	for _, gen := range []int{1, 2} {
		t.Run(fmt.Sprint("generation ", gen), func(t *testing.T) {
			var mu sync.Mutex
			var lines []string
			s := startServer(t, Options{Generation: gen, AutoApprove: true, LoginFlowTools: true, Logf: func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				lines = append(lines, fmt.Sprintf(format, args...))
			}})
			lb := newLoopback(t)
			atOP := registerAtOP(t, s, map[string]any{"redirect_uris": []string{lb.redirectURI()}})
			verifier, challenge := pkcePair()
			code := login(t, s, lb, PublicClientID, challenge, nil)
			cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
			exchangeVerifier := ""
			if gen == 2 {
				cfg, exchangeVerifier = gen2Config(s, PublicClientID, lb.redirectURI()), verifier
			}
			tok, err := exchange(t, cfg, code, exchangeVerifier)
			if err != nil {
				t.Fatal(err)
			}
			cs := mustMCPSession(t, s, tok.AccessToken)
			resp, err := browser.Get(s.Flow2URL())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			flow2, ok := s.ProvisionedToken(DefaultUser.Subject)
			if !ok || flow2.RefreshToken == "" {
				t.Fatal("nothing provisioned")
			}
			p := callTool(t, cs, ToolNCAuthProvision, nil)
			loginURL, _ := p["login_url"].(string)
			resp, err = browser.Get(loginURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			callTool(t, cs, ToolNCAuthCheck, nil)
			_ = cs.Close()

			mu.Lock()
			defer mu.Unlock()
			if len(lines) < 15 {
				t.Fatalf("only %d log lines: %q", len(lines), lines)
			}
			secrets := map[string]string{
				"code": code, "verifier": verifier, "challenge": challenge, "access token": tok.AccessToken, "refresh token": tok.RefreshToken,
				"provisioned refresh token": flow2.RefreshToken, "server client secret": s.ServerClientSecret(),
				"registered secret": atOP.ClientSecret, "registration access token": atOP.RegistrationAccessToken,
				"login URL": strings.TrimPrefix(loginURL, s.NextcloudURL()+ncFlowPath), "query string": "?",
			}
			for _, l := range lines {
				for name, secret := range secrets {
					if secret != "" && strings.Contains(l, secret) {
						t.Errorf("log line %q contains the %s", l, name)
					}
				}
			}
		})
	}
}
