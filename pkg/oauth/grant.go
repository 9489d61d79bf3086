package oauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Grant types and token types of the grants beyond the authorization code.
const (
	// GrantClientCredentials is RFC 6749 section 4.4.
	GrantClientCredentials = "client_credentials"
	// GrantTokenExchange is RFC 8693.
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// GrantJWTBearer is RFC 7523 section 2.1.
	GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// TokenTypeIDToken is the token type of an OpenID Connect ID token.
	TokenTypeIDToken = "urn:ietf:params:oauth:token-type:id_token"
	// TokenTypeIDJAG is the identity assertion authorization grant of the
	// MCP enterprise-managed authorization extension (SEP-990).
	TokenTypeIDJAG = "urn:ietf:params:oauth:token-type:id-jag"
	// ClientAssertionType is the client_assertion_type of private_key_jwt.
	ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// ClientCredentials gets a token for the client itself (RFC 6749 section
// 4.4), authenticated by its secret or a private_key_jwt assertion, for the
// resource indicator resource and the scopes when not empty.
func ClientCredentials(ctx context.Context, hc *http.Client, tokenURL string, c Client, scopes []string, resource string) (*oauth2.Token, error) {
	p := url.Values{"grant_type": {GrantClientCredentials}}
	setScopeAndResource(p, scopes, resource)
	tok, err := c.request(ctx, hc, tokenURL, p)
	return checked("get a token with the client credentials", tokenURL, tok, err)
}

// ExchangeIDToken trades a user's ID token from their identity provider for
// an identity assertion authorization grant (ID-JAG) at the provider's
// token endpoint (RFC 8693): a signed statement that the user may use the
// resource through the authorization server audience. idpClientID is sent
// as client_id when not empty.
func ExchangeIDToken(ctx context.Context, hc *http.Client, idpTokenURL, idpClientID, idToken, audience, resource string) (string, error) {
	p := url.Values{
		"grant_type":           {GrantTokenExchange},
		"requested_token_type": {TokenTypeIDJAG},
		"subject_token":        {idToken},
		"subject_token_type":   {TokenTypeIDToken},
		"audience":             {audience},
	}
	if resource != "" {
		p.Set("resource", resource)
	}
	tok, err := Client{ID: idpClientID, AuthMethod: "none"}.request(ctx, hc, idpTokenURL, p)
	tok, err = checked("exchange the ID token", idpTokenURL, tok, err)
	if err != nil {
		return "", err
	}
	if t, _ := tok.Extra("issued_token_type").(string); t != "" && t != TokenTypeIDJAG {
		return "", &TokenError{Op: "exchange the ID token", URL: idpTokenURL, Status: http.StatusOK, Code: "invalid_response", Description: "issued a " + t + ", not an ID-JAG"}
	}
	if strings.Count(tok.AccessToken, ".") != 2 {
		return "", &TokenError{Op: "exchange the ID token", URL: idpTokenURL, Unusable: true}
	}
	return tok.AccessToken, nil
}

// JWTBearer redeems a JWT authorization grant, such as an ID-JAG, at the
// authorization server (RFC 7523 section 2.1), authenticated as the client.
func JWTBearer(ctx context.Context, hc *http.Client, tokenURL string, c Client, assertion string, scopes []string) (*oauth2.Token, error) {
	return jwtBearer(ctx, hc, tokenURL, c, "redeem the identity assertion", assertion, scopes, "")
}

// jwtBearer sends an RFC 7523 JWT authorization grant with the scopes and
// the resource indicator when not empty; op names the operation in its
// errors.
func jwtBearer(ctx context.Context, hc *http.Client, tokenURL string, c Client, op, assertion string, scopes []string, resource string) (*oauth2.Token, error) {
	p := url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion}}
	setScopeAndResource(p, scopes, resource)
	tok, err := c.request(ctx, hc, tokenURL, p)
	return checked(op, tokenURL, tok, err)
}

func setScopeAndResource(p url.Values, scopes []string, resource string) {
	if len(scopes) > 0 {
		p.Set("scope", strings.Join(scopes, " "))
	}
	if resource != "" {
		p.Set("resource", resource)
	}
}
