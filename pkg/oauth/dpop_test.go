package oauth

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// verifiedProof checks a proof as a server does (RFC 9449 section 4.3):
// typ dpop+jwt, a public jwk in the header that verifies the signature,
// and returns its claims and key.
func verifiedProof(t *testing.T, proof string) (map[string]any, *jose.JSONWebKey) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA})
	if err != nil {
		t.Fatalf("parse proof: %v", err)
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders["typ"] != "dpop+jwt" {
		t.Errorf("typ = %v, want dpop+jwt", h.ExtraHeaders["typ"])
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("jwk = %v, want a public key", h.JSONWebKey)
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("the signature does not verify with the header's jwk: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c, h.JSONWebKey
}

func TestDPoPProof(t *testing.T) {
	k, err := NewDPoPKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("HTTPS://MCP.Example.com/mcp/x?session=1&a=b#frag")
	proof, err := k.Proof("POST", u, "the-access-token", "n-1")
	if err != nil {
		t.Fatal(err)
	}
	c, jwk := verifiedProof(t, proof)
	if c["htm"] != "POST" || c["htu"] != "https://mcp.example.com/mcp/x" || c["nonce"] != "n-1" {
		t.Errorf("claims = %v", c)
	}
	sum := crypto.SHA256.New()
	sum.Write([]byte("the-access-token"))
	if want := base64.RawURLEncoding.EncodeToString(sum.Sum(nil)); c["ath"] != want {
		t.Errorf("ath = %v, want %s", c["ath"], want)
	}
	if jti, _ := c["jti"].(string); len(jti) < 16 {
		t.Errorf("jti = %v", c["jti"])
	}
	if iat, _ := c["iat"].(float64); time.Since(time.Unix(int64(iat), 0)).Abs() > time.Minute {
		t.Errorf("iat = %v", c["iat"])
	}
	tp, _ := jwk.Thumbprint(crypto.SHA256)
	if got := base64.RawURLEncoding.EncodeToString(tp); got != k.Thumbprint() {
		t.Errorf("the header's key has thumbprint %s, the key %s", got, k.Thumbprint())
	}
	// A token request's proof has no ath and no nonce; every proof its
	// own jti.
	again, _ := k.Proof("POST", u, "", "")
	c2, _ := verifiedProof(t, again)
	if _, ok := c2["ath"]; ok {
		t.Errorf("ath in a proof without an access token: %v", c2)
	}
	if _, ok := c2["nonce"]; ok {
		t.Errorf("nonce in a proof without one: %v", c2)
	}
	if c2["jti"] == c["jti"] {
		t.Error("two proofs share a jti")
	}
}

func TestDPoPKeyRoundTrip(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA"} {
		k, err := NewDPoPKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := k.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParseDPoPKey(s)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if k2.Algorithm() != alg || k2.Thumbprint() != k.Thumbprint() {
			t.Errorf("%s: read back as %s %s, want %s", alg, k2.Algorithm(), k2.Thumbprint(), k.Thumbprint())
		}
		if strings.Contains(fmt.Sprintf("%v %+v %#v", k, k, k), s) {
			t.Errorf("%s: formatting the key prints it", alg)
		}
	}
	if _, err := ParseDPoPKey("not-a-key"); err == nil || strings.Contains(err.Error(), "not-a-key") {
		t.Errorf("damaged key: %v", err)
	}
}

func TestDPoPAlg(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"RS256", "ES256"}, "ES256"},
		{[]string{"PS256", "ES384"}, "ES384"},
		{[]string{"EdDSA"}, "EdDSA"},
		{[]string{"RS256"}, ""},
		{nil, ""},
	} {
		if got := DPoPAlg(tc.in); got != tc.want {
			t.Errorf("DPoPAlg(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// dpopTokenEndpoint is a token endpoint that wants a proof with its
// nonce; always, it can insist on a nonce it never accepts.
type dpopTokenEndpoint struct {
	t      *testing.T
	always bool
	mu     sync.Mutex
	proofs []map[string]any
}

func (e *dpopTokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	if r.PostForm.Get("grant_type") == "" {
		e.t.Errorf("a request without its form (body not sent again?)")
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		e.t.Errorf("%d DPoP headers", len(proofs))
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	c, _ := verifiedProof(e.t, proofs[0])
	e.mu.Lock()
	e.proofs = append(e.proofs, c)
	e.mu.Unlock()
	if c["htu"] != "http://"+r.Host+"/token" || c["htm"] != "POST" {
		e.t.Errorf("proof for %v %v", c["htm"], c["htu"])
	}
	w.Header().Set("Content-Type", "application/json")
	if e.always || c["nonce"] != "as-nonce" {
		w.Header().Set("DPoP-Nonce", "as-nonce")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"use_dpop_nonce","error_description":"nonce"}`)
		return
	}
	fmt.Fprint(w, `{"access_token":"bound","token_type":"DPoP","expires_in":3600,"refresh_token":"r2"}`)
}

func TestDPoPTokenRequestNonce(t *testing.T) {
	e := &dpopTokenEndpoint{t: t}
	srv := httptest.NewServer(e)
	defer srv.Close()
	k, _ := NewDPoPKey("ES256")
	tok, err := Refresh(t.Context(), srv.Client(), srv.URL+"/token", Client{ID: "c", DPoP: k}, "r1", "")
	if err != nil {
		t.Fatal(err)
	}
	if !IsDPoP(tok.TokenType) || tok.AccessToken != "bound" {
		t.Errorf("token = %+v", tok)
	}
	if len(e.proofs) != 2 || e.proofs[0]["nonce"] != nil || e.proofs[1]["nonce"] != "as-nonce" {
		t.Errorf("proofs = %v, want one without a nonce, then one with the server's", e.proofs)
	}
}

func TestDPoPTokenRequestNonceOnce(t *testing.T) {
	e := &dpopTokenEndpoint{t: t, always: true}
	srv := httptest.NewServer(e)
	defer srv.Close()
	k, _ := NewDPoPKey("ES256")
	_, err := ClientCredentials(t.Context(), srv.Client(), srv.URL+"/token", Client{ID: "c", Secret: "s", AuthMethod: "client_secret_post", DPoP: k}, nil, "")
	var te *TokenError
	if !errors.As(err, &te) || te.Code != ErrUseDPoPNonce {
		t.Fatalf("err = %v, want the use_dpop_nonce refusal", err)
	}
	if len(e.proofs) != 2 {
		t.Errorf("%d requests, want 2: one retry with the nonce, no more", len(e.proofs))
	}
}
