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
// the OP. Flow 2 and the generation-2 authorization server use it; both
// talk to the OP over HTTP like a separate server would, so StopIdP affects
// them too.
type upstream struct {
	clientID    string
	secret      string
	redirectURI string // {URL}/oauth/callback

	authEndpoint       string
	tokenEndpoint      string
	revocationEndpoint string

	client   *http.Client
	idTokens *gooidc.IDTokenVerifier // signature, issuer, aud = clientID, exp
}

// idpResponse is an answer of the OP's token endpoint.
type idpResponse struct {
	status int
	body   []byte
}

// upstreamTokens is a successful token response of the OP.
type upstreamTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// errUnreachable reports that the OP could not be reached.
var errUnreachable = errors.New("identity provider unreachable")

// query is a query string whose parameters keep their order.
type query [][2]string

// encode returns the query, form-encoded in order.
func (q query) encode() string {
	parts := make([]string, 0, len(q))
	for _, kv := range q {
		parts = append(parts, url.QueryEscape(kv[0])+"="+url.QueryEscape(kv[1]))
	}
	return strings.Join(parts, "&")
}

// withQuery appends q to the query of uri.
func withQuery(uri string, q query) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + q.encode()
}

// authorizeURL returns the OP's authorization URL with the parameters in
// the given order.
func (u *upstream) authorizeURL(q query) string { return withQuery(u.authEndpoint, q) }

// post sends a form authenticated with the server's client (client_secret_basic).
func (u *upstream) post(ctx context.Context, endpoint string, form url.Values) (*idpResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(u.clientID), url.QueryEscape(u.secret))
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, errUnreachable
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, errUnreachable
	}
	return &idpResponse{status: resp.StatusCode, body: body}, nil
}

// tokens decodes a successful token response.
func (r *idpResponse) tokens() (*upstreamTokens, error) {
	if r.status != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(r.body, &e)
		return nil, fmt.Errorf("identity provider answered %d %s: %s", r.status, e.Error, e.Description)
	}
	var t upstreamTokens
	if err := json.Unmarshal(r.body, &t); err != nil || t.AccessToken == "" {
		return nil, errors.New("the identity provider's token response is not usable")
	}
	return &t, nil
}

// exchangeCode redeems an authorization code issued to the server's
// client, with the PKCE verifier if there is one.
func (u *upstream) exchangeCode(ctx context.Context, code, verifier string) (*idpResponse, error) {
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {u.redirectURI},
	}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	return u.post(ctx, u.tokenEndpoint, form)
}

// refresh uses a refresh token issued to the server's client.
func (u *upstream) refresh(ctx context.Context, refreshToken string) (*idpResponse, error) {
	return u.post(ctx, u.tokenEndpoint, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	})
}

// subject verifies an ID token issued to the server's client, and its
// nonce if one is given, and returns its sub claim.
func (u *upstream) subject(ctx context.Context, rawIDToken, nonce string) (string, error) {
	if rawIDToken == "" {
		return "", errors.New("no id_token in the token response")
	}
	idt, err := u.idTokens.Verify(ctx, rawIDToken)
	if err != nil {
		return "", err
	}
	if nonce != "" && idt.Nonce != nonce {
		return "", errors.New("the id_token's nonce is not the one sent")
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
		return err
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("revocation refused with %d", resp.status)
	}
	return nil
}

// observingTransport reports every request the MCP server sends on its own
// (to the OP, to the Login Flow stand-in) to Server.observe, as the
// recordings list them in upstream_requests: "PARTY: METHOD URL STATUS",
// the URL without its query.
type observingTransport struct {
	party string
	s     *Server
	next  http.RoundTripper
}

func (t observingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	u := *r.URL
	u.RawQuery = ""
	t.s.observe(fmt.Sprintf("%s: %s %s %d", t.party, r.Method, u.String(), status))
	return resp, err
}
