package loopback

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzNewResponder builds a responder exactly as WaitOrPaste does.
func fuzzNewResponder(state string, complete func(ctx context.Context, code string) Result) *responder {
	r := &responder{state: state, complete: complete, done: make(chan outcome, 1), claimed: make(chan struct{}, 1)}
	r.claimed <- struct{}{}
	return r
}

// fuzzHandle runs r.handle with a deadline, so that a handle that blocks
// (for instance on a second send to the one-slot done channel) fails the
// input instead of hanging the fuzzer.
func fuzzHandle(t *testing.T, r *responder, q url.Values) (int, Result) {
	t.Helper()
	type ret struct {
		status int
		res    Result
	}
	ch := make(chan ret, 1)
	go func() {
		s, res := r.handle(context.Background(), q)
		ch <- ret{s, res}
	}()
	select {
	case x := <-ch:
		return x.status, x.res
	case <-time.After(10 * time.Second):
		t.Fatalf("handle(%v) blocked", q)
		return 0, Result{}
	}
}

// fuzzRender renders a page as the listener does and returns status and body.
func fuzzRender(status int, res Result) (int, string, http.Header) {
	rec := httptest.NewRecorder()
	render(rec, status, res)
	return rec.Code, rec.Body.String(), rec.Header()
}

// fuzzCheckPage asserts that a rendered page carries no markup from its
// Result: the page must escape every '<' of Title and Message, so the
// page has exactly as many '<' as the page for an empty Result.
func fuzzCheckPage(t *testing.T, status int, res Result) {
	t.Helper()
	code, body, h := fuzzRender(status, res)
	if code != http.StatusOK && code != http.StatusBadRequest && code != http.StatusConflict {
		t.Fatalf("rendered status %d for handle status %d", code, status)
	}
	if strings.Contains(strings.ToLower(body), "<script") {
		t.Fatalf("page for %+v contains a script tag:\n%s", res, body)
	}
	_, empty, _ := fuzzRender(status, Result{OK: res.OK})
	if got, want := strings.Count(body, "<"), strings.Count(empty, "<"); got != want {
		t.Fatalf("page for %+v has %d '<', the bare template %d: markup from the input is not escaped:\n%s", res, got, want, body)
	}
	if h.Get("Content-Security-Policy") == "" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("page headers %v", h)
	}
}

