package oauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"golang.org/x/oauth2"
)

// fuzzMarker stands for a secret in a token response (an access or refresh
// token): error messages must never show it.
const fuzzMarker = "SECRET-MARKER"

// fuzzTokenEndpoint answers every request with the current fuzz input.
type fuzzTokenEndpoint struct {
	srv *httptest.Server

	mu       sync.Mutex
	status   int
	ct       string
	body     []byte
	truncate bool // drop the connection before the body is complete
	hits     int
}

func newFuzzTokenEndpoint(tb testing.TB) *fuzzTokenEndpoint {
	e := &fuzzTokenEndpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		status, ct, body, truncate := e.status, e.ct, e.body, e.truncate
		e.hits++
		e.mu.Unlock()
		_ = r.ParseForm()
		if truncate {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, http.StatusText(status), ct, len(body)+16)
			_, _ = buf.Write(body)
			_ = buf.Flush()
			return
		}
		if ct == "" {
			w.Header()["Content-Type"] = nil // no sniffing: no Content-Type at all
		} else {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	tb.Cleanup(e.srv.Close)
	return e
}

func (e *fuzzTokenEndpoint) set(status int, ct string, body []byte, truncate bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status, e.ct, e.body, e.truncate, e.hits = status, ct, body, truncate, 0
}

func (e *fuzzTokenEndpoint) answered() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits > 0
}

// fuzzStatus maps a fuzzed number onto a final HTTP status (200-599).
func fuzzStatus(n uint16) int {
	if n >= 200 && n <= 599 {
		return int(n)
	}
	return 200 + int(n)%400
}

// fuzzHeaderValue drops what cannot be in a header value (net/http's
// server would send it and the client refuse the whole response).
func fuzzHeaderValue(v string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, v))
}

// fuzzClient picks one of the client kinds ncmcp uses.
func fuzzClient(kind uint8) Client {
	switch kind % 4 {
	case 1:
		return Client{ID: "confidential", Secret: "client-secret", AuthMethods: []string{"client_secret_basic", "client_secret_post"}}
	case 2:
		return Client{ID: "confidential", Secret: "client-secret", AuthMethods: []string{"client_secret_post"}}
	case 3:
		return Client{ID: "confidential", Secret: "client-secret"} // auto-detect: may post twice
	}
	return Client{ID: "ncmcp-public"}
}

// fuzzCheckTokenError checks an error from Exchange or Refresh after the
// endpoint answered status with body.
func fuzzCheckTokenError(t *testing.T, op string, err error, status int, ct string, body []byte, truncated bool) {
	t.Helper()
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("%s: error %T %v, want a *TokenError", op, err, err)
	}
	msg := err.Error()
	// The OAuth error fields are meant to be shown; nothing else of the body.
	fromFields := strings.Contains(te.Code, fuzzMarker) || strings.Contains(te.Description, fuzzMarker)
	if strings.Contains(msg, fuzzMarker) && !fromFields {
		// Found by this fuzzer before 1e3fc59: x/oauth2's decoding error
		// quoted a value from the body ({"eXpires_in":"SECRET-MARKER"}).
		t.Fatalf("%s: the error shows a secret from the body (status %d, %q, %q): %s", op, status, ct, body, msg)
	}
	if truncated {
		// The connection broke in the body: the error may say the
		// endpoint was unreachable, or give its status, not another one.
		if te.Status != 0 && te.Status != status {
			t.Fatalf("%s: the endpoint answered %d and broke the connection, but the error says %d: %s", op, status, te.Status, msg)
		}
		return
	}
	// The endpoint answered: the error must say with what, not that it was
	// unreachable. A 2xx whose body x/oauth2 cannot use is Unusable (x/oauth2
	// does not say which 2xx it was); any other answer carries its status.
	if status >= 200 && status < 300 && te.Status != status {
		if !te.Unusable || strings.Contains(msg, "unreachable") {
			t.Fatalf("%s: the endpoint answered %d %q %q but the error does not say the answer was unusable: %s", op, status, ct, body, msg)
		}
		return
	}
	if te.Status != status {
		t.Fatalf("%s: the endpoint answered %d %q %q but TokenError.Status is %d: %s", op, status, ct, body, te.Status, msg)
	}
	if te.Refused() != (status >= 400 && status < 500) {
		t.Fatalf("%s: Refused() = %v for HTTP %d", op, te.Refused(), status)
	}
}

