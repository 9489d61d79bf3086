package devserver

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Faults of Options.RegistrationFault, the OP's answer to POST /register.
const (
	// RegistrationFaultRefuse answers 400 invalid_client_metadata
	// "registration refused by policy".
	RegistrationFaultRefuse = "refuse"
	// RegistrationFaultRateLimit answers the first registration request with
	// 429, Retry-After: 1 and a JSON error; later requests are served normally.
	RegistrationFaultRateLimit = "ratelimit"
	// RegistrationFaultMalformed answers 201 with a body that is not valid JSON.
	RegistrationFaultMalformed = "malformed"
)

// registerPath is the OP's RFC 7591 registration endpoint; each registered
// client is managed (RFC 7592) at registerPath + "/" + client_id.
const registerPath = "/register"

// clientRegistration is what RFC 7591 registration recorded for a client.
type clientRegistration struct {
	accessToken     string // registration access token (RFC 7592)
	issuedAt        time.Time
	clientName      string
	applicationType string // "native" or "web"
	authMethod      string // token_endpoint_auth_method as registered
	grantTypes      []string
	responseTypes   []string
	scope           string
}

// registrationRequest is the client metadata of an RFC 7591 request.
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type"`
	Scope                   string   `json:"scope"`
}

// Registrations returns how many requests reached the OP's registration
// endpoint (POST /register), whatever the answer.
func (s *Server) Registrations() int {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	return s.registrations
}

// register serves POST /register (RFC 7591).
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	s.countMu.Lock()
	s.registrations++
	n := s.registrations
	s.countMu.Unlock()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST to register a client")
		return
	}
	switch s.opts.RegistrationFault {
	case RegistrationFaultRefuse:
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "registration refused by policy")
		return
	case RegistrationFaultRateLimit:
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			writeOAuthError(w, http.StatusTooManyRequests, "too_many_requests", "too many registration requests: retry later")
			return
		}
	case RegistrationFaultMalformed:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"client_id": "dcr-`)
		return
	}

	var req registrationRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON object of client metadata")
		return
	}
	c, errCode, errDesc := s.newRegisteredClient(req)
	if errCode != "" {
		writeOAuthError(w, http.StatusBadRequest, errCode, errDesc)
		return
	}
	s.store.clientsMu.Lock()
	s.store.clients[c.id] = c
	s.store.clientsMu.Unlock()
	writeJSON(w, http.StatusCreated, s.registrationResponse(c))
}

