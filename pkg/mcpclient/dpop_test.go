package mcpclient

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/ncmcp/ncmcp/pkg/oauth"
)

// dpopCreds are credentials of one DPoP-bound token.
type dpopCreds struct {
	token string
	key   *oauth.DPoPKey
	renew int
}

func (c *dpopCreds) Token(context.Context) (string, error) { return c.token, nil }
func (c *dpopCreds) Renew(_ context.Context, _ string, r Refusal) (string, error) {
	c.renew++
	return "", r.Err()
}
func (c *dpopCreds) DPoP(_ context.Context, token string) (*oauth.DPoPKey, error) {
	if token != c.token {
		return nil, errors.New("another token")
	}
	return c.key, nil
}

// dpopResource is a resource server that takes a DPoP-bound token only
// with a valid proof for each request (RFC 9449 section 7), a jti never
// seen before, and its nonce; always, it asks for a new nonce every time.
type dpopResource struct {
	t      *testing.T
	token  string
	jkt    string
	always bool

	mu       sync.Mutex
	requests int
	jtis     map[string]bool
	nonces   []any
}

func (rs *dpopResource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.requests++
	if r.Header.Get("Authorization") != "DPoP "+rs.token {
		rs.t.Errorf("Authorization: %q, want the DPoP scheme", r.Header.Get("Authorization"))
	}
	jws, err := jose.ParseSignedCompact(r.Header.Get("DPoP"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		rs.t.Fatalf("proof: %v", err)
	}
	h := jws.Signatures[0].Protected
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil || h.ExtraHeaders["typ"] != "dpop+jwt" {
		rs.t.Fatalf("proof does not verify (%v) or typ %v", err, h.ExtraHeaders["typ"])
	}
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	if base64.RawURLEncoding.EncodeToString(tp) != rs.jkt || c["htm"] != r.Method || c["htu"] != "http://"+r.Host+"/mcp" || c["ath"] != oauth.AccessTokenHash(rs.token) {
		rs.t.Errorf("proof %v by %s, for %s %s", c, base64.RawURLEncoding.EncodeToString(tp), r.Method, r.URL)
	}
	jti, _ := c["jti"].(string)
	if rs.jtis[jti] {
		rs.t.Errorf("jti %s used twice", jti)
	}
	rs.jtis[jti] = true
	rs.nonces = append(rs.nonces, c["nonce"])
	if rs.always || c["nonce"] != "rs-nonce" {
		w.Header().Set("DPoP-Nonce", "rs-nonce")
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("DPoP-Nonce", "rs-nonce")
	_, _ = w.Write([]byte("ok"))
}

func newDPoPResource(t *testing.T, always bool) (*dpopResource, *dpopCreds, *http.Client, string) {
	k, err := oauth.NewDPoPKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	rs := &dpopResource{t: t, token: "bound-token", jkt: k.Thumbprint(), always: always, jtis: map[string]bool{}}
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	creds := &dpopCreds{token: rs.token, key: k}
	at, err := NewAuthTransport(srv.Client().Transport, srv.URL+"/mcp", creds)
	if err != nil {
		t.Fatal(err)
	}
	return rs, creds, &http.Client{Transport: at}, srv.URL + "/mcp"
}

func post(t *testing.T, hc *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := hc.Post(u+"?q=1", "application/json", strings.NewReader(`{"jsonrpc":"2.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestDPoPResourceNonce: a DPoP-bound token goes with the DPoP scheme and
// a fresh proof; the server's nonce challenge gets one retry with it, and
// later requests use the nonce it sent last from the start.
func TestDPoPResourceNonce(t *testing.T) {
	rs, creds, hc, u := newDPoPResource(t, false)
	if resp := post(t, hc, u); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if rs.requests != 2 || rs.nonces[0] != nil || rs.nonces[1] != "rs-nonce" {
		t.Errorf("%d requests with nonces %v, want 2: none, then the server's", rs.requests, rs.nonces)
	}
	if resp := post(t, hc, u); resp.StatusCode != http.StatusOK || rs.requests != 3 {
		t.Errorf("second request: status %d after %d requests, want one request with the kept nonce", resp.StatusCode, rs.requests)
	}
	if creds.renew != 0 {
		t.Errorf("%d renewals for a nonce", creds.renew)
	}
}

// TestDPoPResourceNonceOnce: a server that asks for a nonce again and
// again gets one retry with it, then the refusal goes to the credentials.
func TestDPoPResourceNonceOnce(t *testing.T) {
	rs, creds, hc, u := newDPoPResource(t, true)
	if resp := post(t, hc, u); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if rs.requests != 2 || creds.renew != 1 {
		t.Errorf("%d requests and %d renewals, want 2 and 1", rs.requests, creds.renew)
	}
}