// fuzzCheckToken checks a token that Exchange or Refresh accepted.
func fuzzCheckToken(t *testing.T, op string, tok *oauth2.Token, status int, body []byte, truncated bool) {
	t.Helper()
	if truncated {
		t.Fatalf("%s: success with a body cut short: %+v", op, tok)
	}
	if tok == nil || tok.AccessToken == "" {
		t.Fatalf("%s: success without an access token (HTTP %d %q): %+v", op, status, body, tok)
	}
	if status < 200 || status > 299 {
		t.Fatalf("%s: success on HTTP %d", op, status)
	}
	exp := Expiry(tok)
	if !tok.Expiry.IsZero() && !exp.Equal(tok.Expiry) {
		t.Fatalf("%s: Expiry = %v, the token says %v", op, exp, tok.Expiry)
	}
	for _, s := range Scopes(tok) {
		if s == "" || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
			t.Fatalf("%s: Scopes = %q", op, Scopes(tok))
		}
	}
}

// FuzzTokenResponse answers Login.Exchange and Refresh with fuzzed token
// endpoint responses.
func FuzzTokenResponse(f *testing.F) {
	const jsonCT = "application/json;charset=UTF-8"
	for _, s := range []struct {
		status uint16
		ct     string
		body   string
	}{
		{200, jsonCT, `{"access_token":"SECRET-MARKER-at","token_type":"Bearer","expires_in":3600,"refresh_token":"SECRET-MARKER-rt","scope":"openid offline_access notes.read","id_token":"SECRET-MARKER.id.token"}`},
		{200, "application/json", `{"access_token":"SECRET-MARKER-at","token_type":"bearer","expires_in":"3600"}`},
		{200, "application/json", `{"access_token":"SECRET-MARKER-at","token_type":"Bearer","expires_in":0,"scope":""}`},
		{200, "application/json", `{"access_token":"SECRET-MARKER-at","token_type":"Bearer","expires_in":null,"scope":["openid"]}`},
		{200, "application/x-www-form-urlencoded", `access_token=SECRET-MARKER-at&token_type=bearer&expires_in=3600&scope=notes.read+notes.write&refresh_token=SECRET-MARKER-rt`},
		{200, "text/plain", `access_token=SECRET-MARKER-at&expires_in=abc`},
		{200, "application/json", `{"token_type":"Bearer","refresh_token":"SECRET-MARKER-rt"}`},
		{200, "application/json", `{"error":"invalid_grant","error_description":"Code not valid","access_token":"SECRET-MARKER-at"}`},
		{400, jsonCT, `{"error":"invalid_grant","error_description":"Code not valid","refresh_token":"SECRET-MARKER-rt"}`},
		{400, jsonCT, `{"error":"invalid_request","error_description":"code_verifier unexpectedly provided"}`},
		{400, jsonCT, `{"error":"invalid_grant","error_description":"PKCE code verifier specified but challenge not present in authorization"}`},
		{401, jsonCT, `{"error":"invalid_client","error_description":"Client authentication failed"}`},
		{400, "application/x-www-form-urlencoded", `error=invalid_grant&error_description=expired&access_token=SECRET-MARKER-at`},
		{400, "text/plain", `%zz SECRET-MARKER`},
		{500, "text/html", `<html><body>Internal Server Error SECRET-MARKER</body></html>`},
		{503, "", `SECRET-MARKER`},
		{302, "", ``},
		{204, "", ``},
	} {
		for _, kind := range []uint8{0, 1} {
			f.Add(s.status, s.ct, []byte(s.body), kind)
		}
	}
	// Connections dropped in the body.
	f.Add(uint16(200), "application/json", []byte(`{"access_token":"SECRET-MARKER-at","token_type":"Bearer"}`), uint8(8))
	f.Add(uint16(400), "application/json", []byte(`{"error":"invalid_grant"}`), uint8(8))
	f.Add(uint16(502), "text/html", []byte(`<html>Bad Gateway SECRET-MARKER</html>`), uint8(9))
	ep := newFuzzTokenEndpoint(f)
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Fuzz(func(t *testing.T, rawStatus uint16, ct string, body []byte, kind uint8) {
		status := fuzzStatus(rawStatus)
		ct = fuzzHeaderValue(ct)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c := fuzzClient(kind)
		truncate := kind&8 != 0 && status != http.StatusNoContent && status != http.StatusNotModified // those have no body

		ep.set(status, ct, body, truncate)
		l := NewLogin(ep.srv.URL+"/authorize", ep.srv.URL+"/token", c, "http://127.0.0.1:53682/callback")
		l.NoVerifierFallback = kind&4 != 0
		tok, err := l.Exchange(ctx, hc, "the-code")
		if !ep.answered() {
			t.Fatalf("exchange: the endpoint was not reached: %v", err)
		}
		if err != nil {
			fuzzCheckTokenError(t, "exchange", err, status, ct, body, truncate)
		} else {
			fuzzCheckToken(t, "exchange", tok, status, body, truncate)
		}

		ep.set(status, ct, body, truncate)
		tok, err = Refresh(ctx, hc, ep.srv.URL+"/token", c, "the-old-refresh-token", "")
		if err != nil {
			fuzzCheckTokenError(t, "refresh", err, status, ct, body, truncate)
			return
		}
		fuzzCheckToken(t, "refresh", tok, status, body, truncate)
		if tok.RefreshToken == "" {
			t.Fatalf("refresh: the answer %q lost the refresh token", body)
		}
	})
}

