package oauth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func retrieveErr(status int, code, desc string) error {
	return &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}, ErrorCode: code, ErrorDescription: desc}
}

func TestIsVerifierRejected(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"zitadel", retrieveErr(400, "invalid_request", "code_verifier unexpectedly provided"), true},
		{"keycloak", retrieveErr(400, "invalid_grant", "PKCE code verifier specified but challenge not present in authorization"), true},
		{"wrong verifier is a real failure", retrieveErr(400, "invalid_grant", "invalid code_verifier"), false},
		{"missing verifier is a real failure", retrieveErr(400, "invalid_request", "code_verifier required"), false},
		{"expired code", retrieveErr(400, "invalid_grant", "code expired"), false},
		{"server error", retrieveErr(500, "server_error", "pkce store down"), false},
		{"bad client", retrieveErr(401, "invalid_client", "PKCE"), false},
		{"transport", errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		if got := isVerifierRejected(tt.err); got != tt.want {
			t.Errorf("%s: isVerifierRejected = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAuthStyle(t *testing.T) {
	tests := []struct {
		c    Client
		want oauth2.AuthStyle
	}{
		{Client{ID: "pub"}, oauth2.AuthStyleInParams},
		{Client{ID: "c", Secret: "s", AuthMethods: []string{"client_secret_post"}}, oauth2.AuthStyleInParams},
		{Client{ID: "c", Secret: "s", AuthMethods: []string{"client_secret_post", "client_secret_basic"}}, oauth2.AuthStyleInHeader},
		{Client{ID: "c", Secret: "s"}, oauth2.AuthStyleAutoDetect},
	}
	for _, tt := range tests {
		if got := tt.c.authStyle(); got != tt.want {
			t.Errorf("%+v: authStyle = %v, want %v", tt.c, got, tt.want)
		}
	}
}

// TestLoginURL checks the authorization request the server's
// /oauth/authorize requires (RFC 6749 4.1.1, RFC 7636 4.3).
func TestLoginURL(t *testing.T) {
	l := NewLogin("https://mcp.example.com/oauth/authorize", "https://idp/token", Client{ID: "test-mcp-client"}, "http://127.0.0.1:4711/callback")
	u, err := url.Parse(l.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"response_type": "code", "client_id": "test-mcp-client", "redirect_uri": "http://127.0.0.1:4711/callback",
		"state": l.State, "nonce": l.Nonce, "code_challenge_method": "S256", "code_challenge": oauth2.S256ChallengeFromVerifier(l.Verifier),
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("scope") || q.Has("code_verifier") {
		t.Errorf("unexpected parameters in %s", u)
	}
	other := NewLogin(l.AuthorizeURL, l.TokenURL, l.Client, l.RedirectURI)
	if other.State == l.State || other.Nonce == l.Nonce || other.Verifier == l.Verifier || len(l.State) < 22 || len(l.Verifier) < 43 {
		t.Error("state, nonce and verifier must be fresh and long")
	}
}

func TestTokenErrorNeverCarriesTheBody(t *testing.T) {
	re := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, Body: []byte(`{"error":"invalid_grant","access_token":"leaked"}`), ErrorCode: "invalid_grant", ErrorDescription: "refresh token is invalid"}
	err := tokenError("refresh the token", "https://idp/token", re)
	var te *TokenError
	if !errors.As(err, &te) || !te.Refused() || strings.Contains(err.Error(), "leaked") {
		t.Fatalf("tokenError = %v", err)
	}
	if !strings.Contains(err.Error(), "invalid_grant: refresh token is invalid") {
		t.Fatalf("message %q", err.Error())
	}
	unreachable := tokenError("exchange the code", "https://idp/token", &url.Error{Op: "Post", URL: "https://idp/token", Err: errors.New("dial tcp: connection refused")})
	if !errors.As(unreachable, &te) || te.Refused() || !strings.Contains(unreachable.Error(), "unreachable") {
		t.Fatalf("unreachable = %v", unreachable)
	}
}

func TestMatchScopes(t *testing.T) {
	out, notes := MatchScopes([]string{"offline_access", "notes.read", "calendar:write", "other"}, []string{"openid", "offline_access", "notes:read", "calendar.write"})
	if strings.Join(out, " ") != "offline_access notes:read calendar.write other" || len(notes) != 2 {
		t.Fatalf("MatchScopes = %v, %v", out, notes)
	}
}

func TestExpiryFromJWT(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"a","exp":` + strconv.FormatInt(exp.Unix(), 10) + `}`))
	if got := Expiry(&oauth2.Token{AccessToken: "h." + payload + ".s"}); !got.Equal(exp) {
		t.Fatalf("Expiry = %v, want %v", got, exp)
	}
	if got := Expiry(&oauth2.Token{AccessToken: "opaque"}); !got.IsZero() {
		t.Fatalf("opaque token: %v", got)
	}
	set := time.Now().Add(time.Minute)
	if got := Expiry(&oauth2.Token{AccessToken: "h." + payload + ".s", Expiry: set}); !got.Equal(set) {
		t.Fatal("expires_in must win over the JWT")
	}
}

// TestRefreshOutlivesCancellation: once the refresh request has reached the
// IdP, cancelling (SIGTERM, a cancelled CI job) must not throw away the
// answer, which may carry the only valid, rotated refresh token. Before the
// request is sent, cancelling stops it.
func TestRefreshOutlivesCancellation(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"new-at","token_type":"bearer","expires_in":3600,"refresh_token":"rotated"}`))
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := Refresh(ctx, srv.Client(), srv.URL, Client{ID: "c"}, "old", "")
		done <- result{tok, err}
	}()
	<-arrived
	cancel()
	close(release)
	r := <-done
	if r.err != nil || r.tok.RefreshToken != "rotated" {
		t.Fatalf("a refresh cancelled after it was sent = %+v, %v; want the rotated token", r.tok, r.err)
	}

	pre, precancel := context.WithCancel(context.Background())
	precancel()
	if _, err := Refresh(pre, srv.Client(), srv.URL, Client{ID: "c"}, "old", ""); err == nil {
		t.Fatal("a refresh cancelled before it was sent went ahead")
	}
}
