package loopback

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const testIssuer = "https://as.example.com"

// TestCallbackIssuer is RFC 9207 section 2.4 at the callback: which
// responses reach the code exchange (complete) and which end the login
// with an *IssuerError, for an authorization server that advertises iss
// (required) and one that does not.
func TestCallbackIssuer(t *testing.T) {
	tests := []struct {
		name     string
		required bool
		query    string // besides state
		accept   bool
	}{
		{"advertised, iss exact", true, "code=c&iss=" + url.QueryEscape(testIssuer), true},
		{"not advertised, no iss", false, "code=c", true},
		{"not advertised, iss exact", false, "code=c&iss=" + url.QueryEscape(testIssuer), true},
		{"advertised, no iss", true, "code=c", false},
		{"advertised, wrong issuer", true, "code=c&iss=https%3A%2F%2Fevil.example.com", false},
		{"not advertised, wrong issuer", false, "code=c&iss=https%3A%2F%2Fevil.example.com", false},
		{"advertised, trailing slash", true, "code=c&iss=" + url.QueryEscape(testIssuer+"/"), false},
		{"advertised, upper case host", true, "code=c&iss=https%3A%2F%2FAS.example.com", false},
		{"advertised, default port", true, "code=c&iss=" + url.QueryEscape("https://as.example.com:443"), false},
		{"advertised, percent-encoded in the value", true, "code=c&iss=" + url.QueryEscape("https://as%2Eexample.com"), false},
		{"advertised, empty iss", true, "code=c&iss=", false},
		{"not advertised, empty iss", false, "code=c&iss=", false},
		{"advertised, iss twice", true, "code=c&iss=" + url.QueryEscape(testIssuer) + "&iss=https%3A%2F%2Fevil.example.com", false},
		{"not advertised, iss twice, both right", false, "code=c&iss=" + url.QueryEscape(testIssuer) + "&iss=" + url.QueryEscape(testIssuer), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			r := fuzzNewResponder("st", func(context.Context, string) Result { called = true; return Result{OK: true, Title: "Logged in"} })
			r.issuer, r.issRequired = testIssuer, tt.required
			q, err := url.ParseQuery(tt.query + "&state=st")
			if err != nil {
				t.Fatal(err)
			}
			status, page := fuzzHandle(t, r, q)
			o := <-r.done
			if tt.accept {
				if !called || o.err != nil || status != http.StatusOK {
					t.Fatalf("accept: complete called %v, outcome %v, status %d", called, o.err, status)
				}
				return
			}
			var ie *IssuerError
			if called || !errors.As(o.err, &ie) || ie.Expected != testIssuer {
				t.Fatalf("refuse: complete called %v, outcome %v", called, o.err)
			}
			if status != http.StatusBadRequest || page.OK || !strings.Contains(page.Message, "refused") {
				t.Fatalf("refuse: page %d %+v", status, page)
			}
			if msg := o.err.Error(); !strings.Contains(msg, "mix-up") || !strings.Contains(msg, "nothing was stored") {
				t.Fatalf("error %q does not say what happened", msg)
			}
		})
	}
}

// TestCallbackIssuerOnErrorResponse: an error response is checked like any
// other; one from another issuer is reported as such, not as the error of
// the authorization server the login went to.
func TestCallbackIssuerOnErrorResponse(t *testing.T) {
	for _, tt := range []struct {
		name     string
		required bool
		query    string
		wantIss  bool // an *IssuerError, else the *AuthError
	}{
		{"wrong iss", false, "error=access_denied&iss=https%3A%2F%2Fevil.example.com", true},
		{"advertised, no iss", true, "error=access_denied", true},
		{"advertised, iss exact", true, "error=access_denied&iss=" + url.QueryEscape(testIssuer), false},
		{"not advertised, no iss", false, "error=access_denied", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := fuzzNewResponder("st", func(context.Context, string) Result { t.Error("complete called"); return Result{} })
			r.issuer, r.issRequired = testIssuer, tt.required
			q, _ := url.ParseQuery(tt.query + "&state=st")
			fuzzHandle(t, r, q)
			o := <-r.done
			var ie *IssuerError
			var ae *AuthError
			switch {
			case tt.wantIss:
				if !errors.As(o.err, &ie) || ie.AuthError == nil || ie.AuthError.Code != "access_denied" || errors.As(o.err, &ae) {
					t.Fatalf("outcome %#v, want an IssuerError carrying access_denied", o.err)
				}
				if !strings.Contains(o.err.Error(), "access_denied") || !strings.Contains(o.err.Error(), "not taken as that server's") {
					t.Fatalf("message %q", o.err)
				}
			case !errors.As(o.err, &ae) || ae.Code != "access_denied":
				t.Fatalf("outcome %v, want access_denied", o.err)
			}
		})
	}
}

