// Package discovery finds out how to authenticate to a Nextcloud MCP
// server: its RFC 9728 protected-resource metadata, the metadata of the
// authorization server it names (OIDC discovery or RFC 8414), and from
// those the server generation.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Server generations (see docs/servers.md).
const (
	// Generation1 servers pass the browser through to the IdP, whose issuer
	// is authorization_servers[0]; codes are exchanged at the IdP.
	Generation1 = 1
	// Generation2 servers are their own authorization server: the issuer is
	// the server itself and codes are exchanged at {server}/oauth/token.
	Generation2 = 2
)

// maxMetadataBytes bounds how much of a metadata document is read.
const maxMetadataBytes = 1 << 20

// ProtectedResource is RFC 9728 protected-resource metadata.
type ProtectedResource struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
}

// Provider is authorization-server metadata: OpenID Connect Discovery 1.0
// or RFC 8414, whose fields coincide for what ncmcp uses.
type Provider struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported,omitempty"`
}

// Result is what Discover learned about a server.
type Result struct {
	// ServerURL is the normalised server base URL.
	ServerURL string
	// ResourceURL is where the protected-resource metadata was found.
	ResourceURL string
	Resource    ProtectedResource
	// Issuer is authorization_servers[0].
	Issuer     string
	Generation int
	// Provider is the IdP's OIDC discovery (generation 1) or the server's
	// RFC 8414 metadata (generation 2).
	Provider Provider
	// Warnings describe metadata that looks wrong for this client, such as
	// endpoints on internal host names.
	Warnings []string
}

// MetadataError reports a metadata document that could not be used.
type MetadataError struct {
	URL    string
	Reason string
}

func (e *MetadataError) Error() string { return fmt.Sprintf("%s: %s", e.URL, e.Reason) }

// UnreachableError reports a metadata document that could not be fetched:
// no connection, TLS failure, timeout.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string { return fmt.Sprintf("%s unreachable: %v", e.URL, e.Err) }
func (e *UnreachableError) Unwrap() error { return e.Err }

// NormalizeServerURL checks a server URL and returns it without a trailing
// slash, scheme and host in lower case. It keeps a "/mcp" suffix: that may
// be the MCP endpoint or part of the base path of a server mounted under
// /mcp, which only discovery can tell (see Discover).
func NormalizeServerURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("invalid server URL %q: want http(s)://host[:port][/path]", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("invalid server URL %q: no query, fragment or credentials allowed", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.Host = strings.ToLower(u.Host)
	u.Scheme = strings.ToLower(u.Scheme)
	return u.String(), nil
}

// Options adjust discovery for servers whose metadata is wrong for the
// client, typically behind a proxy that publishes internal host names.
type Options struct {
	// Issuer replaces authorization_servers[0] from the protected-resource
	// metadata.
	Issuer string
	// PublicIssuer replaces the scheme and host of every endpoint in the
	// authorization server's metadata that is on the issuer's own host
	// (which the client may not reach, e.g. http://app).
	PublicIssuer string
	// Generation forces the server generation (1 or 2) instead of
	// detecting it.
	Generation int
}

// Discover fetches the server's protected-resource metadata (at
// /.well-known/oauth-protected-resource/mcp, then without /mcp), decides the
// generation, and fetches the authorization server's metadata. Redirects are
// followed as the client does.
func Discover(ctx context.Context, hc *http.Client, serverURL string) (*Result, error) {
	return DiscoverWith(ctx, hc, serverURL, Options{})
}

// DiscoverWith is Discover with overrides.
func DiscoverWith(ctx context.Context, hc *http.Client, serverURL string, o Options) (*Result, error) {
	given, err := NormalizeServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	// The URL given is the server's base URL, or its MCP endpoint
	// ({base}/mcp): try it as the base first, then its parent.
	bases := []string{given}
	if parent, ok := strings.CutSuffix(given, "/mcp"); ok && strings.Count(parent, "/") >= 2 {
		bases = append(bases, parent)
	}
	// Under the endpoint, a server may answer anything (401 from its auth
	// middleware, 406, a catch-all page): any failure there tries the
	// parent, and the first failure is reported when both fail.
	res := &Result{}
	var prmErr error
	for i, base := range bases {
		res.ServerURL = base
		err := res.fetchResource(ctx, hc)
		if i == 0 {
			prmErr = err
		}
		if err == nil {
			prmErr = nil
			break
		}
	}
	if prmErr != nil {
		return nil, fmt.Errorf("protected-resource metadata: %w", prmErr)
	}
	base := res.ServerURL
	if len(res.Resource.AuthorizationServers) == 0 || res.Resource.AuthorizationServers[0] == "" {
		return nil, fmt.Errorf("protected-resource metadata: %w", &MetadataError{URL: res.ResourceURL, Reason: "names no authorization_servers"})
	}
	res.Issuer = res.Resource.AuthorizationServers[0]
	if o.Issuer != "" {
		res.Issuer = strings.TrimRight(o.Issuer, "/")
	}
	res.Generation = DetectGeneration(base, res.Issuer)
	if o.Generation != 0 {
		res.Generation = o.Generation
	}

	var metaURL string
	if res.Generation == Generation2 {
		metaURL = base + "/.well-known/oauth-authorization-server"
	} else {
		metaURL = strings.TrimRight(res.Issuer, "/") + "/.well-known/openid-configuration"
	}
	if err := getJSON(ctx, hc, metaURL, &res.Provider); err != nil {
		if hint := internalHostHint(res.Issuer, base); hint != "" {
			return nil, fmt.Errorf("authorization server metadata: %w (%s)", err, hint)
		}
		return nil, fmt.Errorf("authorization server metadata: %w", err)
	}
	if err := res.Provider.check(metaURL, res.Issuer); err != nil {
		return nil, fmt.Errorf("authorization server metadata: %w", err)
	}
	if o.PublicIssuer != "" {
		if err := res.Provider.rewriteHost(o.PublicIssuer); err != nil {
			return nil, err
		}
	}
	for _, e := range res.Provider.endpoints() {
		if hint := internalHostHint(*e.url, base); hint != "" {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the %s %s %s", e.name, *e.url, hint))
		}
	}
	return res, nil
}

// fetchResource reads the protected-resource metadata of res.ServerURL: at
// /.well-known/oauth-protected-resource/mcp, then without /mcp.
func (res *Result) fetchResource(ctx context.Context, hc *http.Client) error {
	var err error
	for _, p := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		u := res.ServerURL + p
		if err = getJSON(ctx, hc, u, &res.Resource); err == nil {
			res.ResourceURL = u
			return nil
		}
		if !isNotFound(err) {
			return err
		}
	}
	return err
}

