// Package discovery finds out how to get authorized at an MCP server, in the
// order of the MCP authorization specification (2025-11-25): the MCP
// endpoint's 401 challenge, its protected-resource metadata (RFC 9728),
// the authorization server's metadata (RFC 8414, OpenID Connect Discovery,
// path-aware), and, for servers without protected-resource metadata, the
// 2025-03-26 fallback to the server's own origin. It also tells the
// Nextcloud MCP server's generations apart.
package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ncmcp/ncmcp/pkg/wwwauth"
)

// Generations of the Nextcloud MCP server (see docs/servers.md).
const (
	// GenerationOther is any other MCP server: its authorization server is
	// elsewhere and it has no pass-through route.
	GenerationOther = 0
	// Generation1 servers (up to v0.64) pass the browser through their
	// own /oauth/authorize to the IdP named in their metadata; codes are
	// exchanged at the IdP.
	Generation1 = 1
	// Generation2 servers (v0.65 on) are their own authorization server.
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

// Provider is authorization-server metadata: RFC 8414 or OpenID Connect
// Discovery 1.0, whose fields coincide for what ncmcp uses.
type Provider struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported,omitempty"`
	// DPoPSigningAlgValuesSupported lists the algorithms of the DPoP proofs
	// (RFC 9449) the authorization server takes: it offers DPoP.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// ClientIDMetadataDocumentSupported is set by authorization servers
	// that take an https URL of a client ID metadata document as client_id.
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported is set by authorization
	// servers that name themselves (iss) in every authorization response
	// (RFC 9207): a response without iss is then refused.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// Step is one thing discovery tried, for 'ncmcp doctor'.
type Step struct {
	// What is what the step looked for: StepEndpoint, StepResource,
	// StepAuthorization or StepPassThrough.
	What string `json:"what"`
	URL  string `json:"url"`
	// Outcome is what came of it: "HTTP 401 with a challenge", "found",
	// "HTTP 404", an error, "defaults".
	Outcome string `json:"outcome"`
	// Used is set for the answer discovery went on with.
	Used bool `json:"used"`
}

// Result is what Discover learned about a server.
type Result struct {
	// ServerURL is the server's key: the MCP endpoint without a final /mcp
	// (a Nextcloud MCP server's base URL).
	ServerURL string
	// Endpoint is the MCP endpoint.
	Endpoint string
	// Challenge is the endpoint's WWW-Authenticate Bearer challenge to an
	// unauthenticated request, if it gave one.
	Challenge    wwwauth.Challenge
	HasChallenge bool
	// ResourceURL is where the protected-resource metadata was found;
	// empty when the server has none (Legacy).
	ResourceURL string
	Resource    ProtectedResource
	// Legacy is set for a server without protected-resource metadata: its
	// own origin is the authorization server (MCP 2025-03-26).
	Legacy bool
	// Issuer is the authorization server: authorization_servers[0], the
	// server's origin when Legacy, or the --issuer override.
	Issuer     string
	Generation int
	// Provider is the authorization server's metadata (in Legacy mode
	// possibly the default endpoints).
	Provider Provider
	// Steps are what was tried, in order.
	Steps []Step
	// Warnings describe metadata that looks wrong for this client, such as
	// endpoints on internal host names.
	Warnings []string
}

// ResourceIndicator returns the value of the resource parameter (RFC 8707)
// for authorization and token requests: the protected-resource metadata's
// resource; empty without metadata, and for a generation-1 server, whose
// IdP does not know its MCP server as a resource.
func (r *Result) ResourceIndicator() string {
	if r.Legacy || r.Generation == Generation1 {
		return ""
	}
	return r.Resource.Resource
}

// MetadataError reports a metadata document that could not be used.
type MetadataError struct {
	URL    string
	Reason string
}

func (e *MetadataError) Error() string { return fmt.Sprintf("%s: %s", e.URL, e.Reason) }

// UnreachableError reports a document that could not be fetched: no
// connection, TLS failure, timeout, a refused redirect.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string { return fmt.Sprintf("%s unreachable: %v", e.URL, e.Err) }
func (e *UnreachableError) Unwrap() error { return e.Err }

// NotMCPError reports a URL where no MCP server answers: neither of the
// endpoint's candidates answered an MCP initialize like an MCP server (a
// 401 or 403 challenge, or a JSON or event-stream success), and there is
// no protected-resource metadata either.
type NotMCPError struct {
	// Tried are the candidates with what each answered.
	Tried []string
}

func (e *NotMCPError) Error() string {
	return "not an MCP server: " + strings.Join(e.Tried, "; ") + "; and no protected-resource metadata"
}

// ResourceMismatchError reports protected-resource metadata that names
// another resource than the server it was fetched for (RFC 9728 section
// 3.3): its authorization servers are not to be used for this server.
type ResourceMismatchError struct {
	URL      string
	Resource string
	Endpoint string
}

func (e *ResourceMismatchError) Error() string {
	return fmt.Sprintf("the protected-resource metadata at %s is for %q, not for %s: refusing to get authorized for another resource", e.URL, e.Resource, e.Endpoint)
}

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

// ServerKey returns the key a server is stored under for an MCP endpoint:
// the endpoint without a final /mcp.
func ServerKey(endpoint string) string {
	if base, ok := strings.CutSuffix(endpoint, "/mcp"); ok && strings.Count(base, "/") >= 2 {
		return base
	}
	return endpoint
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
	// Trace, if set, gets each step as it is made, also those of a
	// discovery that fails.
	Trace func(Step)
}

// Discover runs discovery for the server at serverURL (its base URL or its
// MCP endpoint) without overrides.
func Discover(ctx context.Context, hc *http.Client, serverURL string) (*Result, error) {
	return DiscoverWith(ctx, hc, serverURL, Options{})
}

// DiscoverWith runs discovery, in the order of the MCP authorization
// specification:
//
//  1. an unauthenticated MCP request to the endpoint ({given}/mcp, else the
//     URL given) for its 401 challenge (resource_metadata, scope);
//  2. the protected-resource metadata: at the challenge's resource_metadata
//     URL, else at /.well-known/oauth-protected-resource with the endpoint's
//     path inserted, else at the root; its resource must name this server;
//  3. without any, the 2025-03-26 fallback: the server's origin is the
//     authorization server;
//  4. the authorization server's metadata: for an issuer with a path P,
//     /.well-known/oauth-authorization-server/P,
//     /.well-known/openid-configuration/P, P/.well-known/openid-configuration;
//     without a path, the first two without P;
//  5. the generation: the server is its own authorization server (2), or it
//     has the Nextcloud pass-through route /oauth/authorize (1), or neither.
//
// Redirects are followed on the same origin, and to the authorization
// server's origin for its metadata; never elsewhere.
func DiscoverWith(ctx context.Context, hc *http.Client, serverURL string, o Options) (*Result, error) {
	given, err := NormalizeServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	if o.Issuer != "" {
		if u, err := url.Parse(o.Issuer); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("invalid issuer URL %q: want http(s)://host[:port][/path]", o.Issuer)
		}
	}
	d := &discoverer{hc: hc, res: &Result{}, trace: o.Trace}
	if err := d.findEndpoint(ctx, given); err != nil {
		return nil, err
	}
	if err := d.findResource(ctx, o.Issuer != "" || o.PublicIssuer != ""); err != nil {
		var nm *NotMCPError
		if errors.As(err, &nm) {
			return nil, err
		}
		return nil, fmt.Errorf("protected-resource metadata: %w", err)
	}
	res := d.res
	switch {
	case o.Issuer != "":
		res.Issuer = strings.TrimRight(o.Issuer, "/")
	case res.Legacy:
		res.Issuer = origin(res.Endpoint)
	default:
		res.Issuer = res.Resource.AuthorizationServers[0]
	}
	if err := d.findProvider(ctx, res.Legacy && o.Issuer == ""); err != nil {
		if hint := internalHostHint(res.Issuer, res.ServerURL); hint != "" {
			return nil, fmt.Errorf("authorization server metadata: %w (%s)", err, hint)
		}
		return nil, fmt.Errorf("authorization server metadata: %w", err)
	}
	res.Generation = o.Generation
	if o.Generation == 0 {
		res.Generation = d.generation(ctx)
	}
	if o.PublicIssuer != "" {
		if err := res.Provider.rewriteHost(o.PublicIssuer); err != nil {
			return nil, err
		}
	}
	for _, e := range res.Provider.endpoints() {
		if hint := internalHostHint(*e.url, res.ServerURL); hint != "" {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the %s %s %s", e.name, *e.url, hint))
		}
	}
	return res, nil
}