// FuzzCallback feeds the responder two authorization responses (raw query
// strings, as the browser would send them to /callback) and checks what it
// decides and what the browser is shown.
func FuzzCallback(f *testing.F) {
	const st = "Q2xWUFdLQ1ZXNkFNVEZQTUlZNFk"
	f.Add(st, "code=abc123&state="+st, "code=abc123&state="+st, true)
	f.Add(st, "code=abc123&state="+st+"&iss=https%3A%2F%2Fcloud.example.com", "code=other&state=wrong", true)
	f.Add(st, "code=forged&state=wrong", "code=real&state="+st, true)
	f.Add(st, "code=abc&state=", "code=abc", false)
	f.Add(st, "error=access_denied&error_description=The+user+denied+access&state="+st, "code=late&state="+st, true)
	f.Add(st, "error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&error_uri=javascript:alert(1)&state="+st, "", true)
	f.Add(st, "code=%3Cscript%3Ealert(document.cookie)%3C/script%3E&state="+st, "", true)
	f.Add(st, "code=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E&state="+st, "", false)
	f.Add(st, "state="+st, "code=x&state="+st, true)
	f.Add(st, "state="+st+"&state=other&code=1", "state=other&state="+st+"&code=2", true)
	f.Add(st, "code=a;state="+st, "code=a&state="+st+"%00", true)
	f.Add(st, "code=%zz&state="+st, "code=a&state="+strings.ToLower(st), true)
	f.Add("", "code=abc&state=", "state=&code=abc", true)
	f.Add("x", "code=&state=x&error=", "code=c&state=x", false)
	f.Fuzz(func(t *testing.T, state, first, second string, ok bool) {
		var calls []string
		r := fuzzNewResponder(state, func(ctx context.Context, code string) Result {
			if ctx.Err() != nil {
				t.Errorf("complete called with a done context")
			}
			calls = append(calls, code)
			title := "Logged in"
			if !ok {
				title = "Login failed"
			}
			return Result{OK: ok, Title: title, Message: "code " + code + " for " + state}
		})
		accepted := 0
		for i, raw := range []string{first, second} {
			q, _ := url.ParseQuery(raw) // what req.URL.Query() gives the handler
			before := len(calls)
			status, res := fuzzHandle(t, r, q)
			fuzzCheckPage(t, status, res)

			matches := q.Get("state") != "" && q.Get("state") == state
			switch {
			case !matches:
				if status != stateMismatchStatus {
					t.Fatalf("response %d %q with state %q (want %q): status %d, want the state-mismatch page", i, raw, q.Get("state"), state, status)
				}
				if len(calls) != before {
					t.Fatalf("response %d %q with a wrong state reached complete", i, raw)
				}
				continue
			case accepted > 0:
				if status != http.StatusConflict || len(calls) != before {
					t.Fatalf("second response %q accepted after the first: status %d, complete calls %v", raw, status, calls)
				}
				continue
			}
			accepted++
			var o outcome
			select {
			case o = <-r.done:
			default:
				t.Fatalf("response %d %q was accepted (status %d) but produced no outcome", i, raw, status)
			}
			switch {
			case q.Get("error") != "":
				var ae *AuthError
				if !errors.As(o.err, &ae) || ae.Code != q.Get("error") || ae.Description != q.Get("error_description") || ae.URI != q.Get("error_uri") {
					t.Fatalf("error response %q: outcome %v", raw, o.err)
				}
				if len(calls) != before {
					t.Fatalf("error response %q reached complete", raw)
				}
				if status != http.StatusOK || res.OK {
					t.Fatalf("error response %q: status %d, %+v", raw, status, res)
				}
			case q.Get("code") == "":
				var ae *AuthError
				if !errors.As(o.err, &ae) || ae.Code != "invalid_response" || len(calls) != before || status != http.StatusBadRequest {
					t.Fatalf("response %q without code: outcome %v, status %d, calls %v", raw, o.err, status, calls)
				}
			default:
				if len(calls) != before+1 || calls[before] != q.Get("code") {
					t.Fatalf("response %q: complete calls %q, want exactly [%q]", raw, calls[before:], q.Get("code"))
				}
				if o.err != nil || o.res != res || res.OK != ok {
					t.Fatalf("response %q: outcome %+v, page %+v", raw, o, res)
				}
				if want := map[bool]int{true: http.StatusOK, false: http.StatusBadRequest}[ok]; status != want {
					t.Fatalf("response %q: status %d, want %d", raw, status, want)
				}
			}
		}
		select {
		case o := <-r.done:
			t.Fatalf("a second outcome %+v after %q, %q", o, first, second)
		default:
		}
		if len(calls) > 1 {
			t.Fatalf("complete called %d times: %q", len(calls), calls)
		}
	})
}

