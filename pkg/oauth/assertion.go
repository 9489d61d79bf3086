package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
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
// base64url parts, a JSON header naming one of assertionAlgs, a JSON
// object of claims, the registered ones of their RFC 7519 types).
var ErrNotJWT = errors.New("not a JWT")

// assertionAlgs are the algorithms of a workload's JWT: those of a key
// pair, as the authorization server verifies it with the issuer's public
// keys.
var assertionAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// ParseAssertion reads a JWT's claims without verifying its signature. Its
// errors never quote the token.
func ParseAssertion(raw string) (*Assertion, error) {
	// go-jose parses a JWS with an empty signature; an assertion has one.
	if parts := strings.Split(raw, "."); len(parts) != 3 || parts[2] == "" {
		return nil, ErrNotJWT
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil {
		return nil, ErrNotJWT
	}
	var claims jwt.Claims
	var object map[string]json.RawMessage // nil for a JSON null
	if tok.UnsafeClaimsWithoutVerification(&claims, &object) != nil || object == nil {
		return nil, ErrNotJWT
	}
	a := &Assertion{Issuer: claims.Issuer, Subject: claims.Subject}
	if claims.Expiry != nil && *claims.Expiry > 0 {
		a.Expiry = claims.Expiry.Time()
	}
	return a, nil
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
	return jwtBearer(ctx, hc, tokenURL, c, "exchange the workload's JWT", assertion, scopes, resource)
}
