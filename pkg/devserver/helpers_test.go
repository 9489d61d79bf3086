package devserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
)

func TestMain(m *testing.M) {
	// zitadel reports every refused request through the default logger;
	// the tests check those answers themselves.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// need reports that a part the test needs is missing: a failure when the
// comma-separated NCMCP_TEST_REQUIRE names it, else a skip with the reason.
func need(t testing.TB, part, why string) {
	t.Helper()
	if slices.Contains(strings.Split(os.Getenv("NCMCP_TEST_REQUIRE"), ","), part) {
		t.Fatalf("%s is required (NCMCP_TEST_REQUIRE) but not available: %s", part, why)
	}
	t.Skipf("skipping: %s not available: %s (set NCMCP_TEST_REQUIRE=%s to make this a failure)", part, why, part)
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// loopback is a native client's loopback redirect target on 127.0.0.1.
type loopback struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits []url.Values
}

func newLoopback(t *testing.T) *loopback {
	t.Helper()
	l := &loopback{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		l.mu.Lock()
		l.hits = append(l.hits, r.URL.Query())
		l.mu.Unlock()
		_, _ = io.WriteString(w, "login finished")
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *loopback) redirectURI() string { return l.srv.URL + "/callback" }

// last returns the query of the last request to the callback.
func (l *loopback) last(t *testing.T) url.Values {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) == 0 {
		t.Fatal("the loopback redirect_uri was never reached")
	}
	return l.hits[len(l.hits)-1]
}

func (l *loopback) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hits)
}

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// browser follows redirects, like a browser or chromium --dump-dom.
var browser = &http.Client{Timeout: 10 * time.Second, Jar: newJar()}

func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}

// pkcePair returns a fresh S256 verifier and its challenge.
func pkcePair() (verifier, challenge string) {
	v := oauth2.GenerateVerifier()
	return v, oauth2.S256ChallengeFromVerifier(v)
}

// authorizeURL builds a request to the server's /oauth/authorize.
func authorizeURL(s *Server, clientID, redirectURI, state, challenge string, extra url.Values) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return s.URL() + "/oauth/authorize?" + q.Encode()
}

// login logs in through the server's /oauth/authorize with AutoApprove,
// following every redirect to the loopback, and returns the code (the
// OP's in generation 1, the server's in generation 2).
func login(t *testing.T, s *Server, lb *loopback, clientID, challenge string, extra url.Values) string {
	t.Helper()
	return loginAt(t, s, lb, lb.redirectURI(), clientID, challenge, extra)
}

// loginAt is login with an explicit redirect_uri that must reach lb.
func loginAt(t *testing.T, s *Server, lb *loopback, redirectURI, clientID, challenge string, extra url.Values) string {
	t.Helper()
	state := "st-" + oauth2.GenerateVerifier()[:12]
	resp, err := browser.Get(authorizeURL(s, clientID, redirectURI, state, challenge, extra))
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/callback" {
		t.Fatalf("flow ended at %s with %d: %s", resp.Request.URL.Redacted(), resp.StatusCode, body)
	}
	q := lb.last(t)
	if got := q.Get("state"); got != state {
		t.Fatalf("state = %q, want %q", got, state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code at the loopback: %v", q)
	}
	return q.Get("code")
}

// oauthConfig is a client's configuration at the OP.
func oauthConfig(s *Server, clientID, secret, redirectURI string, style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		RedirectURL:  redirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:   s.IssuerURL() + idpAuthPath,
			TokenURL:  s.IssuerURL() + idpTokenPath,
			AuthStyle: style,
		},
	}
}

// gen2Config is an MCP client's configuration at the generation-2 server.
func gen2Config(s *Server, clientID, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:    clientID,
		RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:   s.URL() + "/oauth/authorize",
			TokenURL:  s.URL() + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
}

// exchange redeems code with the verifier if it is not empty.
func exchange(t *testing.T, cfg *oauth2.Config, code, verifier string) (*oauth2.Token, error) {
	t.Helper()
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	return cfg.Exchange(testContext(t), code, opts...)
}

// refreshWith uses a refresh token.
func refreshWith(t *testing.T, cfg *oauth2.Config, rt string) (*oauth2.Token, error) {
	t.Helper()
	return cfg.TokenSource(testContext(t), &oauth2.Token{RefreshToken: rt}).Token()
}

// oauthErr returns the HTTP status and OAuth error code of a failed token request.
func oauthErr(t *testing.T, err error) (int, string) {
	t.Helper()
	status, code, _ := tokenErr(t, err)
	return status, code
}

