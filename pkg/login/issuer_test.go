package login_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/devserver/devlogin"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/loopback"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// issAS is an MCP server and its authorization server, written by hand:
// the dev server's OpenID Provider (zitadel/oidc) neither advertises nor
// sends the iss parameter of RFC 9207, so it cannot give the responses
// these tests need. advertised is the metadata's
// authorization_response_iss_parameter_supported (nil: absent); iss gives
// what the redirect carries for the issuer (nil: no iss). It counts the
// token requests: a refused response must never reach the token endpoint.
type issAS struct {
	disc   *discovery.Result
	tokens atomic.Int32
	issuer string
}

func newIssAS(t *testing.T, advertised *bool, iss func(issuer string) string) *issAS {
	t.Helper()
	as := &issAS{}
	asSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			m := map[string]any{"issuer": as.issuer, "authorization_endpoint": as.issuer + "/authorize", "token_endpoint": as.issuer + "/token",
				"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"}}
			if advertised != nil {
				m["authorization_response_iss_parameter_supported"] = *advertised
			}
			_ = json.NewEncoder(w).Encode(m)
		case "/authorize":
			q := r.URL.Query()
			back, _ := url.Parse(q.Get("redirect_uri"))
			v := url.Values{"code": {"the-code"}, "state": {q.Get("state")}}
			if iss != nil {
				v.Set("iss", iss(as.issuer))
			}
			back.RawQuery = v.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
		case "/token":
			as.tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(asSrv.Close)
	as.issuer = asSrv.URL
	var mcp *httptest.Server
	mcp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/mcp":
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+mcp.URL+`/.well-known/oauth-protected-resource/mcp"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "/.well-known/oauth-protected-resource/mcp":
			_ = json.NewEncoder(w).Encode(map[string]any{"resource": mcp.URL + "/mcp", "authorization_servers": []string{asSrv.URL}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(mcp.Close)
	disc, err := discovery.Discover(context.Background(), http.DefaultClient, mcp.URL)
	if err != nil {
		t.Fatal(err)
	}
	as.disc = disc
	return as
}

// TestIssuerInTheAuthorizationResponse is the decision table of RFC 9207
// section 2.4 for a browser login: a response whose iss is the issuer of
// the authorization server's metadata, byte for byte, or that carries none
// where the metadata does not promise it, is exchanged; any other is
// refused before the token endpoint is asked, and nothing is stored. The
// dev server (no iss, not advertised: generations 1 and 2) is the last
// row, with a real OpenID Provider.
func TestIssuerInTheAuthorizationResponse(t *testing.T) {
	yes, no := true, false
	same := func(issuer string) string { return issuer }
	evil := func(string) string { return "https://evil.example.com" }
	// The issuer with a slash appended: the same URL to a normalising
	// comparison, another issuer to the simple string comparison of RFC 9207.
	slash := func(issuer string) string { return issuer + "/" }
	tests := []struct {
		name       string
		advertised *bool
		iss        func(string) string
		accept     bool
	}{
		{"advertised, iss the issuer", &yes, same, true},
		{"not advertised, no iss", nil, nil, true},
		{"advertised false, no iss", &no, nil, true},
		{"not advertised, iss the issuer", nil, same, true},
		{"advertised, iss missing", &yes, nil, false},
		{"advertised, wrong issuer", &yes, evil, false},
		{"not advertised, unexpected iss", nil, evil, false},
		{"advertised, trailing slash", &yes, slash, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newIssAS(t, tt.advertised, tt.iss)
			st := devlogin.FileStore(t)
			f := &login.Flow{Store: st, HTTP: http.DefaultClient}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			a, err := f.Start(login.Browser{Disc: as.disc, Client: oauth.Client{ID: "c1", AuthMethod: "none"}})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			devlogin.Browse(a.StartURL)
			res, err := a.Wait(ctx, nil, nil)
			cfg, _ := store.LoadConfig(st.Dir)
			if tt.accept {
				if err != nil || res == nil || as.tokens.Load() != 1 {
					t.Fatalf("Wait = %v, %v; token requests %d, want 1", res, err, as.tokens.Load())
				}
				return
			}
			var ie *loopback.IssuerError
			if !errors.As(err, &ie) || ie.Expected != as.issuer {
				t.Fatalf("Wait = %v, %v; want an IssuerError for %s", res, err, as.issuer)
			}
			if n := as.tokens.Load(); n != 0 {
				t.Fatalf("%d token requests after a refused response", n)
			}
			if len(cfg.Servers) != 0 {
				t.Fatalf("stored %v after a refused response", cfg.ServerURLs())
			}
		})
	}
	for _, gen := range []int{1, 2} {
		t.Run("dev server generation "+string(rune('0'+gen)), func(t *testing.T) {
			_, disc := devlogin.Start(t, devserver.Options{AutoApprove: true, Generation: gen})
			if disc.Provider.AuthorizationResponseIssParameterSupported {
				t.Fatal("the dev server advertises iss: this row no longer tests the servers that do not")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := devlogin.Login(ctx, devlogin.FileStore(t), disc, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}
