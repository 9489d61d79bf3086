package devserver

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"golang.org/x/oauth2"
)

// TestQuirkOptions: each quirk option changes exactly what it says.
func TestQuirkOptions(t *testing.T) {
	t.Run("DiscoveryRedirect", func(t *testing.T) {
		s := startServer(t, Options{DiscoveryRedirect: true})
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(s.IssuerURL() + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/index.php/.well-known/openid-configuration" {
			t.Fatalf("discovery: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		var doc struct {
			Issuer string `json:"issuer"`
		}
		getJSON(t, s.IssuerURL()+"/index.php/.well-known/openid-configuration", &doc)
		if doc.Issuer != s.IssuerURL() {
			t.Fatalf("issuer after the redirect: %q", doc.Issuer)
		}
	})

	t.Run("NoRefreshRotation and OmitExpiresIn", func(t *testing.T) {
		s := startServer(t, Options{AutoApprove: true, NoRefreshRotation: true, OmitExpiresIn: true})
		lb := newLoopback(t)
		_, challenge := pkcePair()
		code := login(t, s, lb, PublicClientID, challenge, nil)
		cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
		tok, err := exchange(t, cfg, code, "")
		if err != nil {
			t.Fatal(err)
		}
		if !tok.Expiry.IsZero() || tok.RefreshToken == "" {
			t.Fatalf("login: expiry %v, refresh token %q", tok.Expiry, tok.RefreshToken)
		}
		for i := 0; i < 2; i++ {
			resp, err := http.PostForm(s.IssuerURL()+idpTokenPath, map[string][]string{
				"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {PublicClientID},
			})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var body map[string]any
			_ = json.Unmarshal(b, &body)
			if resp.StatusCode != http.StatusOK || body["access_token"] == nil || body["refresh_token"] != nil || body["expires_in"] != nil {
				t.Fatalf("refresh %d: %d %s", i+1, resp.StatusCode, b)
			}
		}
	})

	t.Run("DenyClients", func(t *testing.T) {
		s := startServer(t, Options{AutoApprove: true, DenyClients: []string{ClaudeDesktopClientID}})
		lb := newLoopback(t)
		_, challenge := pkcePair()
		login(t, s, lb, PublicClientID, challenge, nil) // others log in as usual
		resp, err := browser.Get(authorizeURL(s, ClaudeDesktopClientID, lb.redirectURI(), "st-deny", challenge, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if q := lb.last(t); q.Get("error") != "access_denied" || q.Get("state") != "st-deny" {
			t.Fatalf("denied client got %v", q)
		}
	})
}
