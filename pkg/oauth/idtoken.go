package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Identity is who an ID token says logged in.
type Identity struct {
	Subject  string
	Username string
	Email    string
	Name     string
	// NonceChecked is false when the ID token carried no nonce: a
	// generation-1 server does not forward the nonce to the IdP.
	NonceChecked bool
}

// Display returns the most readable name for the identity.
func (i *Identity) Display() string {
	for _, s := range []string{i.Username, i.Email, i.Name} {
		if s != "" {
			return s
		}
	}
	return i.Subject
}

// IDTokenVerifier checks ID tokens (OpenID Connect Core section 3.1.3.7)
// with github.com/coreos/go-oidc: signature against the IdP's JWKS, iss,
// aud (the client id), exp, and the nonce when present.
type IDTokenVerifier struct {
	Issuer   string
	JWKSURI  string
	ClientID string
	// Algs are the IdP's id_token_signing_alg_values_supported; empty means RS256.
	Algs []string
}

// Verify checks raw and returns the identity in it. nonce is the nonce the
// authorization request sent, or empty when none was (a refresh): a nonce in
// the token must then equal it.
func (v *IDTokenVerifier) Verify(ctx context.Context, hc *http.Client, raw, nonce string) (*Identity, error) {
	if v.JWKSURI == "" {
		return nil, fmt.Errorf("verify ID token: the IdP's metadata has no jwks_uri")
	}
	ctx = oidc.ClientContext(ctx, hc)
	keys := oidc.NewRemoteKeySet(ctx, v.JWKSURI)
	verifier := oidc.NewVerifier(v.Issuer, keys, &oidc.Config{ClientID: v.ClientID, SupportedSigningAlgs: v.Algs})
	tok, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("verify ID token: %w", err)
	}
	id := &Identity{Subject: tok.Subject}
	if tok.Nonce != "" && nonce != "" {
		if subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 {
			return nil, fmt.Errorf("verify ID token: nonce does not match this login (replayed or injected token)")
		}
		id.NonceChecked = true
	}
	var claims struct {
		PreferredUsername string `json:"preferred_username"`
		Email             string `json:"email"`
		Name              string `json:"name"`
	}
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("verify ID token: %w", err)
	}
	id.Username, id.Email, id.Name = claims.PreferredUsername, claims.Email, claims.Name
	if id.Subject == "" {
		return nil, fmt.Errorf("verify ID token: no sub claim")
	}
	return id, nil
}

// Userinfo asks the OpenID Connect userinfo endpoint who the access token
// belongs to (OpenID Connect Core section 5.3). The answer is trusted as far
// as the TLS connection to the endpoint is.
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
	var c struct {
		Sub               string `json:"sub"`
		PreferredUsername string `json:"preferred_username"`
		Email             string `json:"email"`
		Name              string `json:"name"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&c); err != nil {
		return nil, fmt.Errorf("userinfo: the answer of %s is not JSON", endpoint)
	}
	if c.Sub == "" {
		return nil, fmt.Errorf("userinfo: the answer of %s has no sub", endpoint)
	}
	return &Identity{Subject: c.Sub, Username: c.PreferredUsername, Email: c.Email, Name: c.Name}, nil
}