// tokenErr returns status, error code and description of a failed token request.
func tokenErr(t *testing.T, err error) (int, string, string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want an OAuth error response, got %v", err)
	}
	return re.Response.StatusCode, re.ErrorCode, re.ErrorDescription
}

// tokens logs DefaultUser in as PublicClientID and redeems the code: at the
// OP in generation 1, at the server in generation 2.
func tokens(t *testing.T, s *Server) *oauth2.Token {
	t.Helper()
	lb := newLoopback(t)
	verifier, challenge := pkcePair()
	code := login(t, s, lb, PublicClientID, challenge, nil)
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	if s.Options().Generation == 2 {
		cfg = gen2Config(s, PublicClientID, lb.redirectURI())
	} else {
		verifier = "" // the generation-1 server does not forward the challenge
	}
	tok, err := exchange(t, cfg, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwtPart decodes a JWT's header (0) or payload (1) without verifying it.
func jwtPart(t *testing.T, jwt string, part int) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[part])
	if err != nil {
		t.Fatalf("JWT: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("JWT: %v", err)
	}
	return m
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, jwt string) map[string]any { return jwtPart(t, jwt, 1) }

func getJSON(t *testing.T, rawURL string, into any) *http.Response {
	t.Helper()
	resp, err := noRedirect.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: decoding JSON: %v", rawURL, err)
		}
	}
	return resp
}

// postJSON posts a JSON body and returns the status, headers and body.
func postJSON(t *testing.T, rawURL string, body any) (int, http.Header, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	resp, err := noRedirect.Post(rawURL, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// bearer adds an Authorization header to every request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// mcpSession connects an MCP client of the official Go SDK to the server's
// /mcp with the token.
func mcpSession(t *testing.T, s *Server, token string, opts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "devserver-test", Version: "1"}, opts)
	cs, err := client.Connect(testContext(t), &mcp.StreamableClientTransport{
		Endpoint:   s.URL() + "/mcp",
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: bearer{token: token, base: http.DefaultTransport}},
		MaxRetries: -1,
	}, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, nil
}

func mustMCPSession(t *testing.T, s *Server, token string) *mcp.ClientSession {
	t.Helper()
	cs, err := mcpSession(t, s, token, nil)
	if err != nil {
		t.Fatalf("MCP connect: %v", err)
	}
	return cs
}

// callTool calls a tool and returns its structured result. It checks that
// the text content holds the same JSON.
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) map[string]any {
	t.Helper()
	res, err := cs.CallTool(testContext(t), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("%s: tool error or %d contents: %+v", name, len(res.Content), res.Content)
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("%s: content is %T, want text", name, res.Content[0])
	}
	var fromText, fromStructured map[string]any
	if err := json.Unmarshal([]byte(text.Text), &fromText); err != nil {
		t.Fatalf("%s: text content is not JSON: %v", name, err)
	}
	structured, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(structured, &fromStructured)
	if a, b := mustJSON(fromText), mustJSON(fromStructured); a != b {
		t.Fatalf("%s: text %s differs from structured content %s", name, a, b)
	}
	return fromStructured
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// serverRefresh uses a refresh token of the server's own client at the OP.
func serverRefresh(t *testing.T, s *Server, rt string) (*oauth2.Token, error) {
	t.Helper()
	cfg := oauthConfig(s, ServerClientID, s.ServerClientSecret(), s.URL()+"/oauth/callback", oauth2.AuthStyleInHeader)
	return refreshWith(t, cfg, rt)
}

// clock returns a test clock and options that use it.
func clockOptions(opts Options) (Options, *testClock) {
	c := &testClock{}
	opts.Now = c.Now
	return opts, c
}

// tokensAs logs user in through the OP's login page (the server must run
// without AutoApprove) and redeems the code as tokens does.
func tokensAs(t *testing.T, s *Server, user User) *oauth2.Token {
	t.Helper()
	lb := newLoopback(t)
	verifier, challenge := pkcePair()
	resp, err := browser.Get(authorizeURL(s, PublicClientID, lb.redirectURI(), "st-as", challenge, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != loginPath {
		t.Fatalf("the login stopped at %s, not on the login page", resp.Request.URL.Redacted())
	}
	resp, err = browser.PostForm(s.IssuerURL()+loginPath, url.Values{"id": {resp.Request.URL.Query().Get("id")},
		"username": {user.Username}, "password": {user.Password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
	if s.Options().Generation == 2 {
		cfg = gen2Config(s, PublicClientID, lb.redirectURI())
	} else {
		verifier = ""
	}
	tok, err := exchange(t, cfg, lb.last(t).Get("code"), verifier)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