type discoverer struct {
	hc    *http.Client
	res   *Result
	trace func(Step)
	// answered is set when a candidate endpoint answered like an MCP
	// server; tried says what each candidate answered.
	answered bool
	tried    []string
}

// Steps of discovery (Step.What).
const (
	StepEndpoint      = "MCP endpoint"
	StepResource      = "protected-resource metadata"
	StepAuthorization = "authorization server metadata"
	StepPassThrough   = "pass-through route"
)

func (d *discoverer) step(what, u, outcome string, used bool) {
	s := Step{What: what, URL: u, Outcome: outcome, Used: used}
	d.res.Steps = append(d.res.Steps, s)
	if d.trace != nil {
		d.trace(s)
	}
}

// initializeProbe is the unauthenticated MCP request that asks the endpoint
// for its challenge.
const initializeProbe = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ncmcp","version":"discovery"}}}`

// findEndpoint finds the MCP endpoint: the URL given, or {given}/mcp (a
// Nextcloud MCP server's base URL is given).
// An endpoint is one that answers an unauthenticated initialize with 401
// (its challenge is kept) or with success; when none does, the first
// candidate is assumed.
func (d *discoverer) findEndpoint(ctx context.Context, given string) error {
	// A URL ending in /mcp is most likely the endpoint, but may be the base
	// of a server mounted under /mcp.
	candidates := []string{given + "/mcp", given}
	if strings.HasSuffix(given, "/mcp") {
		candidates = []string{given, given + "/mcp"}
	}
	for _, c := range candidates {
		resp, err := d.do(ctx, http.MethodPost, c, []byte(initializeProbe), map[string]string{
			"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
		}, nil)
		var rr *redirectRefused
		if errors.As(err, &rr) {
			// Not an endpoint to talk to; its metadata may still be there.
			d.tried = append(d.tried, "POST "+c+": "+err.Error())
			d.step(StepEndpoint, c, err.Error(), false)
			continue
		}
		if err != nil {
			d.step(StepEndpoint, c, err.Error(), false)
			return &UnreachableError{URL: c, Err: err}
		}
		resp.Body.Close()
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		switch {
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			d.answered = true
			d.res.Endpoint = c
			d.res.Challenge, d.res.HasChallenge = wwwauth.ParseBearer(resp.Header.Values("WWW-Authenticate"))
			outcome := fmt.Sprintf("HTTP %d", resp.StatusCode)
			if d.res.HasChallenge {
				outcome += " with a Bearer challenge"
			}
			d.step(StepEndpoint, c, outcome, true)
		case resp.StatusCode >= 200 && resp.StatusCode < 300 && (mt == "application/json" || mt == "text/event-stream"):
			d.answered = true
			d.res.Endpoint = c
			d.step(StepEndpoint, c, fmt.Sprintf("HTTP %d without a token", resp.StatusCode), true)
		default:
			what := fmt.Sprintf("HTTP %d", resp.StatusCode)
			if mt != "" {
				what += " (" + mt + ")"
			}
			d.tried = append(d.tried, "POST "+c+" answered "+what)
			d.step(StepEndpoint, c, what, false)
			continue
		}
		break
	}
	if d.res.Endpoint == "" {
		d.res.Endpoint = candidates[0]
	}
	d.res.ServerURL = ServerKey(d.res.Endpoint)
	return nil
}

