package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// ErrNoRevocation reports an IdP without an RFC 7009 endpoint.
var ErrNoRevocation = errors.New("the IdP has no revocation endpoint")

// RevokeError is a refusal from a revocation endpoint.
type RevokeError struct {
	URL         string
	Status      int
	Code        string
	Description string
}

func (e *RevokeError) Error() string {
	s := fmt.Sprintf("revoke at %s: HTTP %d", e.URL, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Revoke revokes a token at endpoint (RFC 7009 section 2.1) with the given
// token_type_hint ("refresh_token" or "access_token"), authenticating as
// the client the token was issued to.
func Revoke(ctx context.Context, hc *http.Client, endpoint string, c Client, token, hint string) error {
	if endpoint == "" {
		return ErrNoRevocation
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	secret, assertion, err := c.credentials()
	if err != nil {
		return err
	}
	basic := secret != "" && c.authStyle() != oauth2.AuthStyleInParams
	if !basic {
		form.Set("client_id", c.ID)
		if secret != "" {
			form.Set("client_secret", secret)
		}
	}
	for k, v := range assertion {
		form[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(secret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("revoke at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	e := &RevokeError{URL: endpoint, Status: resp.StatusCode}
	var f struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(b, &f) == nil {
		e.Code, e.Description = f.Error, f.Description
	}
	return e
}
