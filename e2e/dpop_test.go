package e2e

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// dpopServer is an MCP server that is its own authorization server and
// takes DPoP-bound tokens only (RFC 9449), written by hand because the dev
// server's OpenID Provider does not do DPoP. Its token endpoint and its
// MCP endpoint each want a proof with their own nonce (use_dpop_nonce
// first); the token endpoint binds each token to the proof's key, and
// the MCP endpoint checks that key, the access token's hash and that no
// jti comes twice.
type dpopServer struct {
	*httptest.Server
	t *testing.T

	mu        sync.Mutex
	bound     map[string]string // access token -> jkt
	jtis      map[string]bool
	issued    int
	grants    []string
	mcpCalls  int
	nonceAsks map[string]int // endpoint -> use_dpop_nonce answers
}

// proof verifies the request's DPoP proof for htu; "" and a reason when
// it is no good.
func (s *dpopServer) proof(r *http.Request, htu, token, nonce string) (jkt, problem string) {
	hs := r.Header.Values("DPoP")
	if len(hs) != 1 {
		return "", fmt.Sprintf("%d DPoP headers", len(hs))
	}
	jws, err := jose.ParseSignedCompact(hs[0], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", "not a JWS: " + err.Error()
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders["typ"] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return "", "bad header"
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return "", "bad signature"
	}
	var c struct {
		JTI   string  `json:"jti"`
		HTM   string  `json:"htm"`
		HTU   string  `json:"htu"`
		IAT   float64 `json:"iat"`
		ATH   string  `json:"ath"`
		Nonce string  `json:"nonce"`
	}
	_ = json.Unmarshal(payload, &c)
	if c.HTM != r.Method || c.HTU != htu || time.Since(time.Unix(int64(c.IAT), 0)).Abs() > 5*time.Minute {
		return "", fmt.Sprintf("proof for %s %s", c.HTM, c.HTU)
	}
	if s.jtis[c.JTI] || c.JTI == "" {
		return "", "jti replayed"
	}
	s.jtis[c.JTI] = true
	if token != "" {
		sum := crypto.SHA256.New()
		sum.Write([]byte(token))
		if c.ATH != base64.RawURLEncoding.EncodeToString(sum.Sum(nil)) {
			return "", "ath is not the token's hash"
		}
	}
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if c.Nonce != nonce {
		return base64.RawURLEncoding.EncodeToString(tp), "nonce"
	}
	return base64.RawURLEncoding.EncodeToString(tp), ""
}

