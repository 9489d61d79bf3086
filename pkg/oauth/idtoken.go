package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// IdentitySource says how ncmcp learned whose tokens it holds.
type IdentitySource string

// Identity sources, from strongest to weakest.
const (
	// IdentityVerified: an ID token issued to this client, verified
	// against the issuer's JWKS (OpenID Connect Core section 3.1.3.7).
	IdentityVerified IdentitySource = "verified_id_token"
	// IdentityUserinfo: the OpenID Connect userinfo endpoint's answer for
	// the access token (section 5.3), trusted as far as its transport.
	IdentityUserinfo IdentitySource = "userinfo"
	// IdentityTokenResponse: claims read, unverified, from the tokens of
	// the token response (an ID token issued to another client, or a JWT
	// access token), trusted as far as the token endpoint's transport.
	IdentityTokenResponse IdentitySource = "token_response"
	// IdentityUnknown: nothing says who logged in (opaque tokens from a
	// plain OAuth authorization server).
	IdentityUnknown IdentitySource = "unknown"
)

// Identity is who a login belongs to, as far as ncmcp could tell.
type Identity struct {
	// Subject is the sub claim; empty when Source is IdentityUnknown.
	Subject  string
	Username string
	Email    string
	Name     string
	// Source says how the identity was established.
	Source IdentitySource
	// OverTLS is set when the answer the identity was read from (token or
	// userinfo response) came over https; a verified ID token does not need
	// it.
	OverTLS bool
	// NonceChecked is set when a verified ID token carried this login's
	// nonce (a generation-1 server does not forward the nonce to the IdP).
	NonceChecked bool
}

// Display returns the most readable name for the identity.
func (i *Identity) Display() string {
	for _, s := range []string{i.Username, i.Email, i.Name, i.Subject} {
		if s != "" {
			return s
		}
	}
	return "an unknown user"
}

// Describe says in a few words how the identity was established.
func (i *Identity) Describe() string {
	return DescribeSource(i.Source, i.OverTLS)
}

// DescribeSource says in a few words how an identity was established.
func DescribeSource(s IdentitySource, overTLS bool) string {
	transport := "plain http on loopback"
	if overTLS {
		transport = "TLS"
	}
	switch s {
	case IdentityVerified:
		return "verified ID token"
	case IdentityUserinfo:
		return "userinfo endpoint over " + transport + ", not verified"
	case IdentityTokenResponse:
		return "read from the token response over " + transport + ", not verified"
	case IdentityUnknown:
		return "unknown: the server's tokens do not say"
	}
	return "not recorded"
}

// Identifier establishes the identity behind a token response, as well as
// the authorization server allows: an ID token that the authorization
// server issued itself, as an OpenID Provider with a JWKS, is verified
// (signature, iss, aud = this client, exp, nonce) and refused when it does
// not verify; an ID token relayed from elsewhere (a generation-2 server
// relays its IdP's tokens, issued to the server's own client) is read
// without verification, as are the claims of a JWT access token; else the
// userinfo endpoint is asked; else the identity stays unknown. It never
// claims a verification that did not happen.
type Identifier struct {
	// Issuer is the authorization server's issuer from its metadata.
	Issuer string
	// JWKSURI is the authorization server's jwks_uri; empty for a plain
	// OAuth authorization server.
	JWKSURI  string
	ClientID string
	// Algs are id_token_signing_alg_values_supported; empty means RS256.
	Algs []string
	// UserinfoEndpoint is the OpenID Connect userinfo endpoint, if any.
	UserinfoEndpoint string
	// TokenEndpoint is where the token response came from (for OverTLS).
	TokenEndpoint string
}

// jwtClaims are the claims ncmcp reads from ID and access tokens.
type jwtClaims struct {
	Issuer            string       `json:"iss"`
	Subject           string       `json:"sub"`
	Audience          audienceList `json:"aud"`
	PreferredUsername string       `json:"preferred_username"`
	Email             string       `json:"email"`
	Name              string       `json:"name"`
}

// audienceList is the aud claim: a string or an array of strings.
type audienceList []string