// findResource reads the protected-resource metadata and checks that it
// names this server; when there is none, the server is Legacy. With
// overridden (--issuer or --public-issuer: the user has said the metadata
// names addresses this machine does not use), a resource naming another
// address (a server behind a proxy that names itself by an internal one)
// is a warning, and the resource indicator is the endpoint: a token is
// never asked for another resource than the one it is sent to.
func (d *discoverer) findResource(ctx context.Context, overridden bool) error {
	res := d.res
	var candidates []string
	if m := res.Challenge.ResourceMetadata; m != "" {
		candidates = []string{m}
	} else {
		candidates = resourceMetadataURLs(res.Endpoint, res.ServerURL)
	}
	var firstErr error
	for _, u := range candidates {
		var prm ProtectedResource
		err := d.getJSON(ctx, u, &prm, nil)
		if err == nil {
			if len(prm.AuthorizationServers) == 0 || prm.AuthorizationServers[0] == "" {
				d.step(StepResource, u, "names no authorization_servers", false)
				return &MetadataError{URL: u, Reason: "names no authorization_servers"}
			}
			if as, err := url.Parse(prm.AuthorizationServers[0]); err != nil || as.Host == "" || (as.Scheme != "http" && as.Scheme != "https") {
				d.step(StepResource, u, "its authorization server is not an http(s) URL", false)
				return &MetadataError{URL: u, Reason: fmt.Sprintf("the authorization server %q is not an http(s) URL", prm.AuthorizationServers[0])}
			}
			if !resourceMatches(prm.Resource, res.Endpoint) {
				if !overridden {
					d.step(StepResource, u, "for another resource: "+prm.Resource, false)
					return &ResourceMismatchError{URL: u, Resource: prm.Resource, Endpoint: res.Endpoint}
				}
				res.Warnings = append(res.Warnings, fmt.Sprintf("the protected-resource metadata at %s names the resource %q, not %s; going on as --issuer or --public-issuer was given", u, prm.Resource, res.Endpoint))
				prm.Resource = res.Endpoint
			}
			found := fmt.Sprintf("found: resource %s, authorization server %s", prm.Resource, prm.AuthorizationServers[0])
			if res.Challenge.ResourceMetadata != "" {
				found += " (named by the challenge)"
			}
			d.step(StepResource, u, found, true)
			res.ResourceURL, res.Resource = u, prm
			return nil
		}
		d.step(StepResource, u, err.Error(), false)
		if firstErr == nil {
			firstErr = err
		}
		var ue *UnreachableError
		if errors.As(err, &ue) || !isClientError(err) {
			return err
		}
	}
	if res.Challenge.ResourceMetadata != "" {
		return firstErr // the server named it: it must be there
	}
	if !d.answered {
		// The 2025-03-26 fallback is for MCP servers without metadata; a
		// URL where nothing answered like one is not taken for one.
		return &NotMCPError{Tried: d.tried}
	}
	res.Legacy = true
	return nil
}

