package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// tokenEndpoint records the token requests it gets and answers each with a
// fresh access token.
type tokenEndpoint struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []*http.Request // with PostForm parsed
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	e := &tokenEndpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		e.got = append(e.got, r)
		n := len(e.got)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		typ := ""
		if r.PostForm.Get("grant_type") == GrantTokenExchange {
			typ = `,"issued_token_type":"` + TokenTypeIDJAG + `"`
			_, _ = w.Write([]byte(`{"access_token":"eyJ.eyJ.sig` + string(rune('0'+n)) + `","token_type":"N_A"` + typ + `}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"at-` + string(rune('0'+n)) + `","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) last(t *testing.T) *http.Request {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.got) == 0 {
		t.Fatal("no token request")
	}
	return e.got[len(e.got)-1]
}

// clientAuth says how a request authenticated its client.
func clientAuth(r *http.Request) (method, id, secret string) {
	if id, secret, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		return "client_secret_basic", id, secret
	}
	if r.PostForm.Has("client_assertion") {
		return "private_key_jwt", r.PostForm.Get("client_id"), ""
	}
	if r.PostForm.Has("client_secret") {
		return "client_secret_post", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return "none", r.PostForm.Get("client_id"), ""
}

// TestClientAuthentication: every token request authenticates the client
// as its registration says, else as the authorization server lists, and
// never sends a secret to a server that takes only public clients.
func TestClientAuthentication(t *testing.T) {
	ep := newTokenEndpoint(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		c      Client
		method string
	}{
		{"registered basic", Client{ID: "c1", Secret: "s:1", AuthMethod: "client_secret_basic"}, "client_secret_basic"},
		{"registered post", Client{ID: "c2", Secret: "s2", AuthMethod: "client_secret_post", AuthMethods: []string{"client_secret_basic", "client_secret_post"}}, "client_secret_post"},
		{"registered none with a secret", Client{ID: "c3", Secret: "s3", AuthMethod: "none"}, "none"},
		{"listed basic first", Client{ID: "c4", Secret: "s4", AuthMethods: []string{"client_secret_post", "client_secret_basic"}}, "client_secret_basic"},
		{"listed post only", Client{ID: "c5", Secret: "s5", AuthMethods: []string{"client_secret_post"}}, "client_secret_post"},
		{"listed none only", Client{ID: "c6", Secret: "s6", AuthMethods: []string{"none"}}, "none"},
		{"public", Client{ID: "c7", AuthMethods: []string{"client_secret_basic"}}, "none"},
		{"unlisted with a secret", Client{ID: "c8", Secret: "s8"}, "client_secret_basic"},
	}
	for _, tt := range tests {
		grants := map[string]func() error{
			"authorization_code": func() error {
				l := NewLogin("https://as/authorize", ep.srv.URL, tt.c, "http://127.0.0.1:1/callback")
				_, err := l.Exchange(ctx, ep.srv.Client(), "code")
				return err
			},
			"refresh_token": func() error {
				_, err := Refresh(ctx, ep.srv.Client(), ep.srv.URL, tt.c, "rt", "")
				return err
			},
			"client_credentials": func() error {
				_, err := ClientCredentials(ctx, ep.srv.Client(), ep.srv.URL, tt.c, nil, "")
				return err
			},
		}
		for grant, do := range grants {
			if err := do(); err != nil {
				t.Fatalf("%s, %s: %v", tt.name, grant, err)
			}
			r := ep.last(t)
			method, id, secret := clientAuth(r)
			if method != tt.method || id != tt.c.ID || r.PostForm.Get("grant_type") != grant {
				t.Errorf("%s, %s: %s as %q, want %s as %q", tt.name, grant, method, id, tt.method, tt.c.ID)
			}
			if tt.method != "none" && secret != tt.c.Secret {
				t.Errorf("%s, %s: secret %q", tt.name, grant, secret)
			}
			if tt.method == "none" && (r.PostForm.Has("client_secret") || r.Header.Get("Authorization") != "") {
				t.Errorf("%s, %s: a secret was sent to a public client's token endpoint", tt.name, grant)
			}
		}
	}
}

// TestResourceIndicators: the resource parameter (RFC 8707) goes, the
// same, into the authorization request, the code exchange and the refresh.
func TestResourceIndicators(t *testing.T) {
	ep := newTokenEndpoint(t)
	const resource = "https://mcp.example.com/mcp"
	l := NewLogin("https://as.example.com/authorize", ep.srv.URL, Client{ID: "c"}, "http://127.0.0.1:1/callback")
	l.Resource = resource
	u, _ := url.Parse(l.URL())
	if got := u.Query().Get("resource"); got != resource {
		t.Fatalf("authorization request resource %q", got)
	}
	if _, err := l.Exchange(context.Background(), ep.srv.Client(), "code"); err != nil {
		t.Fatal(err)
	}
	if got := ep.last(t).PostForm.Get("resource"); got != resource {
		t.Fatalf("token request resource %q", got)
	}
	if _, err := Refresh(context.Background(), ep.srv.Client(), ep.srv.URL, Client{ID: "c"}, "rt", resource); err != nil {
		t.Fatal(err)
	}
	if got := ep.last(t).PostForm.Get("resource"); got != resource {
		t.Fatalf("refresh resource %q", got)
	}
	l.Resource = ""
	u, _ = url.Parse(l.URL())
	if u.Query().Has("resource") {
		t.Fatalf("a resource without one: %s", u)
	}
}

func pemOf(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TestPrivateKeyJWT: the client_credentials grant with private_key_jwt
// sends a fresh assertion that verifies with the client's public key: iss
// and sub the client, aud the authorization server's issuer (not its token
// endpoint), an expiry within minutes, a unique jti, and for ES256 the
// signature JWS requires (R||S, not ASN.1).
func TestPrivateKeyJWT(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ep := newTokenEndpoint(t)
	const issuer = "https://as.example.com/tenant1"
	for _, tt := range []struct {
		key    crypto.Signer
		alg    jose.SignatureAlgorithm
		sigLen int
	}{{ec, jose.ES256, 64}, {rk, jose.RS256, 256}, {ed, jose.EdDSA, 64}} {
		k, err := ParseSigningKey(pemOf(t, tt.key), "")
		if err != nil || k.Algorithm() != string(tt.alg) {
			t.Fatalf("%s: %v, %v", tt.alg, k, err)
		}
		c := Client{ID: "ci-client", Key: k, Issuer: issuer, AuthMethods: []string{"private_key_jwt"}}
		jtis := map[string]bool{}
		for range 2 {
			tok, err := ClientCredentials(context.Background(), ep.srv.Client(), ep.srv.URL, c, []string{"mcp:read"}, "https://mcp.example.com/mcp")
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("%s: %v", tt.alg, err)
			}
			r := ep.last(t)
			if method, id, _ := clientAuth(r); method != "private_key_jwt" || id != "ci-client" || r.Header.Get("Authorization") != "" {
				t.Fatalf("%s: authenticated as %s %q", tt.alg, method, id)
			}
			f := r.PostForm
			if f.Get("client_assertion_type") != ClientAssertionType || f.Get("scope") != "mcp:read" || f.Get("resource") != "https://mcp.example.com/mcp" {
				t.Fatalf("%s: form %v", tt.alg, f)
			}
			a := f.Get("client_assertion")
			parsed, err := jwt.ParseSigned(a, []jose.SignatureAlgorithm{tt.alg})
			if err != nil {
				t.Fatalf("%s: %v", tt.alg, err)
			}
			var claims jwt.Claims
			if err := parsed.Claims(tt.key.Public(), &claims); err != nil {
				t.Fatalf("%s: the assertion does not verify: %v", tt.alg, err)
			}
			if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: "ci-client", Subject: "ci-client", AnyAudience: jwt.Audience{issuer}, Time: time.Now()}, 0); err != nil {
				t.Fatalf("%s: %v", tt.alg, err)
			}
			if claims.Expiry == nil || claims.Expiry.Time().After(time.Now().Add(6*time.Minute)) || claims.ID == "" || jtis[claims.ID] {
				t.Fatalf("%s: exp %v, jti %q (seen %v)", tt.alg, claims.Expiry, claims.ID, jtis)
			}
			jtis[claims.ID] = true
			sig, _ := base64.RawURLEncoding.DecodeString(a[strings.LastIndex(a, ".")+1:])
			if len(sig) != tt.sigLen {
				t.Fatalf("%s: signature of %d bytes, want %d", tt.alg, len(sig), tt.sigLen)
			}
		}
	}
}

func TestParseSigningKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	big, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tt := range []struct {
		name, pem, alg, want string
	}{
		{"SEC 1", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})), "", "ES384"},
		{"PKCS #1", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(big)})), "RS256", "RS256"},
		{"algorithm mismatch", string(pemOf(t, ec)), "ES256", "not ES256"},
		{"short RSA", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})), "", "shorter than 2048"},
		{"a certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "", "not a private key"},
		{"no PEM", "hello", "", "no PEM"},
	} {
		k, err := ParseSigningKey([]byte(tt.pem), tt.alg)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = k.Algorithm()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestCrossAppAccess: the user's ID token becomes an ID-JAG at the
// identity provider (RFC 8693, audience the authorization server, resource
// the MCP server), which the client redeems at the authorization server
// with its own credentials (RFC 7523).
func TestCrossAppAccess(t *testing.T) {
	idp, as := newTokenEndpoint(t), newTokenEndpoint(t)
	ctx := context.Background()
	jag, err := ExchangeIDToken(ctx, idp.srv.Client(), idp.srv.URL, "idp-client", "the.id.token", "https://as.example.com", "https://mcp.example.com/mcp")
	if err != nil {
		t.Fatal(err)
	}
	f := idp.last(t).PostForm
	want := map[string]string{"grant_type": GrantTokenExchange, "requested_token_type": TokenTypeIDJAG, "subject_token": "the.id.token",
		"subject_token_type": TokenTypeIDToken, "audience": "https://as.example.com", "resource": "https://mcp.example.com/mcp", "client_id": "idp-client"}
	for k, v := range want {
		if f.Get(k) != v {
			t.Errorf("token exchange %s = %q, want %q", k, f.Get(k), v)
		}
	}
	tok, err := JWTBearer(ctx, as.srv.Client(), as.srv.URL, Client{ID: "app client", Secret: "s&cret", AuthMethods: []string{"client_secret_basic"}}, jag, nil)
	if err != nil || tok.AccessToken == "" {
		t.Fatal(err)
	}
	r := as.last(t)
	if method, id, secret := clientAuth(r); method != "client_secret_basic" || id != "app client" || secret != "s&cret" {
		t.Fatalf("authenticated as %s %q %q", method, id, secret)
	}
	if r.PostForm.Get("grant_type") != GrantJWTBearer || r.PostForm.Get("assertion") != jag {
		t.Fatalf("jwt-bearer form %v", r.PostForm)
	}
}

// TestExchangeIDTokenRefusesOtherTokens: an answer that is not an ID-JAG
// is not passed on to the authorization server.
func TestExchangeIDTokenRefusesOtherTokens(t *testing.T) {
	for _, body := range []string{
		`{"access_token":"eyJ.eyJ.sig","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer"}`,
		`{"access_token":"opaque","token_type":"N_A"}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		}))
		_, err := ExchangeIDToken(context.Background(), srv.Client(), srv.URL, "", "id", "aud", "res")
		srv.Close()
		var te *TokenError
		if err == nil || !errors.As(err, &te) {
			t.Errorf("%s: %v", body, err)
		}
	}
}
