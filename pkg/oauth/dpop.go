package oauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DPoP (RFC 9449) binds an access token to a key pair of the client: the
// token is sent with the DPoP authorization scheme and a fresh proof, a
// JWT signed with the key, with every request, so that a stolen token is
// of no use without the key.

// TokenTypeDPoP is the token_type of a DPoP-bound access token, and the
// authorization scheme it is sent with.
const TokenTypeDPoP = "DPoP"

// DPoPHeader is the header that carries a proof; DPoPNonceHeader the one
// in which a server gives the nonce it wants in the next proof.
const (
	DPoPHeader      = "DPoP"
	DPoPNonceHeader = "DPoP-Nonce"
)

// ErrUseDPoPNonce is the error code of a server that wants a nonce in
// the proof (RFC 9449 sections 8 and 9).
const ErrUseDPoPNonce = "use_dpop_nonce"

// dpopAlgs are the proof algorithms ncmcp signs with, preferred first.
var dpopAlgs = []string{"ES256", "ES384", "ES512", "EdDSA"}

// DPoPAlg returns the algorithm to sign proofs with for an authorization
// server whose metadata lists supported in
// dpop_signing_alg_values_supported: ES256 where it is listed, else the
// first one ncmcp supports; empty when none (no DPoP).
func DPoPAlg(supported []string) string {
	for _, a := range dpopAlgs {
		if slices.Contains(supported, a) {
			return a
		}
	}
	return ""
}

// IsDPoP tells whether a token type is DPoP's (compared without case, as
// token types are).
func IsDPoP(tokenType string) bool { return strings.EqualFold(tokenType, TokenTypeDPoP) }

// DPoPKey is an account's DPoP key pair.
type DPoPKey struct {
	s   *SigningKey
	jwk jose.JSONWebKey
}

// NewDPoPKey generates a key pair for alg (see DPoPAlg).
func NewDPoPKey(alg string) (*DPoPKey, error) {
	var key any
	var err error
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("DPoP proofs with %q are not supported", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate a DPoP key: %w", err)
	}
	return dpopKeyOf(key)
}

func dpopKeyOf(key any) (*DPoPKey, error) {
	s, err := signingKeyOf(key)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(dpopAlgs, string(s.alg)) {
		return nil, fmt.Errorf("DPoP proofs with %s are not supported", s.alg)
	}
	return &DPoPKey{s: s, jwk: jose.JSONWebKey{Key: s.key.Public(), Algorithm: string(s.alg)}}, nil
}

// ParseDPoPKey reads a key as Marshal wrote it. Its errors never quote it.
func ParseDPoPKey(stored string) (*DPoPKey, error) {
	der, err := base64.RawURLEncoding.DecodeString(stored)
	if err != nil {
		return nil, errors.New("the stored DPoP key is damaged")
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("the stored DPoP key is damaged")
	}
	return dpopKeyOf(key)
}

// Marshal returns the private key for storage: PKCS #8, base64url.
func (k *DPoPKey) Marshal() (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.s.key)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(der), nil
}

// Algorithm returns the algorithm the proofs are signed with.
func (k *DPoPKey) Algorithm() string { return string(k.s.alg) }

// Thumbprint returns the public key's JWK SHA-256 thumbprint (RFC 7638),
// base64url: the jkt that a bound token's cnf claim names.
func (k *DPoPKey) Thumbprint() string {
	tp, err := k.jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// String names the key by its thumbprint, never its private part.
func (k *DPoPKey) String() string { return "DPoP key " + k.Algorithm() + " " + k.Thumbprint() }

// GoString is String, so that %#v does not print the private key either.
func (k *DPoPKey) GoString() string { return k.String() }

// HTU returns a request URL as a proof's htu claim: without its query and
// fragment (RFC 9449 section 4.2).
func HTU(u *url.URL) string {
	v := url.URL{Scheme: strings.ToLower(u.Scheme), Host: strings.ToLower(u.Host), Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

// AccessTokenHash returns a proof's ath claim for an access token: the
// base64url SHA-256 of its ASCII.
func AccessTokenHash(accessToken string) string {
	h := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// dpopClaims are a proof's claims (RFC 9449 section 4.2).
type dpopClaims struct {
	ID       string           `json:"jti"`
	Method   string           `json:"htm"`
	URI      string           `json:"htu"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	ATH      string           `json:"ath,omitempty"`
	Nonce    string           `json:"nonce,omitempty"`
}

// Proof signs a proof for one request: typ dpop+jwt, the public key in
// the header, a random jti, the method, the URL without query and
// fragment, the time, and the hash of the access token (ath) for a
// request to a resource, the server's nonce when it gave one.
func (k *DPoPKey) Proof(method string, u *url.URL, accessToken, nonce string) (string, error) {
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.s.alg, Key: k.s.key}, opts)
	if err != nil {
		return "", err
	}
	c := dpopClaims{ID: rand.Text(), Method: method, URI: HTU(u), IssuedAt: jwt.NewNumericDate(time.Now()), Nonce: nonce}
	if accessToken != "" {
		c.ATH = AccessTokenHash(accessToken)
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}

// maxNonceAnswer bounds what is read of a token endpoint's 400 answer to
// see whether it asks for a nonce.
const maxNonceAnswer = 64 << 10

// dpopTransport adds a proof to each token request and, when the
// authorization server asks for a nonce (400 use_dpop_nonce with a
// DPoP-Nonce header, RFC 9449 section 8), sends the request once more
// with it: once, so that a server that keeps asking cannot make it loop.
//
// mcpclient's bearer.sendDPoP (pkg/mcpclient/dpop.go) resends a resource
// request the same way, once, with the body from GetBody; they stay apart
// because they tell a nonce request differently (here a 400 JSON error,
// there a 401 DPoP challenge), and only that one keeps the nonce for the
// next request and binds the proof to an access token. A change to one
// likely applies to the other.
type dpopTransport struct {
	next http.RoundTripper
	key  *DPoPKey
}

func (t *dpopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.send(req, req.Body, "")
	if err != nil {
		return resp, err
	}
	nonce := resp.Header.Get(DPoPNonceHeader)
	if resp.StatusCode != http.StatusBadRequest || nonce == "" || (req.Body != nil && req.GetBody == nil) {
		return resp, nil
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxNonceAnswer))
	resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	if rerr != nil || json.Unmarshal(b, &e) != nil || e.Error != ErrUseDPoPNonce {
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp, nil
	}
	var body io.ReadCloser
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return t.send(req, body, nonce)
}

// send sends the request with a fresh proof.
func (t *dpopTransport) send(req *http.Request, body io.ReadCloser, nonce string) (*http.Response, error) {
	proof, err := t.key.Proof(req.Method, req.URL, "", nonce)
	if err != nil {
		return nil, fmt.Errorf("sign a DPoP proof: %w", err)
	}
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set(DPoPHeader, proof)
	return t.next.RoundTrip(r)
}

// withDPoP returns hc with a transport that adds the key's proofs.
func withDPoP(hc *http.Client, key *DPoPKey) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = &dpopTransport{next: next, key: key}
	return c
}
