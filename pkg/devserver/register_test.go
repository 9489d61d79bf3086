package devserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

type registered struct {
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecret            string   `json:"client_secret"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type"`
	Error                   string   `json:"error"`
	ErrorDescription        string   `json:"error_description"`
}

// registerAtOP registers a client at the OP and checks the 201.
func registerAtOP(t *testing.T, s *Server, metadata map[string]any) registered {
	t.Helper()
	status, _, body := postJSON(t, s.IssuerURL()+"/register", metadata)
	var r registered
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("registration response: %v: %s", err, body)
	}
	if status != http.StatusCreated || r.ClientID == "" {
		t.Fatalf("registration: %d %s", status, body)
	}
	return r
}

func TestRegisterPublicNativeClient(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	lb := newLoopback(t)
	r := registerAtOP(t, s, map[string]any{
		"redirect_uris":              []string{lb.redirectURI()},
		"client_name":                "ncmcp test",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
		"application_type":           "native",
	})
	if r.ClientSecret != "" || r.ClientSecretExpiresAt != nil || r.RegistrationAccessToken == "" ||
		r.RegistrationClientURI != s.IssuerURL()+"/register/"+r.ClientID ||
		time.Since(time.Unix(r.ClientIDIssuedAt, 0)).Abs() > time.Minute ||
		!slices.Equal(r.RedirectURIs, []string{lb.redirectURI()}) || r.ClientName != "ncmcp test" ||
		!slices.Equal(r.GrantTypes, []string{"authorization_code", "refresh_token"}) || !slices.Equal(r.ResponseTypes, []string{"code"}) ||
		r.TokenEndpointAuthMethod != "none" || r.ApplicationType != "native" {
		t.Fatalf("registration = %+v", r)
	}

	// The client works at once, through the stand-in (which allows it) and
	// on another loopback port than the registered one.
	other := newLoopback(t)
	_, challenge := pkcePair()
	code := login(t, s, other, r.ClientID, challenge, nil)
	cfg := oauthConfig(s, r.ClientID, "", other.redirectURI(), oauth2.AuthStyleInParams)
	tok, err := exchange(t, cfg, code, "")
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || mcpStatus(t, s, tok.AccessToken) != 200 {
		t.Fatal("no refresh token, or the access token does not work at /mcp")
	}
	tok2, err := cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}

	// RFC 7009 revocation of the refresh token, as the public client, makes
	// it unusable at once.
	resp, err := http.PostForm(s.IssuerURL()+idpRevokePath, url.Values{
		"token": {tok2.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {r.ClientID},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	_, err = cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	if err == nil {
		t.Fatal("a revoked refresh token still works")
	}
	if status, code := oauthErr(t, err); status != 400 || code != "invalid_request" {
		t.Fatalf("revoked refresh token: %d %s, want 400 invalid_request (Dex)", status, code)
	}
	if got := s.Registrations(); got != 1 {
		t.Errorf("Registrations() = %d", got)
	}
}

func TestRegisterConfidentialClient(t *testing.T) {
	opts, clock := clockOptions(Options{AutoApprove: true, RegisteredSecretTTL: time.Second})
	s := startServer(t, opts)
	lb := newLoopback(t)
	type check struct {
		method string
		style  oauth2.AuthStyle
		reg    registered
		tok    *oauth2.Token
	}
	checks := []*check{
		{method: "client_secret_basic", style: oauth2.AuthStyleInHeader},
		{method: "client_secret_post", style: oauth2.AuthStyleInParams},
		{method: "", style: oauth2.AuthStyleInHeader}, // RFC 7591's default: client_secret_basic
	}
	for _, tc := range checks {
		md := map[string]any{"redirect_uris": []string{lb.redirectURI()}}
		if tc.method != "" {
			md["token_endpoint_auth_method"] = tc.method
		}
		r := registerAtOP(t, s, md)
		want := tc.method
		if want == "" {
			want = "client_secret_basic"
		}
		if r.ClientSecret == "" || r.ClientSecretExpiresAt == nil || *r.ClientSecretExpiresAt != r.ClientIDIssuedAt+1 ||
			r.TokenEndpointAuthMethod != want || r.ApplicationType != "native" {
			t.Fatalf("%s: registration = %+v", tc.method, r)
		}
		_, challenge := pkcePair()
		tok, err := exchange(t, oauthConfig(s, r.ClientID, r.ClientSecret, lb.redirectURI(), tc.style),
			login(t, s, lb, r.ClientID, challenge, nil), "")
		if err != nil {
			t.Fatalf("%s: exchange: %v", tc.method, err)
		}
		if tok.RefreshToken == "" {
			t.Errorf("%s: no refresh token", tc.method)
		}
		code := login(t, s, lb, r.ClientID, challenge, nil)
		if _, err := exchange(t, oauthConfig(s, r.ClientID, "wrong", lb.redirectURI(), tc.style), code, ""); err == nil {
			t.Errorf("%s: a wrong secret works", tc.method)
		} else if status, code := oauthErr(t, err); status != 401 || code != "invalid_client" {
			t.Errorf("%s: wrong secret: %d %s", tc.method, status, code)
		}
		tc.reg, tc.tok = r, tok
	}

	// The secrets expire after RegisteredSecretTTL.
	clock.advance(time.Second)
	for _, tc := range checks {
		_, err := oauthConfig(s, tc.reg.ClientID, tc.reg.ClientSecret, lb.redirectURI(), tc.style).
			TokenSource(testContext(t), &oauth2.Token{RefreshToken: tc.tok.RefreshToken}).Token()
		if err == nil {
			t.Fatalf("%s: an expired secret works", tc.method)
		}
		if status, code := oauthErr(t, err); status != 401 || code != "invalid_client" {
			t.Errorf("%s: expired secret: %d %s", tc.method, status, code)
		}
	}
}

func TestRegisterValidation(t *testing.T) {
	s := startServer(t, Options{})
	const cb = "http://127.0.0.1:43123/callback"
	tests := []struct {
		name    string
		body    any
		status  int
		errCode string
	}{
		{"not JSON", "redirect_uris=x", 400, "invalid_client_metadata"},
		{"no redirect_uris", map[string]any{"client_name": "x"}, 400, "invalid_redirect_uri"},
		{"empty redirect_uris", map[string]any{"redirect_uris": []string{}}, 400, "invalid_redirect_uri"},
		{"http, not loopback", map[string]any{"redirect_uris": []string{"http://example.com/cb"}}, 400, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{cb + "#x"}}, 400, "invalid_redirect_uri"},
		{"custom scheme", map[string]any{"redirect_uris": []string{"com.example.app:/cb"}}, 400, "invalid_redirect_uri"},
		{"relative", map[string]any{"redirect_uris": []string{"/cb"}}, 400, "invalid_redirect_uri"},
		{"one bad of two", map[string]any{"redirect_uris": []string{cb, "ftp://127.0.0.1/cb"}}, 400, "invalid_redirect_uri"},
		{"auth method", map[string]any{"redirect_uris": []string{cb}, "token_endpoint_auth_method": "private_key_jwt"}, 400, "invalid_client_metadata"},
		{"grant type", map[string]any{"redirect_uris": []string{cb}, "grant_types": []string{"implicit"}}, 400, "invalid_client_metadata"},
		{"no code grant", map[string]any{"redirect_uris": []string{cb}, "grant_types": []string{"refresh_token"}}, 400, "invalid_client_metadata"},
		{"response type", map[string]any{"redirect_uris": []string{cb}, "response_types": []string{"token"}}, 400, "invalid_client_metadata"},
		{"application type", map[string]any{"redirect_uris": []string{cb}, "application_type": "desktop"}, 400, "invalid_client_metadata"},
		{"loopback ok", map[string]any{"redirect_uris": []string{cb, "http://localhost:43123/callback", "http://[::1]:43123/callback"}, "token_endpoint_auth_method": "none"}, 201, ""},
		{"https ok", map[string]any{"redirect_uris": []string{"https://app.example/cb"}}, 201, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := postJSON(t, s.IssuerURL()+"/register", tc.body)
			var r registered
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("%d: not JSON: %s", status, body)
			}
			if status != tc.status || r.Error != tc.errCode {
				t.Fatalf("got %d %q (%s), want %d %q", status, r.Error, r.ErrorDescription, tc.status, tc.errCode)
			}
			if tc.status == 400 && r.ErrorDescription == "" {
				t.Error("no error_description")
			}
		})
	}
	// A web client by default when a redirect URI is not loopback.
	r := registerAtOP(t, s, map[string]any{"redirect_uris": []string{"https://app.example/cb"}})
	if r.ApplicationType != "web" {
		t.Errorf("application_type = %q, want web", r.ApplicationType)
	}
	if resp := getJSON(t, s.IssuerURL()+"/register", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /register: %d", resp.StatusCode)
	}
	if got := s.Registrations(); got != len(tests)+2 {
		t.Errorf("Registrations() = %d, want %d", got, len(tests)+2)
	}
}