func newDPoPServer(t *testing.T) *dpopServer {
	s := &dpopServer{t: t, bound: map[string]string{}, jtis: map[string]bool{}, nonceAsks: map[string]int{}}
	server := mcp.NewServer(&mcp.Implementation{Name: "dpop", Version: "0"}, nil)
	server.AddTool(&mcp.Tool{Name: "whoami", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "a DPoP-bound caller"}}}, nil
	})
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	mux := http.NewServeMux()
	// Unstarted until s.Server is set: the handlers read s.URL.
	s.Server = httptest.NewUnstartedServer(mux)
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"resource": s.URL + "/mcp", "authorization_servers": []string{s.URL}})
	})
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": s.URL, "authorization_endpoint": s.URL + "/authorize",
			"token_endpoint": s.URL + "/token", "registration_endpoint": s.URL + "/register",
			"code_challenge_methods_supported": []string{"S256"}, "token_endpoint_auth_methods_supported": []string{"none"},
			"dpop_signing_alg_values_supported": []string{"RS256", "ES256"}})
	})
	mux.HandleFunc("/register", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			RedirectURIs []string `json:"redirect_uris"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"client_id": "dpop-client", "redirect_uris": req.RedirectURIs, "token_endpoint_auth_method": "none"})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		back, _ := url.Parse(q.Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {"the-code"}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		jkt, problem := s.proof(r, s.URL+"/token", "", "as-nonce")
		if problem == "nonce" {
			s.nonceAsks["token"]++
			w.Header().Set("DPoP-Nonce", "as-nonce")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`))
			return
		}
		if problem != "" {
			t.Errorf("token request: %s", problem)
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_dpop_proof"}`))
			return
		}
		s.issued++
		s.grants = append(s.grants, r.PostForm.Get("grant_type"))
		at := fmt.Sprintf("dpop-at-%d", s.issued)
		s.bound[at] = jkt
		json.NewEncoder(w).Encode(map[string]any{"access_token": at, "token_type": "DPoP", "expires_in": 3600, "refresh_token": fmt.Sprintf("rt-%d", s.issued)})
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		challenge := `DPoP algs="ES256", resource_metadata="` + s.URL + `/.well-known/oauth-protected-resource/mcp"`
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
		s.mu.Lock()
		jkt, problem := s.proof(r, s.URL+"/mcp", tok, "rs-nonce")
		want, known := s.bound[tok]
		if ok && problem == "nonce" {
			s.nonceAsks["mcp"]++
		}
		s.mu.Unlock()
		switch {
		case !ok || !known:
			if r.Header.Get("Authorization") != "" && !ok {
				t.Errorf("Authorization %q: not the DPoP scheme", strings.Fields(r.Header.Get("Authorization"))[0])
			}
			w.Header().Set("WWW-Authenticate", challenge)
			w.WriteHeader(http.StatusUnauthorized)
			return
		case problem == "nonce":
			w.Header().Set("DPoP-Nonce", "rs-nonce")
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		case problem != "" || jkt != want:
			t.Errorf("MCP request: %s (key %s, token bound to %s)", problem, jkt, want)
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		s.mcpCalls++
		s.mu.Unlock()
		mcpHandler.ServeHTTP(w, r)
	})
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// TestDPoPLoginAndTools: against a server that offers DPoP, 'ncmcp login'
// binds the tokens to a key of the account (proofs with the authorization
// server's nonce), 'ncmcp tools' calls with the DPoP scheme and fresh
// proofs (with the resource's nonce), 'ncmcp token' refuses the bound
// token while 'token --json' names its key, and a renewal uses the same
// key.
func TestDPoPLoginAndTools(t *testing.T) {
	t.Parallel()
	s := newDPoPServer(t)
	e := newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_SERVER", s.URL)

	r := e.mustRun("login")
	if !strings.Contains(r.Stderr, "DPoP-bound") {
		t.Errorf("the login does not say that the token is DPoP-bound:\n%s", r.Stderr)
	}
	r = e.mustRun("tools", "call", "whoami")
	if !strings.Contains(r.Stdout, "a DPoP-bound caller") {
		t.Errorf("tools call: %q", r.Stdout)
	}
	if s.nonceAsks["token"] != 1 || s.nonceAsks["mcp"] != 1 {
		t.Errorf("nonce challenges %v: want one at each endpoint, then the nonce kept", s.nonceAsks)
	}

	e.expectCode(2, "DPoP-bound", "token")
	e.expectCode(2, "DPoP-bound", "token", "--headers")
	r = e.mustRun("token", "--json")
	var j struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		DPoPBound   bool   `json:"dpop_bound"`
		JKT         string `json:"jkt"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &j); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	jkt := s.bound[j.AccessToken]
	s.mu.Unlock()
	if j.TokenType != "DPoP" || !j.DPoPBound || j.JKT == "" || j.JKT != jkt {
		t.Errorf("token --json = %s; the server bound the token to %s", r.Stdout, jkt)
	}

	// An expired token is renewed with a proof of the same key, and the
	// new token works with it.
	expireTokensInFile(t, e)
	e.mustRun("tools", "list")
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.grants) != 2 || s.grants[1] != "refresh_token" || s.bound["dpop-at-2"] != jkt {
		t.Errorf("grants %v, second token bound to %s, want a refresh with key %s", s.grants, s.bound["dpop-at-2"], jkt)
	}
	b, _ := os.ReadFile(store.SecretsPath(e.configDir()))
	if !strings.Contains(string(b), `dpop_key`) {
		t.Error("the key is not stored with the tokens")
	}
}
