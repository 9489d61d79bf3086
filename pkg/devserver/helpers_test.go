package devserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestMain(m *testing.M) {
	// zitadel reports every refused request through the default logger;
	// the tests check those answers themselves.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
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
var browser = &http.Client{Timeout: 10 * time.Second}

// pkcePair returns a fresh S256 verifier and its challenge.
func pkcePair() (verifier, challenge string) {
	v := oauth2.GenerateVerifier()
	return v, oauth2.S256ChallengeFromVerifier(v)
}

// authorizeURL builds a Flow 1 request to the stand-in's /oauth/authorize.
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

// login runs Flow 1 through the stand-in with AutoApprove, following every
// redirect to the loopback, and returns the code.
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

func oauthConfig(s *Server, clientID, secret, redirectURI string, style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		RedirectURL:  redirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:   s.IssuerURL() + "/authorize",
			TokenURL:  s.IssuerURL() + "/oauth/token",
			AuthStyle: style,
		},
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
}

// exchange redeems code at the OP's token endpoint, with the verifier if it
// is not empty.
func exchange(t *testing.T, cfg *oauth2.Config, code, verifier string) (*oauth2.Token, error) {
	t.Helper()
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	return cfg.Exchange(testContext(t), code, opts...)
}

// oauthErr returns the HTTP status and OAuth error code of a failed token request.
func oauthErr(t *testing.T, err error) (int, string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want an OAuth error response, got %v", err)
	}
	return re.Response.StatusCode, re.ErrorCode
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return claims
}

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
