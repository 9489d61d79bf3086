package oauth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeJWT builds an unsigned-looking but well-formed JWT: the shape is all
// ParseAssertion and the token endpoint of these tests look at.
func fakeJWT(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + ".c2ln"
}

func TestParseAssertion(t *testing.T) {
	good := fakeJWT(`{"alg":"ES256","typ":"JWT"}`, `{"iss":"https://token.actions.githubusercontent.com","sub":"repo:o/r:ref:refs/heads/main","aud":"https://as","exp":1700000000}`)
	a, err := ParseAssertion(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.Issuer != "https://token.actions.githubusercontent.com" || a.Subject != "repo:o/r:ref:refs/heads/main" || !a.Expiry.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("got %+v", a)
	}
	for name, raw := range map[string]string{
		"empty":           "",
		"two parts":       "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0",
		"no signature":    strings.TrimSuffix(fakeJWT(`{"alg":"ES256"}`, `{"sub":"x"}`), "c2ln"),
		"JWE":             "a.b.c.d.e",
		"alg none":        fakeJWT(`{"alg":"none"}`, `{"sub":"x"}`),
		"no alg":          fakeJWT(`{"typ":"JWT"}`, `{"sub":"x"}`),
		"claims no JSON":  fakeJWT(`{"alg":"ES256"}`, `sub=x`),
		"claims an array": fakeJWT(`{"alg":"ES256"}`, `["x"]`),
		"not base64":      "e$J.e$J.sig",
		"a secret":        "ghp_0123456789abcdef",
	} {
		if _, err := ParseAssertion(raw); !errors.Is(err, ErrNotJWT) {
			t.Errorf("%s: %v, want ErrNotJWT", name, err)
		} else if raw != "" && strings.Contains(err.Error(), raw) {
			t.Errorf("%s: the error quotes the token", name)
		}
	}
}

// TestWorkloadJWTBearer: one RFC 7523 request with the JWT as assertion,
// the scopes and the resource, no client authentication without a
// client, the named client's otherwise; a refusal is one request only.
func TestWorkloadJWTBearer(t *testing.T) {
	ep := newTokenEndpoint(t)
	ctx := context.Background()
	jwt := fakeJWT(`{"alg":"RS256"}`, `{"sub":"w"}`)
	tok, err := WorkloadJWTBearer(ctx, ep.srv.Client(), ep.srv.URL, Client{AuthMethod: "none"}, jwt, []string{"mcp:tools"}, "https://mcp.example.com/mcp")
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("%v %v", tok, err)
	}
	r := ep.last(t)
	if r.PostForm.Get("grant_type") != GrantJWTBearer || r.PostForm.Get("assertion") != jwt || r.PostForm.Get("scope") != "mcp:tools" || r.PostForm.Get("resource") != "https://mcp.example.com/mcp" {
		t.Errorf("form %v", r.PostForm)
	}
	if method, id, _ := clientAuth(r); method != "none" || id != "" || r.PostForm.Has("client_id") {
		t.Errorf("client authentication %s as %q without a client", method, id)
	}

	if _, err := WorkloadJWTBearer(ctx, ep.srv.Client(), ep.srv.URL, Client{ID: "ci", Secret: "s"}, jwt, nil, ""); err != nil {
		t.Fatal(err)
	}
	if method, id, secret := clientAuth(ep.last(t)); method != "client_secret_basic" || id != "ci" || secret != "s" {
		t.Errorf("named client: %s as %q", method, id)
	}
}

func TestWorkloadJWTBearerRefusedOnce(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"JWT assertion audience is invalid"}`))
	}))
	t.Cleanup(srv.Close)
	jwt := fakeJWT(`{"alg":"RS256"}`, `{"sub":"w"}`)
	// A secret without a listed method: x/oauth2 would try two ways.
	_, err := WorkloadJWTBearer(context.Background(), srv.Client(), srv.URL, Client{ID: "ci", Secret: "s"}, jwt, nil, "")
	var te *TokenError
	if !errors.As(err, &te) || !te.Refused() || te.Code != "invalid_grant" {
		t.Fatalf("got %v", err)
	}
	if n != 1 {
		t.Errorf("%d requests, want 1: a refused JWT is not sent again", n)
	}
	if strings.Contains(err.Error(), jwt) {
		t.Error("the error quotes the JWT")
	}
}