func manage(t *testing.T, method, rawURL, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, rawURL, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("%s %s: 401 without WWW-Authenticate", method, rawURL)
	}
	return resp.StatusCode, body
}

func TestRegistrationManagement(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true})
	lb := newLoopback(t)
	r := registerAtOP(t, s, map[string]any{"redirect_uris": []string{lb.redirectURI()}, "token_endpoint_auth_method": "none", "client_name": "m"})
	other := registerAtOP(t, s, map[string]any{"redirect_uris": []string{lb.redirectURI()}, "token_endpoint_auth_method": "none"})

	status, body := manage(t, http.MethodGet, r.RegistrationClientURI, r.RegistrationAccessToken)
	var got registered
	_ = json.Unmarshal(body, &got)
	if status != 200 || got.ClientID != r.ClientID || got.ClientName != "m" || !slices.Equal(got.RedirectURIs, r.RedirectURIs) {
		t.Fatalf("GET: %d %s", status, body)
	}
	for _, token := range []string{"", "wrong", other.RegistrationAccessToken} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			if status, _ := manage(t, method, r.RegistrationClientURI, token); status != 401 {
				t.Errorf("%s with token %q: %d, want 401", method, token, status)
			}
		}
	}
	if status, _ := manage(t, http.MethodPut, r.RegistrationClientURI, r.RegistrationAccessToken); status != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", status)
	}

	// Tokens and a code from before the deletion.
	_, challenge := pkcePair()
	cfg := oauthConfig(s, r.ClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	tok, err := exchange(t, cfg, login(t, s, lb, r.ClientID, challenge, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	code := login(t, s, lb, r.ClientID, challenge, nil)

	if status, _ := manage(t, http.MethodDelete, r.RegistrationClientURI, r.RegistrationAccessToken); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d", status)
	}
	if status, _ := manage(t, http.MethodGet, r.RegistrationClientURI, r.RegistrationAccessToken); status != 401 {
		t.Errorf("GET after DELETE: %d, want 401", status)
	}
	_, err = cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err == nil {
		t.Fatal("refresh works for a deleted client")
	}
	if status, code := oauthErr(t, err); status != 401 || code != "invalid_client" {
		t.Errorf("refresh for a deleted client: %d %s", status, code)
	}
	_, err = exchange(t, cfg, code, "")
	if err == nil {
		t.Fatal("code exchange works for a deleted client")
	}
	if status, code := oauthErr(t, err); status != 401 || code != "invalid_client" {
		t.Errorf("code exchange for a deleted client: %d %s", status, code)
	}
	// Neither the stand-in nor the OP accepts it any more.
	var e struct {
		Error string `json:"error"`
	}
	if resp := getJSON(t, authorizeURL(s, r.ClientID, lb.redirectURI(), "st", challenge, nil), &e); resp.StatusCode != 401 || e.Error != "unauthorized_client" {
		t.Errorf("stand-in authorize for a deleted client: %d %s", resp.StatusCode, e.Error)
	}
	// The other registration is untouched.
	if status, _ := manage(t, http.MethodGet, other.RegistrationClientURI, other.RegistrationAccessToken); status != 200 {
		t.Errorf("other client: %d", status)
	}
}

func TestRegistrationFaults(t *testing.T) {
	md := map[string]any{"redirect_uris": []string{"http://127.0.0.1:40000/callback"}, "token_endpoint_auth_method": "none"}
	t.Run("refuse", func(t *testing.T) {
		s := startServer(t, Options{RegistrationFault: RegistrationFaultRefuse})
		status, _, body := postJSON(t, s.IssuerURL()+"/register", md)
		var r registered
		_ = json.Unmarshal(body, &r)
		if status != 400 || r.Error != "invalid_client_metadata" || r.ErrorDescription != "registration refused by policy" {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("ratelimit", func(t *testing.T) {
		s := startServer(t, Options{RegistrationFault: RegistrationFaultRateLimit})
		status, h, body := postJSON(t, s.IssuerURL()+"/register", md)
		var r registered
		if err := json.Unmarshal(body, &r); err != nil || status != 429 || h.Get("Retry-After") != "1" || r.Error == "" {
			t.Errorf("first request: %d Retry-After %q %s", status, h.Get("Retry-After"), body)
		}
		registerAtOP(t, s, md)
		registerAtOP(t, s, md)
		if got := s.Registrations(); got != 3 {
			t.Errorf("Registrations() = %d, want 3", got)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		s := startServer(t, Options{RegistrationFault: RegistrationFaultMalformed})
		status, _, body := postJSON(t, s.IssuerURL()+"/register", md)
		if status != 201 || json.Valid(body) {
			t.Errorf("%d %s", status, body)
		}
	})
	if _, err := Start(Options{RegistrationFault: "sometimes"}); err == nil {
		t.Error("Start accepted an unknown registration fault")
	}
}

type opDiscovery struct {
	Issuer               string `json:"issuer"`
	RegistrationEndpoint string `json:"registration_endpoint"`
	RevocationEndpoint   string `json:"revocation_endpoint"`
	TokenEndpoint        string `json:"token_endpoint"`
}

func TestDiscoveryEndpointOptions(t *testing.T) {
	s := startServer(t, Options{})
	var d opDiscovery
	getJSON(t, s.IssuerURL()+"/.well-known/openid-configuration", &d)
	if d.RegistrationEndpoint != s.IssuerURL()+"/register" || d.RevocationEndpoint != s.IssuerURL()+idpRevokePath || d.TokenEndpoint == "" {
		t.Errorf("discovery = %+v", d)
	}

	off := startServer(t, Options{NoRegistration: true, NoRevocation: true})
	d = opDiscovery{}
	getJSON(t, off.IssuerURL()+"/.well-known/openid-configuration", &d)
	if d.RegistrationEndpoint != "" || d.RevocationEndpoint != "" || d.Issuer != off.IssuerURL() || d.TokenEndpoint == "" {
		t.Errorf("discovery with NoRegistration and NoRevocation = %+v", d)
	}
	status, _, _ := postJSON(t, off.IssuerURL()+"/register", map[string]any{"redirect_uris": []string{"http://127.0.0.1:1/cb"}})
	if status != 404 {
		t.Errorf("/register with NoRegistration: %d", status)
	}
	if status, _ := manage(t, http.MethodGet, off.IssuerURL()+"/register/x", "t"); status != 404 {
		t.Errorf("/register/x with NoRegistration: %d", status)
	}
	resp, err := http.PostForm(off.IssuerURL()+idpRevokePath, url.Values{"token": {"x"}, "client_id": {PublicClientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/revoke with NoRevocation: %d", resp.StatusCode)
	}
	if off.Registrations() != 0 {
		t.Errorf("Registrations() = %d with NoRegistration", off.Registrations())
	}
}

func TestFlow2RevokeWithoutRevocationEndpoint(t *testing.T) {
	s := startServer(t, Options{AutoApprove: true, NoRevocation: true})
	cs := mustMCPSession(t, s, tokens(t, s).AccessToken)
	p := callTool(t, cs, ToolProvision, nil)
	resp, err := browser.Get(p["authorization_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pt, ok := s.ProvisionedToken(DefaultUser.Subject)
	if !ok {
		t.Fatal("nothing provisioned")
	}
	if r := callTool(t, cs, ToolRevoke, nil); r["success"] != true {
		t.Errorf("revoke = %v", r)
	}
	if _, ok := s.ProvisionedToken(DefaultUser.Subject); ok {
		t.Error("still stored")
	}
	// Not revoked at the OP: it has no revocation endpoint.
	if _, err := serverRefresh(t, s, pt.RefreshToken); err != nil {
		t.Errorf("the token was revoked at an OP without revocation: %v", err)
	}
}

// TestForgetClientsOnRestart: with the option, RestartServer forgets the
// clients registered at the OP with their tokens: a refresh or code
// exchange by one of them is answered invalid_client, its access token is
// refused, its registration is gone; the static clients and their tokens
// stay. Without the option the registrations survive the restart.
func TestForgetClientsOnRestart(t *testing.T) {
	for _, forget := range []bool{true, false} {
		s := startServer(t, Options{AutoApprove: true, ForgetClientsOnRestart: forget})
		lb := newLoopback(t)
		_, challenge := pkcePair()
		type client struct {
			r     registered
			cfg   *oauth2.Config
			tok   *oauth2.Token
			code  string
			style string
		}
		var clients []client
		for _, method := range []string{"none", "client_secret_basic"} {
			r := registerAtOP(t, s, map[string]any{"redirect_uris": []string{lb.redirectURI()}, "token_endpoint_auth_method": method})
			style := oauth2.AuthStyleInParams
			if method != "none" {
				style = oauth2.AuthStyleInHeader
			}
			cfg := oauthConfig(s, r.ClientID, r.ClientSecret, lb.redirectURI(), style)
			tok, err := exchange(t, cfg, login(t, s, lb, r.ClientID, challenge, nil), "")
			if err != nil {
				t.Fatalf("%s client: %v", method, err)
			}
			clients = append(clients, client{r: r, cfg: cfg, tok: tok, code: login(t, s, lb, r.ClientID, challenge, nil), style: method})
		}
		static := tokens(t, s)

		s.RestartServer()

		for _, c := range clients {
			_, refreshErr := c.cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: c.tok.RefreshToken}).Token()
			_, exchangeErr := exchange(t, c.cfg, c.code, "")
			status, _ := manage(t, http.MethodGet, c.r.RegistrationClientURI, c.r.RegistrationAccessToken)
			if !forget {
				if refreshErr != nil || exchangeErr != nil || status != 200 || mcpStatus(t, s, c.tok.AccessToken) != 200 {
					t.Errorf("kept %s client: refresh %v, exchange %v, registration %d", c.style, refreshErr, exchangeErr, status)
				}
				continue
			}
			for what, err := range map[string]error{"refresh": refreshErr, "code exchange": exchangeErr} {
				if err == nil {
					t.Errorf("forgotten %s client: %s works", c.style, what)
				} else if status, code := oauthErr(t, err); status != 401 || code != "invalid_client" {
					t.Errorf("forgotten %s client: %s: %d %s, want 401 invalid_client", c.style, what, status, code)
				}
			}
			if got := mcpStatus(t, s, c.tok.AccessToken); got != http.StatusUnauthorized {
				t.Errorf("forgotten %s client: its access token at /mcp: %d, want 401", c.style, got)
			}
			if status != 401 {
				t.Errorf("forgotten %s client: registration read: %d, want 401", c.style, status)
			}
		}
		// The static client keeps its tokens.
		cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
		if _, err := refreshWith(t, cfg, static.RefreshToken); err != nil || mcpStatus(t, s, static.AccessToken) != 200 {
			t.Errorf("forget %t: the static client's tokens after the restart: %v", forget, err)
		}
	}
}