// resourceMetadataURLs are where RFC 9728 puts the metadata of the
// endpoint: the well-known path with the endpoint's path inserted, then the
// same under a server base mounted at a path, then the root.
func resourceMetadataURLs(endpoint, serverURL string) []string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil
	}
	o := u.Scheme + "://" + u.Host
	out := []string{o + "/.well-known/oauth-protected-resource" + u.Path}
	if b, err := url.Parse(serverURL); err == nil && b.Path != "" && strings.HasSuffix(endpoint, "/mcp") {
		// A server mounted under a path (a reverse proxy's prefix) that
		// serves its metadata beneath that prefix.
		out = append(out, serverURL+"/.well-known/oauth-protected-resource/mcp")
	}
	if u.Path != "" && u.Path != "/" {
		out = append(out, o+"/.well-known/oauth-protected-resource")
	}
	return out
}

// resourceMatches reports whether the metadata's resource names the
// endpoint: the same origin, and a path that is the endpoint's path or a
// prefix of it at a segment boundary (a server may name its base URL).
func resourceMatches(resource, endpoint string) bool {
	r, err1 := url.Parse(resource)
	e, err2 := url.Parse(endpoint)
	if err1 != nil || err2 != nil || r.Host == "" || r.Fragment != "" {
		return false
	}
	if !strings.EqualFold(r.Scheme, e.Scheme) || !strings.EqualFold(r.Host, e.Host) {
		return false
	}
	rp, ep := strings.TrimRight(r.Path, "/"), strings.TrimRight(e.Path, "/")
	return rp == ep || rp == "" || strings.HasPrefix(ep, rp+"/")
}

