// Package registration registers OAuth clients dynamically (RFC 7591) and
// deletes registrations (RFC 7592).
package registration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Request is client metadata (RFC 7591 section 2).
type Request struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	ApplicationType         string   `json:"application_type,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// NativeClient returns the metadata of a native public client (RFC 8252)
// with the given loopback redirect URIs.
func NativeClient(redirectURIs ...string) Request {
	return Request{
		RedirectURIs:            redirectURIs,
		ClientName:              "ncmcp",
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: "none",
		ApplicationType:         "native",
	}
}

// Response is a registration (RFC 7591 section 3.2.1).
type Response struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt   int64    `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string   `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string   `json:"registration_client_uri,omitempty"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
}

// SecretExpiry returns when the client secret expires; zero means never.
func (r *Response) SecretExpiry() time.Time {
	if r.ClientSecretExpiresAt <= 0 {
		return time.Time{}
	}
	return time.Unix(r.ClientSecretExpiresAt, 0)
}

// Error is a refusal from a registration or management endpoint. It never carries a response body beyond the OAuth error fields.
type Error struct {
	Op          string
	URL         string
	Status      int
	Code        string
	Description string
	// RetryAfter is set on HTTP 429 from the Retry-After header.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s answered HTTP %d", e.Op, e.URL, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Status == http.StatusTooManyRequests && e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// NotSupported reports a server that does not register clients of this kind.
func (e *Error) NotSupported() bool {
	return e.Code == "registration_not_supported" || e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed
}

// UnknownClient reports an answer meaning the client is not registered
// (any more): "Unknown client_id", invalid_client.
func UnknownClient(code, description string) bool {
	return code == "invalid_client" || strings.Contains(strings.ToLower(description), "unknown client")
}

func oauthError(op, u string, resp *http.Response, body []byte) *Error {
	e := &Error{Op: op, URL: u, Status: resp.StatusCode}
	var f struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &f) == nil {
		e.Code, e.Description = f.Error, f.Description
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// retryAfter parses Retry-After (seconds or an HTTP date, RFC 9110 10.2.3).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	const most = 24 * time.Hour // longer waits are reported as a day, never overflow
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
		if n > int64(most/time.Second) {
			return most
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), most)
	}
	return 0
}

const maxBody = 1 << 20

// Register posts req to endpoint (RFC 7591 section 3.1) once.
func Register(ctx context.Context, hc *http.Client, endpoint string, req Request) (*Response, error) {
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("register a client at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("register a client at %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return nil, oauthError("register a client", endpoint, resp, b)
	}
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("register a client at %s: the answer is not JSON", endpoint)
	}
	if r.ClientID == "" {
		return nil, fmt.Errorf("register a client at %s: the answer has no client_id", endpoint)
	}
	if r.RegistrationClientURI != "" {
		if u, err := url.Parse(r.RegistrationClientURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("register a client at %s: registration_client_uri is not an http(s) URL", endpoint)
		}
	}
	return &r, nil
}

// Delete removes a registration at its registration_client_uri
// (RFC 7592 section 2.3). A registration that is already gone counts as
// deleted.
func Delete(ctx context.Context, hc *http.Client, clientURI, accessToken string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, clientURI, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("delete the registration at %s: %w", clientURI, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK, http.StatusNotFound, http.StatusGone:
		return nil
	}
	return oauthError("delete the registration", clientURI, resp, b)
}