// FuzzExpiry reads arbitrary access tokens, and JWTs with a given exp.
func FuzzExpiry(f *testing.F) {
	f.Add("opaque-token", int64(1893456000))
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE4OTM0NTYwMDAsInN1YiI6ImFsaWNlIn0.c2ln", int64(0))
	f.Add("a.b.c", int64(-1))
	f.Add("h.eyJleHAiOiIxODkzNDU2MDAwIn0.s", int64(1<<62))
	f.Add("h.eyJleHAiOjEuNWUzfQ.s", int64(1))
	f.Add("..", int64(9223372036854775807))
	f.Fuzz(func(t *testing.T, s string, exp int64) {
		got := Expiry(&oauth2.Token{AccessToken: s})
		if !got.IsZero() && got.Unix() <= 0 {
			t.Fatalf("Expiry(%q) = %v, not after the epoch", s, got)
		}
		if !got.IsZero() && strings.Count(s, ".") != 2 {
			t.Fatalf("Expiry(%q) = %v from a token that is not a JWT", s, got)
		}
		set := time.Unix(1700000000, 0)
		if e := Expiry(&oauth2.Token{AccessToken: s, Expiry: set}); !e.Equal(set) {
			t.Fatalf("Expiry(%q) with expires_in = %v, want %v", s, e, set)
		}

		payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"a","exp":` + strconv.FormatInt(exp, 10) + `}`))
		got = Expiry(&oauth2.Token{AccessToken: "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"})
		want := time.Time{}
		if exp > 0 {
			want = time.Unix(exp, 0)
		}
		if !got.Equal(want) {
			t.Fatalf("Expiry of a JWT with exp %d = %v, want %v", exp, got, want)
		}
	})
}

// FuzzMatchScopes maps fuzzed scope lists (space-separated) onto fuzzed
// scopes_supported lists.
func FuzzMatchScopes(f *testing.F) {
	f.Add("offline_access notes.read calendar:write other", "openid offline_access notes:read calendar.write")
	f.Add("notes:read", "notes.read NOTES_READ")
	f.Add("openid profile email offline_access", "")
	f.Add("", "openid")
	f.Add("Notes.Read notes.read", "notes:read")
	// A server in transition lists both spellings.
	f.Add("openid notes:read", "openid notes:read notes.read")
	f.Fuzz(func(t *testing.T, req, sup string) {
		requested, supported := strings.Fields(req), strings.Fields(sup)
		listed := map[string]bool{}
		for _, s := range supported {
			listed[s] = true
		}
		out, notes := MatchScopes(requested, supported)
		if len(out) != len(requested) {
			t.Fatalf("MatchScopes(%q, %q) = %q: %d scopes for %d", requested, supported, out, len(out), len(requested))
		}
		changed := 0
		canon := strings.NewReplacer(":", ".", "_", ".")
		for i, r := range requested {
			if out[i] == r {
				continue
			}
			changed++
			if listed[r] {
				// Found by this fuzzer: see the report. A scope the server
				// lists as given is respelt when the server also lists
				// another spelling of it.
				t.Fatalf("MatchScopes(%q, %q) respells %q, which the server lists, to %q", requested, supported, r, out[i])
			}
			if !listed[out[i]] || canon.Replace(strings.ToLower(out[i])) != canon.Replace(strings.ToLower(r)) {
				t.Fatalf("MatchScopes(%q, %q): %q became %q", requested, supported, r, out[i])
			}
		}
		if len(notes) != changed {
			t.Fatalf("MatchScopes(%q, %q) = %q with notes %q: %d changes", requested, supported, out, notes, changed)
		}
		again, notes2 := MatchScopes(out, supported)
		if strings.Join(again, " ") != strings.Join(out, " ") || len(notes2) != 0 {
			t.Fatalf("MatchScopes is not idempotent: %q -> %q -> %q (%q)", requested, out, again, notes2)
		}
	})
}
