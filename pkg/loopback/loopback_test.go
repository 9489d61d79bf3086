package loopback

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestListenBindsLoopbackOnly(t *testing.T) {
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.ln.Addr().(*net.TCPAddr)
	if !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("bound to %v, want 127.0.0.1", addr.IP)
	}
	if !strings.HasPrefix(s.RedirectURI(), "http://127.0.0.1:") || !strings.HasSuffix(s.RedirectURI(), "/callback") {
		t.Fatalf("redirect URI %q", s.RedirectURI())
	}
}

func TestListenPortInUse(t *testing.T) {
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Listen(s.Port())
	var pe *PortInUseError
	if !errors.As(err, &pe) || pe.Port != s.Port() {
		t.Fatalf("second Listen on %d: %v, want PortInUseError", s.Port(), err)
	}
}

// TestWaitRejectsWrongStateAndKeepsWaiting drives the listener as a browser
// would: a stray path, a forged state, then the real response.
func TestWaitRejectsWrongStateAndKeepsWaiting(t *testing.T) {
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + itoa(s.Port())
	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	var gotCode string
	go func() {
		r, err := s.Wait(context.Background(), "the-state", func(_ context.Context, code string) Result {
			gotCode = code
			return Result{OK: true, Title: "Logged in", Message: "as <alice>"}
		})
		done <- out{r, err}
	}()
	waitListening(t, base)

	if code, _ := get(t, base+"/other?code=x&state=the-state"); code != http.StatusNotFound {
		t.Fatalf("other path: %d, want 404", code)
	}
	code, body := get(t, base+"/callback?code=forged&state=wrong")
	if code != http.StatusBadRequest || !strings.Contains(body, "state mismatch") {
		t.Fatalf("wrong state: %d %q", code, body)
	}
	if code, _ := get(t, base+"/callback?code=forged"); code != http.StatusBadRequest {
		t.Fatalf("missing state: %d, want 400", code)
	}
	select {
	case o := <-done:
		t.Fatalf("Wait returned after a wrong state: %+v", o)
	default:
	}
	code, body = get(t, base+"/callback?code=the-code&state=the-state")
	if code != http.StatusOK || !strings.Contains(body, "Logged in") || !strings.Contains(body, "as &lt;alice&gt;") {
		t.Fatalf("valid callback: %d %q", code, body)
	}
	o := <-done
	if o.err != nil || !o.res.OK || gotCode != "the-code" {
		t.Fatalf("Wait = %+v, %v, code %q", o.res, o.err, gotCode)
	}
	// Single use: the listener is gone.
	if _, err := http.Get(base + "/callback?code=again&state=the-state"); err == nil {
		t.Fatal("listener still answers after the login")
	}
}

func TestWaitIdPError(t *testing.T) {
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + itoa(s.Port())
	errc := make(chan error, 1)
	called := false
	go func() {
		_, err := s.Wait(context.Background(), "st", func(context.Context, string) Result { called = true; return Result{OK: true} })
		errc <- err
	}()
	waitListening(t, base)
	code, body := get(t, base+"/callback?error=access_denied&error_description=User+said+no&state=st")
	if code != http.StatusOK || !strings.Contains(body, "User said no") {
		t.Fatalf("error page: %d %q", code, body)
	}
	err = <-errc
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Code != "access_denied" || ae.Description != "User said no" {
		t.Fatalf("Wait error = %v, want access_denied AuthError", err)
	}
	if called {
		t.Fatal("complete was called for an error response")
	}
}

func TestWaitTimeout(t *testing.T) {
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = s.Wait(ctx, "st", func(context.Context, string) Result { return Result{OK: true} })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want deadline exceeded", err)
	}
	if _, err := net.Dial("tcp", s.ln.Addr().String()); err == nil {
		t.Fatal("listener still open after timeout")
	}
}

func waitListening(t *testing.T, base string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(base + "/"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("listener never answered")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestPasted: a pasted URL with a wrong state is rejected and the wait goes
// on; the right URL completes the login like the browser would.
func TestPasted(t *testing.T) {
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	pasted := make(chan string)
	rejected := make(chan error, 4)
	done := make(chan string, 1)
	go func() {
		_, err := s.WaitOrPaste(context.Background(), "st", func(_ context.Context, code string) Result {
			done <- code
			return Result{OK: true}
		}, pasted, func(err error) { rejected <- err })
		if err != nil {
			t.Error(err)
		}
	}()
	pasted <- "http://127.0.0.1:1/callback?code=c1&state=other"
	if err := <-rejected; !errors.Is(err, ErrStateMismatch) {
		t.Fatalf("wrong state: %v", err)
	}
	pasted <- "no idea what to paste"
	if err := <-rejected; err == nil || !strings.Contains(err.Error(), "address bar") {
		t.Fatalf("garbage: %v", err)
	}
	pasted <- "  http://127.0.0.1:1/callback?code=c2&state=st  \n"
	if code := <-done; code != "c2" {
		t.Fatalf("code %q", code)
	}
}

func TestParsePasted(t *testing.T) {
	tests := []struct {
		in, code, state string
		ok              bool
	}{
		{"http://127.0.0.1:9/callback?code=abc&state=s1", "abc", "s1", true},
		{"code=abc&state=s1", "abc", "s1", true},
		{"abc-DEF_123.x", "abc-DEF_123.x", "mine", true},
		{"http://127.0.0.1:9/callback?error=access_denied&state=s1", "", "s1", true},
		{"", "", "", false},
		{"some words", "", "", false},
	}
	for _, tt := range tests {
		q, err := parsePasted(tt.in, "mine")
		if (err == nil) != tt.ok || (tt.ok && (q.Get("code") != tt.code || q.Get("state") != tt.state)) {
			t.Errorf("parsePasted(%q) = %v, %v", tt.in, q, err)
		}
	}
}

// TestStartPageWorksOnce: the browser gets the one-time start page, which
// redirects it to the authorization request, exactly as given, for the
// browser to make; a second visit (someone else with the link) ends the
// login, and a response that arrives after is not accepted.
func TestStartPageWorksOnce(t *testing.T) {
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	// Escapes, a non-ASCII value and a repeated parameter: the browser
	// must get the request byte for byte.
	authURL := "https://idp.example/authorize?client_id=a%2Fb&scope=openid+email&state=the-state&x=1&x=%E2%9C%93"
	start := s.Start(authURL)
	if strings.Contains(start, "the-state") || !strings.HasPrefix(start, "http://127.0.0.1:"+itoa(s.Port())+StartPath) {
		t.Fatalf("start URL %q", start)
	}
	base := "http://127.0.0.1:" + itoa(s.Port())
	done := make(chan error, 1)
	completed := false
	go func() {
		_, err := s.Wait(context.Background(), "the-state", func(context.Context, string) Result {
			completed = true
			return Result{OK: true}
		})
		done <- err
	}()
	waitListening(t, base)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != authURL {
		t.Fatalf("first visit: %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), authURL)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("first visit: Cache-Control %q, Referrer-Policy %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Referrer-Policy"))
	}
	if code, _ := get(t, base+StartPath+"wrong-id"); code != http.StatusNotFound {
		t.Fatalf("a wrong id: %d, want 404", code)
	}
	code, body := get(t, start)
	if code != http.StatusConflict || !strings.Contains(body, "already used") {
		t.Fatalf("second visit: %d %s", code, body)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrStartReused) {
			t.Fatalf("Wait = %v, want ErrStartReused", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a reused link did not end the wait")
	}
	if completed {
		t.Fatal("a response was completed")
	}
}