// newRegisteredClient checks client metadata and builds the client, or
// returns an RFC 7591 error code and description.
func (s *Server) newRegisteredClient(req registrationRequest) (*opClient, string, string) {
	if len(req.RedirectURIs) == 0 {
		return nil, "invalid_redirect_uri", "redirect_uris is required"
	}
	allLoopback := true
	for _, u := range req.RedirectURIs {
		loopback, ok := registrableRedirectURI(u)
		if !ok {
			return nil, "invalid_redirect_uri", "redirect URI " + strconv.Quote(u) + " must be an http loopback URI or an https URI, without fragment"
		}
		allLoopback = allLoopback && loopback
	}

	reg := &clientRegistration{
		issuedAt:      s.now().UTC(),
		clientName:    req.ClientName,
		authMethod:    req.TokenEndpointAuthMethod,
		grantTypes:    req.GrantTypes,
		responseTypes: req.ResponseTypes,
		scope:         req.Scope,
	}
	if reg.authMethod == "" {
		reg.authMethod = string(oidc.AuthMethodBasic) // RFC 7591's default
	}
	var authMethod oidc.AuthMethod
	switch reg.authMethod {
	case string(oidc.AuthMethodNone):
		authMethod = oidc.AuthMethodNone
	case string(oidc.AuthMethodBasic):
		authMethod = oidc.AuthMethodBasic
	case string(oidc.AuthMethodPost):
		authMethod = oidc.AuthMethodPost
	default:
		return nil, "invalid_client_metadata", "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post"
	}
	if reg.grantTypes == nil {
		reg.grantTypes = []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken)}
	}
	var grants []oidc.GrantType
	for _, g := range reg.grantTypes {
		switch oidc.GrantType(g) {
		case oidc.GrantTypeCode, oidc.GrantTypeRefreshToken:
			if !slices.Contains(grants, oidc.GrantType(g)) {
				grants = append(grants, oidc.GrantType(g))
			}
		default:
			return nil, "invalid_client_metadata", "unsupported grant type " + strconv.Quote(g) + " (supported: authorization_code, refresh_token)"
		}
	}
	if !slices.Contains(grants, oidc.GrantTypeCode) {
		return nil, "invalid_client_metadata", "grant_types must include authorization_code"
	}
	if reg.responseTypes == nil {
		reg.responseTypes = []string{string(oidc.ResponseTypeCode)}
	}
	for _, rt := range reg.responseTypes {
		if rt != string(oidc.ResponseTypeCode) {
			return nil, "invalid_client_metadata", "unsupported response type " + strconv.Quote(rt) + " (supported: code)"
		}
	}
	appType := op.ApplicationTypeNative
	switch req.ApplicationType {
	case "native":
	case "web":
		appType = op.ApplicationTypeWeb
	case "":
		if !allLoopback {
			appType = op.ApplicationTypeWeb
		}
	default:
		return nil, "invalid_client_metadata", "application_type must be native or web"
	}
	reg.applicationType = "native"
	if appType == op.ApplicationTypeWeb {
		reg.applicationType = "web"
	}
	reg.accessToken = randomToken()

	c := &opClient{
		id:           "dcr-" + randomID(),
		public:       authMethod == oidc.AuthMethodNone,
		appType:      appType,
		redirectURIs: slices.Clone(req.RedirectURIs),
		authMethod:   authMethod,
		loginURL:     s.loginURL,
		knownClient:  s.store.knownClient,
		grantTypes:   grants,
		registration: reg,
		now:          s.now,
	}
	if !c.public {
		c.secret = randomToken()
		if s.opts.RegisteredSecretTTL > 0 {
			c.secretExpires = reg.issuedAt.Add(s.opts.RegisteredSecretTTL)
		}
	}
	return c, "", ""
}

// registrableRedirectURI reports whether u may be registered (an absolute
// https URI, or an http URI on a loopback host; no fragment) and whether it
// is a loopback URI.
func registrableRedirectURI(raw string) (loopback, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" || strings.Contains(raw, "#") {
		return false, false
	}
	host := u.Hostname()
	loopback = host == "localhost" || net.ParseIP(host).IsLoopback()
	switch u.Scheme {
	case "https":
		return loopback, true
	case "http":
		return loopback, loopback
	}
	return false, false
}

// registrationResponse is the client information response of RFC 7591
// (and RFC 7592's read).
func (s *Server) registrationResponse(c *opClient) map[string]any {
	reg := c.registration
	resp := map[string]any{
		"client_id":                  c.id,
		"client_id_issued_at":        reg.issuedAt.Unix(),
		"registration_access_token":  reg.accessToken,
		"registration_client_uri":    s.issuer + registerPath + "/" + c.id,
		"redirect_uris":              c.redirectURIs,
		"grant_types":                reg.grantTypes,
		"response_types":             reg.responseTypes,
		"token_endpoint_auth_method": reg.authMethod,
		"application_type":           reg.applicationType,
	}
	if reg.clientName != "" {
		resp["client_name"] = reg.clientName
	}
	if reg.scope != "" {
		resp["scope"] = reg.scope
	}
	if !c.public {
		resp["client_secret"] = c.secret
		var expires int64
		if !c.secretExpires.IsZero() {
			expires = c.secretExpires.Unix()
		}
		resp["client_secret_expires_at"] = expires
	}
	return resp
}

// manageRegistration serves GET and DELETE on a registration_client_uri
// (RFC 7592), authenticated with the registration access token.
func (s *Server) manageRegistration(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.store.client(id)
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || c.registration == nil || !strings.EqualFold(scheme, "Bearer") || token == "" ||
		subtle.ConstantTimeCompare([]byte(token), []byte(c.registration.accessToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "missing or wrong registration access token")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.registrationResponse(c))
	case http.MethodDelete:
		s.store.deleteClient(id)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, DELETE")
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "only GET and DELETE are supported")
	}
}