func isNotFound(err error) bool {
	var me *MetadataError
	return errors.As(err, &me) && strings.HasPrefix(me.Reason, "HTTP 404")
}

type endpoint struct {
	name string
	url  *string
}

func (p *Provider) endpoints() []endpoint {
	return []endpoint{
		{"authorization_endpoint", &p.AuthorizationEndpoint}, {"token_endpoint", &p.TokenEndpoint},
		{"userinfo_endpoint", &p.UserinfoEndpoint}, {"jwks_uri", &p.JWKSURI},
		{"registration_endpoint", &p.RegistrationEndpoint}, {"revocation_endpoint", &p.RevocationEndpoint},
	}
}

// rewriteHost points the endpoints on the issuer's host at public instead.
func (p *Provider) rewriteHost(public string) error {
	pu, err := url.Parse(public)
	if err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https") {
		return fmt.Errorf("invalid public issuer URL %q: want http(s)://host[:port]", public)
	}
	iu, err := url.Parse(p.Issuer)
	if err != nil {
		return fmt.Errorf("issuer %q: %w", p.Issuer, err)
	}
	for _, e := range p.endpoints() {
		if *e.url == "" {
			continue
		}
		u, err := url.Parse(*e.url)
		if err != nil || !strings.EqualFold(u.Host, iu.Host) {
			continue
		}
		u.Scheme, u.Host = pu.Scheme, pu.Host
		*e.url = u.String()
	}
	return nil
}

// internalHostHint explains a URL whose host looks internal to the
// server's network: a single-label host such as "app", or a loopback
// address named by a server that is not itself on loopback.
func internalHostHint(raw, serverURL string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	h := u.Hostname()
	loopback := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	internal := false
	if loopback(h) {
		if su, err := url.Parse(serverURL); err == nil && !loopback(su.Hostname()) {
			internal = true
		}
	} else if net.ParseIP(h) == nil && !strings.Contains(h, ".") {
		internal = true
	}
	if !internal {
		return ""
	}
	return "names the host \"" + h + "\", which looks internal to the server's network: pass --issuer or --public-issuer with an address this machine can reach"
}

// DetectGeneration returns Generation2 when the issuer is the server itself
// and Generation1 otherwise.
func DetectGeneration(serverURL, issuer string) int {
	s, err1 := NormalizeServerURL(serverURL)
	i, err2 := NormalizeServerURL(issuer)
	if err1 == nil && err2 == nil && s == i {
		return Generation2
	}
	return Generation1
}

func (p *Provider) check(metaURL, issuer string) error {
	if p.Issuer == "" {
		return &MetadataError{URL: metaURL, Reason: "no issuer"}
	}
	if strings.TrimRight(p.Issuer, "/") != strings.TrimRight(issuer, "/") {
		return &MetadataError{URL: metaURL, Reason: fmt.Sprintf("issuer %q does not match the expected %q", p.Issuer, issuer)}
	}
	for name, v := range map[string]string{"authorization_endpoint": p.AuthorizationEndpoint, "token_endpoint": p.TokenEndpoint} {
		if v == "" {
			return &MetadataError{URL: metaURL, Reason: "no " + name}
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &MetadataError{URL: metaURL, Reason: fmt.Sprintf("%s %q is not an http(s) URL", name, v)}
		}
	}
	return nil
}

// SupportsS256 reports whether the metadata lists S256 among
// code_challenge_methods_supported (absent means unknown, reported as false).
func (p *Provider) SupportsS256() bool {
	for _, m := range p.CodeChallengeMethodsSupported {
		if m == "S256" {
			return true
		}
	}
	return false
}

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &MetadataError{URL: u, Reason: err.Error()}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return &UnreachableError{URL: u, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes))
	if err != nil {
		return &MetadataError{URL: u, Reason: "reading the answer: " + err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		return &MetadataError{URL: u, Reason: fmt.Sprintf("HTTP %d %s", resp.StatusCode, snippet(body))}
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err := json.Unmarshal(body, v); err != nil {
		reason := "the answer is not JSON"
		if ct != "" && ct != "application/json" {
			reason += " (Content-Type " + ct + ")"
		}
		return &MetadataError{URL: u, Reason: reason + ": is this the MCP server's address?"}
	}
	return nil
}

// snippet returns a short, single-line prefix of an error body.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
