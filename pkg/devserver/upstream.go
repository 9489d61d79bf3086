package devserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// upstream is the MCP server's own confidential client (ServerClientID) at
// the OP. Flow 2 and the generation-2 proxy use it; both talk to the OP over
// HTTP like a separate server would, so StopIdP affects them too.
type upstream struct {
	clientID    string
	secret      string
	redirectURI string // {URL}/oauth/callback

	authEndpoint       string
	tokenEndpoint      string
	userinfoEndpoint   string
	revocationEndpoint string

	client   *http.Client
	idTokens *gooidc.IDTokenVerifier // signature, issuer, aud = clientID, exp
}

// upstreamTokens is a token response of the OP.
type upstreamTokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	IDToken      string `json:"id_token"`
}

// upstreamError is an error answer of the OP (or a failure to reach it,
// with Status 0).
type upstreamError struct {
	Status      int
	Code        string
	Description string
}

func (e *upstreamError) Error() string {
	if e.Status == 0 {
		return "identity provider unreachable: " + e.Description
	}
	return fmt.Sprintf("identity provider answered %d %s: %s", e.Status, e.Code, e.Description)
}

// authorizeURL returns the OP's authorization URL for the server's client.
func (u *upstream) authorizeURL(state, challenge string, scopes []string, extra url.Values) string {
	q := url.Values{
		"client_id":             {u.clientID},
		"redirect_uri":          {u.redirectURI},
		"response_type":         {"code"},
		"scope":                 {strings.Join(scopes, " ")},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"prompt":                {"consent"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return u.authEndpoint + "?" + q.Encode()
}

// post sends a form authenticated with the server's client (client_secret_basic).
func (u *upstream) post(ctx context.Context, endpoint string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(u.clientID), url.QueryEscape(u.secret))
	return u.client.Do(req)
}

// token sends a token request and decodes the answer.
func (u *upstream) token(ctx context.Context, form url.Values) (*upstreamTokens, error) {
	resp, err := u.post(ctx, u.tokenEndpoint, form)
	if err != nil {
		return nil, &upstreamError{Description: "token request failed"}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &upstreamError{Status: resp.StatusCode, Description: "reading the token response failed"}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, &upstreamError{Status: resp.StatusCode, Code: e.Error, Description: e.Description}
	}
	var t upstreamTokens
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return nil, &upstreamError{Status: resp.StatusCode, Code: "invalid_response", Description: "the token response is not usable"}
	}
	return &t, nil
}

// exchangeCode redeems an authorization code issued to the server's client.
func (u *upstream) exchangeCode(ctx context.Context, code, verifier string) (*upstreamTokens, error) {
	return u.token(ctx, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {u.redirectURI},
		"code_verifier": {verifier},
	})
}

// refresh uses a refresh token issued to the server's client.
func (u *upstream) refresh(ctx context.Context, refreshToken string) (*upstreamTokens, error) {
	return u.token(ctx, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	})
}

// subject verifies an ID token issued to the server's client and returns
// its sub claim.
func (u *upstream) subject(ctx context.Context, rawIDToken string) (string, error) {
	if rawIDToken == "" {
		return "", errors.New("no id_token in the token response")
	}
	idt, err := u.idTokens.Verify(ctx, rawIDToken)
	if err != nil {
		return "", err
	}
	if idt.Subject == "" {
		return "", errors.New("the id_token has no sub")
	}
	return idt.Subject, nil
}

// revoke revokes a token at the OP (RFC 7009).
func (u *upstream) revoke(ctx context.Context, token, hint string) error {
	resp, err := u.post(ctx, u.revocationEndpoint, url.Values{"token": {token}, "token_type_hint": {hint}})
	if err != nil {
		return &upstreamError{Description: "revocation request failed"}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return &upstreamError{Status: resp.StatusCode, Description: "revocation refused"}
	}
	return nil
}