func (a *audienceList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// readClaims decodes the payload of a JWT without verifying it; ok is false
// for anything that is not a JWT with a JSON payload.
func readClaims(raw string) (c jwtClaims, ok bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return c, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, false
	}
	return c, json.Unmarshal(b, &c) == nil
}

func sameIssuer(a, b string) bool {
	return a != "" && strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

func isHTTPS(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https"
}

// Identify establishes whose tokens tok holds. nonce is the nonce of the
// authorization request, or empty after a refresh; a verified ID token that
// carries a nonce must carry this one. An error means an ID token that
// should verify did not (the login must not be stored), or a userinfo
// endpoint that failed.
func (v *Identifier) Identify(ctx context.Context, hc *http.Client, tok *oauth2.Token, nonce string) (*Identity, error) {
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		c, ok := readClaims(raw)
		if !ok && v.JWKSURI != "" {
			return nil, errors.New("verify ID token: it is not a JWT")
		}
		if ok && v.JWKSURI != "" && sameIssuer(c.Issuer, v.Issuer) {
			// The authorization server is an OpenID Provider that issued
			// this ID token to us: it must verify, audience included.
			return v.verify(ctx, hc, raw, nonce)
		}
		if ok && c.Subject != "" {
			return v.fromClaims(c, IdentityTokenResponse, v.TokenEndpoint), nil
		}
	}
	if v.UserinfoEndpoint != "" {
		id, err := Userinfo(ctx, hc, v.UserinfoEndpoint, tok.AccessToken)
		if err != nil {
			return nil, err
		}
		id.OverTLS = isHTTPS(v.UserinfoEndpoint)
		return id, nil
	}
	if c, ok := readClaims(tok.AccessToken); ok && c.Subject != "" {
		return v.fromClaims(c, IdentityTokenResponse, v.TokenEndpoint), nil
	}
	return &Identity{Source: IdentityUnknown}, nil
}

func (v *Identifier) fromClaims(c jwtClaims, src IdentitySource, from string) *Identity {
	return &Identity{Subject: c.Subject, Username: c.PreferredUsername, Email: c.Email, Name: c.Name, Source: src, OverTLS: isHTTPS(from)}
}

// verify checks raw with github.com/coreos/go-oidc: signature against the
// JWKS, iss, aud (the client id), exp, and the nonce when present.
func (v *Identifier) verify(ctx context.Context, hc *http.Client, raw, nonce string) (*Identity, error) {
	ctx = oidc.ClientContext(ctx, hc)
	keys := oidc.NewRemoteKeySet(ctx, v.JWKSURI)
	verifier := oidc.NewVerifier(v.Issuer, keys, &oidc.Config{ClientID: v.ClientID, SupportedSigningAlgs: v.Algs})
	tok, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("verify ID token: %w", err)
	}
	id := &Identity{Subject: tok.Subject, Source: IdentityVerified}
	if tok.Nonce != "" && nonce != "" {
		if subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 {
			return nil, errors.New("verify ID token: nonce does not match this login (replayed or injected token)")
		}
		id.NonceChecked = true
	}
	var claims jwtClaims
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("verify ID token: %w", err)
	}
	id.Username, id.Email, id.Name = claims.PreferredUsername, claims.Email, claims.Name
	if id.Subject == "" {
		return nil, errors.New("verify ID token: no sub claim")
	}
	return id, nil
}

// Userinfo asks the OpenID Connect userinfo endpoint who the access token
// belongs to (OpenID Connect Core section 5.3). The answer is trusted as far
// as the connection to the endpoint is.
func Userinfo(ctx context.Context, hc *http.Client, endpoint, accessToken string) (*Identity, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo: %s answered HTTP %d", endpoint, resp.StatusCode)
	}
	var c jwtClaims
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&c); err != nil {
		return nil, fmt.Errorf("userinfo: the answer of %s is not JSON", endpoint)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("userinfo: the answer of %s has no sub", endpoint)
	}
	return &Identity{Subject: c.Subject, Username: c.PreferredUsername, Email: c.Email, Name: c.Name, Source: IdentityUserinfo}, nil
}