// FuzzParsePasted checks what is made of a line the user pastes.
func FuzzParsePasted(f *testing.F) {
	const st = "Q2xWUFdLQ1ZXNkFNVEZQTUlZNFk"
	for _, line := range []string{
		"http://127.0.0.1:53682/callback?code=abc123&state=" + st,
		"  http://127.0.0.1:53682/callback?code=abc123&state=" + st + "  \n",
		"http://127.0.0.1:53682/callback?state=" + st + "&code=abc123#_=_",
		"http://127.0.0.1:53682/callback?error=access_denied&error_description=denied&state=" + st,
		"code=abc123&state=" + st,
		"?code=abc123&state=" + st,
		"abc-DEF_123.x",
		"4/0AbCdEf-gHiJkLmN",
		"  c0de  ",
		"",
		"   \t\n",
		"some words",
		"http://127.0.0.1:53682/callback",
		"https://cloud.example.com/apps/oidc/authorize?client_id=x",
		"code=%zz",
		"code=a;state=b",
	} {
		f.Add(line, st)
	}
	f.Add("bare-code", "")
	f.Fuzz(func(t *testing.T, line, state string) {
		q, err := parsePasted(line, state)
		other := state + "-other"
		q2, err2 := parsePasted(line, other)
		if err != nil {
			if q != nil {
				t.Fatalf("parsePasted(%q) = %v with error %v", line, q, err)
			}
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("parsePasted(%q): the error depends on the state: %v / %v", line, err, err2)
			}
			return
		}
		if q.Get("code") == "" && q.Get("error") == "" {
			// Found by this fuzzer ("code=", kept in testdata), fixed in
			// 1e3fc59.
			t.Fatalf("parsePasted(%q) = %v: accepted with neither code nor error", line, q)
		}
		trimmed := strings.TrimSpace(line)
		bare := !strings.Contains(trimmed, "code=") && !strings.Contains(trimmed, "error=")
		if bare {
			// A bare code: nothing else, and this login's state.
			want := url.Values{"code": {trimmed}, "state": {state}}
			if !reflect.DeepEqual(q, want) {
				t.Fatalf("parsePasted(%q, %q) = %v, want %v", line, state, q, want)
			}
			if strings.ContainsAny(trimmed, " /?&=") {
				t.Fatalf("parsePasted(%q) took a URL-like line as a bare code", line)
			}
			return
		}
		// A pasted URL or query: its state, never the one of this login.
		if !reflect.DeepEqual(q, q2) || err2 != nil {
			t.Fatalf("parsePasted(%q): the result depends on the expected state: %v / %v", line, q, q2)
		}
	})
}

// TestCallbackHostileRequests drives the real listener over HTTP with
// requests from the fuzz seeds: each gets an escaped page with the security
// headers and the expected status, and only the right response completes.
func TestCallbackHostileRequests(t *testing.T) {
	const st = "fuzz-state"
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(s.Port())
	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	codes := make(chan string, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		res, err := s.Wait(ctx, st, func(_ context.Context, code string) Result {
			codes <- code
			return Result{OK: true, Title: "Logged in", Message: "with code " + code}
		})
		done <- out{res, err}
	}()

	do := func(method, rawQuery string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, base+CallbackPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.RawQuery = rawQuery
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s ?%s: %v", method, rawQuery, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	// Wait until the server answers.
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", s.ln.Addr().String())
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, q := range []string{
		"code=%3Cscript%3Ealert(1)%3C/script%3E&state=wrong",
		"error=%3Cscript%3Ealert(1)%3C/script%3E&state=" + st + "x",
		"code=abc",
		"code=abc&state=",
		"code=%zz&state=wrong",
		"state=" + strings.ToUpper(st) + "&code=abc",
	} {
		status, body, h := do(http.MethodGet, q)
		if status != http.StatusBadRequest || strings.Contains(strings.ToLower(body), "<script") || !strings.Contains(body, "state mismatch") {
			t.Fatalf("GET ?%s: %d\n%s", q, status, body)
		}
		if h.Get("Content-Security-Policy") == "" || h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Fatalf("GET ?%s: headers %v", q, h)
		}
	}
	if status, _, _ := do(http.MethodPost, "code=abc&state="+st); status != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", status)
	}
	select {
	case c := <-codes:
		t.Fatalf("complete called with %q before the right response", c)
	default:
	}
	status, body, _ := do(http.MethodGet, "code=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state="+st)
	if status != http.StatusOK || strings.Contains(body, "<script") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatalf("right response: %d\n%s", status, body)
	}
	if c := <-codes; c != "<script>alert(1)</script>" {
		t.Fatalf("complete got code %q", c)
	}
	o := <-done
	if o.err != nil || !o.res.OK {
		t.Fatalf("Wait = %+v, %v", o.res, o.err)
	}
	// The listener is single-use: it is closed once Wait returns.
	if _, err := http.Get(base + CallbackPath + "?code=again&state=" + st); err == nil {
		t.Fatal("the listener still answers after Wait returned")
	}
}