func isClientError(err error) bool {
	var me *MetadataError
	return errors.As(err, &me) && strings.HasPrefix(me.Reason, "HTTP 4")
}

// findProvider reads the authorization server's metadata. In legacy mode
// a server without metadata gets the default endpoints of MCP 2025-03-26,
// and the issuer is not checked (such servers name their own).
func (d *discoverer) findProvider(ctx context.Context, legacy bool) error {
	res := d.res
	candidates := metadataURLs(res.Issuer)
	allowed := []string{origin(res.Issuer)}
	var firstErr error
	for _, u := range candidates {
		var p Provider
		err := d.getJSON(ctx, u, &p, allowed)
		if err == nil {
			if !legacy {
				if err := p.check(u, res.Issuer); err != nil {
					d.step(StepAuthorization, u, err.Error(), false)
					return err
				}
			} else if err := p.checkEndpoints(u); err != nil {
				d.step(StepAuthorization, u, err.Error(), false)
				return err
			}
			d.step(StepAuthorization, u, "found", true)
			res.Provider = p
			return nil
		}
		d.step(StepAuthorization, u, err.Error(), false)
		if firstErr == nil {
			firstErr = err
		}
		var ue *UnreachableError
		if errors.As(err, &ue) || !isClientError(err) {
			return err
		}
	}
	if !legacy {
		if firstErr == nil {
			firstErr = &MetadataError{URL: res.Issuer, Reason: "not an http(s) URL"}
		}
		return firstErr
	}
	o := origin(res.Issuer)
	res.Provider = Provider{Issuer: o, AuthorizationEndpoint: o + "/authorize", TokenEndpoint: o + "/token",
		RegistrationEndpoint: o + "/register", CodeChallengeMethodsSupported: []string{"S256"}}
	d.step(StepAuthorization, o, "none: the default endpoints /authorize, /token, /register (MCP 2025-03-26)", true)
	return nil
}

// metadataURLs are the metadata locations of an authorization server, in
// the order of the MCP authorization specification.
func metadataURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	o := u.Scheme + "://" + u.Host
	p := strings.TrimRight(u.Path, "/")
	if p == "" {
		return []string{o + "/.well-known/oauth-authorization-server", o + "/.well-known/openid-configuration"}
	}
	return []string{
		o + "/.well-known/oauth-authorization-server" + p,
		o + "/.well-known/openid-configuration" + p,
		o + p + "/.well-known/openid-configuration",
	}
}

// generation tells the Nextcloud MCP server's generations apart: the
// server is its own authorization server (2), or it answers its
// pass-through route /oauth/authorize with an OAuth error to a request
// without parameters (1), or it is some other MCP server.
func (d *discoverer) generation(ctx context.Context) int {
	res := d.res
	if sameURL(res.Issuer, res.ServerURL) || sameURL(res.Issuer, origin(res.Endpoint)) {
		return Generation2
	}
	if res.Legacy {
		return GenerationOther
	}
	u := res.ServerURL + "/oauth/authorize"
	resp, err := d.do(ctx, http.MethodGet, u, nil, map[string]string{"Accept": "application/json"}, nil)
	if err != nil {
		d.step(StepPassThrough, u, err.Error(), false)
		return GenerationOther
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized) && json.Unmarshal(b, &e) == nil && e.Error != "" {
		d.step(StepPassThrough, u, fmt.Sprintf("HTTP %d %s: the server passes logins through to %s", resp.StatusCode, e.Error, res.Issuer), true)
		return Generation1
	}
	d.step(StepPassThrough, u, fmt.Sprintf("HTTP %d: none", resp.StatusCode), false)
	return GenerationOther
}