// TestCallbackIssuerNotExpected: a listener told no issuer checks none
// (ExpectIssuer is what turns the check on).
func TestCallbackIssuerNotExpected(t *testing.T) {
	r := fuzzNewResponder("st", func(context.Context, string) Result { return Result{OK: true} })
	q, _ := url.ParseQuery("code=c&state=st&iss=https%3A%2F%2Fanything.example")
	if status, _ := fuzzHandle(t, r, q); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if o := <-r.done; o.err != nil {
		t.Fatal(o.err)
	}
}

// TestBrowserIssuerRefused drives the real listener: the browser comes
// back with another issuer's response; the page says it was refused, the
// wait ends with an *IssuerError, and the code is never exchanged.
func TestBrowserIssuerRefused(t *testing.T) {
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	s.ExpectIssuer(testIssuer, true)
	base := "http://127.0.0.1:" + itoa(s.Port())
	errc := make(chan error, 1)
	called := false
	go func() {
		_, err := s.Wait(context.Background(), "st", func(context.Context, string) Result { called = true; return Result{OK: true} })
		errc <- err
	}()
	waitListening(t, base)
	code, body := get(t, base+"/callback?code=c&state=st&iss="+url.QueryEscape(testIssuer+"/"))
	if code != http.StatusBadRequest || !strings.Contains(body, "Login refused") || !strings.Contains(body, "RFC 9207") {
		t.Fatalf("page: %d %s", code, body)
	}
	var ie *IssuerError
	if err := <-errc; !errors.As(err, &ie) || len(ie.Got) != 1 || ie.Got[0] != testIssuer+"/" {
		t.Fatalf("Wait = %v, want an IssuerError", err)
	}
	if called {
		t.Fatal("the code was exchanged")
	}
}

// TestPastedIssuer: a pasted address is checked like the browser's
// response; a bare code, which carries no iss, is not taken from an
// authorization server that names itself, and the wait goes on.
func TestPastedIssuer(t *testing.T) {
	run := func(t *testing.T, required bool) (chan<- string, <-chan error, <-chan error, *bool) {
		s, err := Listen(0)
		if err != nil {
			t.Fatal(err)
		}
		s.ExpectIssuer(testIssuer, required)
		pasted := make(chan string)
		rejected := make(chan error, 4)
		errc := make(chan error, 1)
		called := new(bool)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		go func() {
			_, err := s.WaitOrPaste(ctx, "st", func(context.Context, string) Result { *called = true; return Result{OK: true} }, pasted, func(err error) { rejected <- err })
			errc <- err
		}()
		return pasted, rejected, errc, called
	}
	t.Run("wrong issuer", func(t *testing.T) {
		pasted, _, errc, called := run(t, false)
		pasted <- "http://127.0.0.1:1/callback?code=c&state=st&iss=https%3A%2F%2Fevil.example.com"
		var ie *IssuerError
		if err := <-errc; !errors.As(err, &ie) || *called {
			t.Fatalf("Wait = %v, exchanged %v", err, *called)
		}
	})
	t.Run("advertised, missing", func(t *testing.T) {
		pasted, _, errc, called := run(t, true)
		pasted <- "http://127.0.0.1:1/callback?code=c&state=st"
		var ie *IssuerError
		if err := <-errc; !errors.As(err, &ie) || len(ie.Got) != 0 || *called {
			t.Fatalf("Wait = %v, exchanged %v", err, *called)
		}
	})
	t.Run("bare code, then the whole address", func(t *testing.T) {
		pasted, rejected, errc, called := run(t, true)
		pasted <- "the-code"
		if err := <-rejected; !errors.Is(err, ErrIssuerNeeded) {
			t.Fatalf("bare code: %v", err)
		}
		pasted <- "http://127.0.0.1:1/callback?code=c&state=st&iss=" + url.QueryEscape(testIssuer)
		if err := <-errc; err != nil || !*called {
			t.Fatalf("Wait = %v, exchanged %v", err, *called)
		}
	})
	t.Run("bare code, not advertised", func(t *testing.T) {
		pasted, _, errc, called := run(t, false)
		pasted <- "the-code"
		if err := <-errc; err != nil || !*called {
			t.Fatalf("Wait = %v, exchanged %v", err, *called)
		}
	})
}
