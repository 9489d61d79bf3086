package oauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// testOP is an issuer with a JWKS endpoint and a userinfo endpoint on
// httptest, and a key to sign tokens with.
type testOP struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newTestOP(t *testing.T) *testOP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &testOP{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer opaque-access" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"sub":"u-from-userinfo","email":"u@example.test"}`))
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func (op *testOP) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: &jose.JSONWebKey{Key: op.key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tamper changes a character in the middle of the signature.
func tamper(jwt string) string {
	i := strings.LastIndexByte(jwt, '.') + 10
	repl := byte('A')
	if jwt[i] == 'A' {
		repl = 'B'
	}
	return jwt[:i] + string(repl) + jwt[i+1:]
}

func withIDToken(access, id string) *oauth2.Token {
	tok := &oauth2.Token{AccessToken: access}
	if id != "" {
		tok = tok.WithExtra(map[string]any{"id_token": id})
	}
	return tok
}

// TestIdentify checks that an identity is verified exactly when it can be,
// and otherwise read and labelled for what it is: the generation-2 server
// relays ID tokens that the IdP issued to the server's own client.
func TestIdentify(t *testing.T) {
	op := newTestOP(t)
	now := time.Now().Unix()
	claims := func(iss string, aud any, extra map[string]any) map[string]any {
		c := map[string]any{"iss": iss, "sub": "sub-1", "aud": aud, "iat": now, "exp": now + 3600, "email": "kilgore@example.test", "name": "Kilgore"}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	issuer := op.srv.URL
	oidcAS := Identifier{Issuer: issuer, JWKSURI: issuer + "/keys", ClientID: "test-mcp-client", TokenEndpoint: issuer + "/token"}
	plainAS := Identifier{Issuer: "https://mcp.example.com", ClientID: "test-mcp-client", TokenEndpoint: "https://mcp.example.com/oauth/token"}

	tests := []struct {
		name    string
		id      Identifier
		tok     *oauth2.Token
		nonce   string
		want    IdentitySource
		wantSub string
		wantTLS bool
		wantErr string
	}{
		{name: "ID token for this client, issuer with JWKS: verified, nonce checked", id: oidcAS,
			tok: withIDToken("a", op.sign(t, claims(issuer, []string{"nextcloud-mcp-server", "test-mcp-client"}, map[string]any{"nonce": "n1"}))), nonce: "n1",
			want: IdentityVerified, wantSub: "sub-1"},
		{name: "wrong nonce is refused", id: oidcAS,
			tok: withIDToken("a", op.sign(t, claims(issuer, "test-mcp-client", map[string]any{"nonce": "other"}))), nonce: "n1",
			wantErr: "nonce does not match"},
		{name: "bad signature is refused", id: oidcAS,
			tok:     withIDToken("a", tamper(op.sign(t, claims(issuer, "test-mcp-client", nil)))),
			wantErr: "verify ID token"},
		{name: "an ID token that is no JWT is refused where it could be verified", id: oidcAS,
			tok:     withIDToken("a", "not.a-jwt"),
			wantErr: "not a JWT"},
		{name: "expired ID token is refused", id: oidcAS,
			tok:     withIDToken("a", op.sign(t, claims(issuer, "test-mcp-client", map[string]any{"exp": now - 60}))),
			wantErr: "expired"},
		{name: "generation 2: ID token of the server's client, read but not verified", id: plainAS,
			tok:  withIDToken("a", op.sign(t, claims("http://dex.internal/dex", "nextcloud-mcp-server", map[string]any{"nonce": "server-nonce"}))),
			want: IdentityTokenResponse, wantSub: "sub-1", wantTLS: true},
		{name: "the OP's ID token for another client is refused", id: oidcAS,
			tok:     withIDToken("a", op.sign(t, claims(issuer, "some-other-client", nil))),
			wantErr: "audience"},
		{name: "ID token for this client but no JWKS: not claimed as verified", id: Identifier{Issuer: issuer, ClientID: "test-mcp-client", TokenEndpoint: "http://127.0.0.1:1/token"},
			tok:  withIDToken("a", op.sign(t, claims(issuer, "test-mcp-client", nil))),
			want: IdentityTokenResponse, wantSub: "sub-1", wantTLS: false},
		{name: "JWT access token only", id: plainAS,
			tok:  withIDToken(op.sign(t, claims("http://dex", "nextcloud-mcp-server", nil)), ""),
			want: IdentityTokenResponse, wantSub: "sub-1", wantTLS: true},
		{name: "opaque tokens and a userinfo endpoint", id: Identifier{Issuer: issuer, ClientID: "c", UserinfoEndpoint: issuer + "/userinfo"},
			tok:  withIDToken("opaque-access", ""),
			want: IdentityUserinfo, wantSub: "u-from-userinfo"},
		{name: "opaque tokens, plain OAuth: unknown", id: plainAS,
			tok:  withIDToken("opaque-access", ""),
			want: IdentityUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.id.Identify(context.Background(), op.srv.Client(), tt.tok, tt.nonce)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Source != tt.want || got.Subject != tt.wantSub || got.OverTLS != tt.wantTLS {
				t.Fatalf("got %+v, want source %s sub %q overTLS %v", got, tt.want, tt.wantSub, tt.wantTLS)
			}
			if tt.want == IdentityVerified && !got.NonceChecked {
				t.Error("the nonce was not checked")
			}
			if tt.want != IdentityVerified && strings.Contains(got.Describe(), "verified ID token") {
				t.Errorf("Describe() = %q claims a verification", got.Describe())
			}
		})
	}
}
