package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Assertion is what a JWT says of itself, read without verifying it: the
// authorization server that takes it as a grant verifies it.
type Assertion struct {
	Issuer, Subject string
	// Expiry is the exp claim; zero when it has none.
	Expiry time.Time
}

// ErrNotJWT reports an assertion that is not a signed JWT (three
// base64url parts, a JSON header naming its alg, a JSON object of claims).
var ErrNotJWT = errors.New("not a JWT")

// ParseAssertion reads a JWT's claims without verifying its signature. Its
// errors never quote the token.
func ParseAssertion(raw string) (*Assertion, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[2] == "" {
		return nil, ErrNotJWT
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Issuer  string          `json:"iss"`
		Subject string          `json:"sub"`
		Expiry  json.RawMessage `json:"exp"`
	}
	if !decodePart(parts[0], &header) || header.Alg == "" || strings.EqualFold(header.Alg, "none") || !decodePart(parts[1], &claims) {
		return nil, ErrNotJWT
	}
	a := &Assertion{Issuer: claims.Issuer, Subject: claims.Subject}
	var exp float64
	if len(claims.Expiry) > 0 && json.Unmarshal(claims.Expiry, &exp) == nil && exp > 0 {
		a.Expiry = time.Unix(int64(exp), 0)
	}
	return a, nil
}

// decodePart decodes one base64url part of a JWT into v, a JSON object.
func decodePart(part string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
	if err != nil || len(b) == 0 || b[0] != '{' {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

// WorkloadJWTBearer exchanges a workload's own JWT (workload identity
// federation: a CI job's or a Kubernetes service account's token) for an
// access token at the authorization server, as an RFC 7523 authorization
// grant, with the scopes and the resource indicator when not empty. The
// client authenticates as c says; a client without an id and secret sends
// neither (RFC 7523 makes client authentication optional).
//
// It makes exactly one request: a refused assertion is not sent again,
// not even with the client authenticated another way.
func WorkloadJWTBearer(ctx context.Context, hc *http.Client, tokenURL string, c Client, assertion string, scopes []string, resource string) (*oauth2.Token, error) {
	if c.method() == "" {
		// x/oauth2 would try HTTP Basic and then the form: two requests.
		c.AuthMethod = "client_secret_basic"
	}
	p := url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion}}
	setScopeAndResource(p, scopes, resource)
	tok, err := c.request(ctx, hc, tokenURL, p)
	return checked("exchange the workload's JWT", tokenURL, tok, err)
}