func sameURL(a, b string) bool {
	x, err1 := NormalizeServerURL(a)
	y, err2 := NormalizeServerURL(b)
	return err1 == nil && err2 == nil && x == y
}

// origin returns scheme://host[:port] of raw.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
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

// check checks metadata fetched for the authorization server issuer: the
// same issuer (RFC 8414 section 3.3), and usable endpoints.
func (p *Provider) check(metaURL, issuer string) error {
	if p.Issuer == "" {
		return &MetadataError{URL: metaURL, Reason: "no issuer"}
	}
	if strings.TrimRight(p.Issuer, "/") != strings.TrimRight(issuer, "/") {
		return &MetadataError{URL: metaURL, Reason: fmt.Sprintf("issuer %q does not match the expected %q", p.Issuer, issuer)}
	}
	return p.checkEndpoints(metaURL)
}

func (p *Provider) checkEndpoints(metaURL string) error {
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
// code_challenge_methods_supported (absent means PKCE is not supported).
func (p *Provider) SupportsS256() bool {
	for _, m := range p.CodeChallengeMethodsSupported {
		if m == "S256" {
			return true
		}
	}
	return false
}

// SupportsScope reports whether the metadata lists the scope.
func (p *Provider) SupportsScope(scope string) bool {
	for _, s := range p.ScopesSupported {
		if s == scope {
			return true
		}
	}
	return false
}

// do sends one request. Redirects are followed on the request's own origin
// and to the origins in allowed; any other is refused (a document reached
// through a redirect elsewhere is not the server's).
func (d *discoverer) do(ctx context.Context, method, u string, body []byte, header map[string]string, allowed []string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	hc := *d.hc
	next := d.hc.CheckRedirect
	hc.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if o := origin(r.URL.String()); o != origin(via[0].URL.String()) && !contains(allowed, o) {
			return &redirectRefused{from: origin(via[0].URL.String()), to: o}
		}
		if next != nil {
			return next(r, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return hc.Do(req)
}

// redirectRefused is a redirect to an origin discovery does not follow.
type redirectRefused struct{ from, to string }

func (e *redirectRefused) Error() string {
	return fmt.Sprintf("refusing a redirect from %s to another origin, %s", e.from, e.to)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (d *discoverer) getJSON(ctx context.Context, u string, v any, allowed []string) error {
	if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return &MetadataError{URL: u, Reason: "not an http(s) URL"}
	}
	resp, err := d.do(ctx, http.MethodGet, u, nil, map[string]string{"Accept": "application/json"}, allowed)
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

// Scopes returns the scopes to ask for, by the rules of the MCP
// authorization specification: the challenged scopes (those of a 403
// insufficient_scope challenge, with the scopes already granted), else the
// scopes of the endpoint's 401 challenge, else the protected-resource
// metadata's scopes_supported, else none. offline_access is asked for only
// when the authorization server lists it (and never where its list omits
// it); the OpenID scopes that tell who logged in (openid, profile, email)
// are added where the authorization server lists them.
func (r *Result) Scopes(challenged []string) []string {
	var out []string
	switch {
	case len(challenged) > 0:
		out = slices.Clone(challenged)
	case len(r.Challenge.Scopes()) > 0:
		out = r.Challenge.Scopes()
	case !r.Legacy:
		out = slices.Clone(r.Resource.ScopesSupported)
	}
	p := &r.Provider
	if len(p.ScopesSupported) > 0 && !p.SupportsScope("offline_access") {
		out = slices.DeleteFunc(out, func(s string) bool { return s == "offline_access" })
	}
	if p.SupportsScope("openid") {
		for _, s := range []string{"openid", "profile", "email"} {
			if p.SupportsScope(s) && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if p.SupportsScope("offline_access") && !slices.Contains(out, "offline_access") {
		out = append(out, "offline_access")
	}
	return out
}
