package registration

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzMarker stands for a secret in a registration answer (a client
// secret or registration access token): errors must never show it.
const fuzzMarker = "SECRET-MARKER"

// fuzzCheckRetryAfter checks the wait d read from the Retry-After value v
// at a time between before and after: never negative, exact for waits up
// to an hour, and a longer wait is never shortened below an hour (the code
// may cap it) nor lengthened; anything else is no wait.
func fuzzCheckRetryAfter(t *testing.T, v string, d time.Duration, before, after time.Time) {
	t.Helper()
	if d < 0 {
		t.Fatalf("Retry-After %q gave %v, negative", v, d)
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		switch {
		case n < 0:
			if d != 0 {
				t.Fatalf("Retry-After %q gave %v", v, d)
			}
		case n <= 3600:
			if d != time.Duration(n)*time.Second {
				t.Fatalf("Retry-After %q gave %v, want %ds", v, d, n)
			}
		case d < time.Hour || (n <= math.MaxInt64/int64(time.Second) && d > time.Duration(n)*time.Second):
			// Found by this fuzzer before 1e3fc59: "10000000000" overflowed
			// into a negative wait, "18446744074" into 290ms.
			t.Fatalf("Retry-After %q (%d s) gave %v", v, n, d)
		}
		return
	}
	tm, err := http.ParseTime(v)
	if err != nil {
		if d != 0 {
			t.Fatalf("Retry-After %q, neither seconds nor a date, gave %v", v, d)
		}
		return
	}
	if !tm.After(before) {
		if d != 0 {
			t.Fatalf("Retry-After %q, a date in the past, gave %v", v, d)
		}
		return
	}
	if left := tm.Sub(before); d > left || (left <= time.Hour && tm.After(after) && d < tm.Sub(after)) {
		t.Fatalf("Retry-After %q (in %v) gave %v", v, left, d)
	}
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

// FuzzRegistrationResponse answers Register with fuzzed registration
// endpoint responses.
func FuzzRegistrationResponse(f *testing.F) {
	const native = `{"client_id":"SECRET-MARKER-id","client_secret":"SECRET-MARKER-secret","client_id_issued_at":1700000000,"client_secret_expires_at":0,"redirect_uris":["http://127.0.0.1:53682/callback"],"token_endpoint_auth_method":"none"}`
	for _, s := range []struct {
		status     uint16
		retryAfter string
		body       string
	}{
		{201, "", native},
		{200, "", `{"client_id":"abc","registration_access_token":"SECRET-MARKER-rat","registration_client_uri":"https://cloud.example.com/oauth/register/abc"}`},
		{201, "", `{"client_id":"abc","registration_client_uri":"javascript:alert(1)"}`},
		{201, "", `{"client_id":"abc","registration_client_uri":"%zz"}`},
		{201, "", `{"client_id":"","client_secret":"SECRET-MARKER"}`},
		{201, "", `{"client_id":123}`},
		{201, "", `<html>SECRET-MARKER</html>`},
		{400, "", `{"error":"invalid_redirect_uri","error_description":"Only loopback redirect URIs","client_secret":"SECRET-MARKER"}`},
		{400, "", `{"error":"invalid_client_metadata"}`},
		{403, "", `{"error":"registration_not_supported"}`},
		{404, "", `<html><body>Not found SECRET-MARKER</body></html>`},
		{429, "120", `{"error":"slow_down","error_description":"too many registrations"}`},
		{429, "Wed, 21 Oct 2037 07:28:00 GMT", `SECRET-MARKER`},
		{429, "Wed, 21 Oct 2015 07:28:00 GMT", ``},
		{429, "-5", `{}`},
		{429, " 30 ", `{}`},
		{429, "86400", `{}`},
		{500, "", `SECRET-MARKER`},
	} {
		f.Add(s.status, s.retryAfter, []byte(s.body))
	}
	var (
		mu         sync.Mutex
		status     int
		retryAfter string
		body       []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		st, ra, b := status, retryAfter, body
		mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusTeapot)
			return
		}
		if ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		_, _ = w.Write(b)
	}))
	f.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	endpoint := srv.URL + "/oauth/register"

	f.Fuzz(func(t *testing.T, rawStatus uint16, ra string, b []byte) {
		st := int(rawStatus)
		if st < 200 || st > 599 {
			st = 200 + st%400
		}
		ra = fuzzHeaderValue(ra)
		mu.Lock()
		status, retryAfter, body = st, ra, b
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		resp, err := Register(ctx, hc, endpoint, NativeClient("http://127.0.0.1:53682/callback"))
		if err == nil {
			if st != http.StatusOK && st != http.StatusCreated {
				t.Fatalf("registration accepted on HTTP %d", st)
			}
			if resp == nil || resp.ClientID == "" {
				t.Fatalf("registration accepted without client_id: %+v (%q)", resp, b)
			}
			if u := resp.RegistrationClientURI; u != "" {
				p, err := url.Parse(u)
				if err != nil || (p.Scheme != "http" && p.Scheme != "https") {
					t.Fatalf("registration accepted with registration_client_uri %q", u)
				}
			}
			_ = resp.SecretExpiry()
			return
		}
		if resp != nil {
			t.Fatalf("Register returned %+v with the error %v", resp, err)
		}
		msg := err.Error()
		var re *Error
		if !errors.As(err, &re) {
			if strings.Contains(msg, fuzzMarker) {
				t.Fatalf("the error shows a secret from the body %q: %s", b, msg)
			}
			if st != http.StatusOK && st != http.StatusCreated {
				t.Fatalf("HTTP %d gave %T %v, want an *Error", st, err, err)
			}
			return
		}
		if re.Status != st {
			t.Fatalf("Error.Status %d for HTTP %d", re.Status, st)
		}
		if strings.Contains(msg, fuzzMarker) && !strings.Contains(re.Code, fuzzMarker) && !strings.Contains(re.Description, fuzzMarker) {
			t.Fatalf("the error shows a secret from the body %q beyond its OAuth error fields: %s", b, msg)
		}
		if st == http.StatusTooManyRequests {
			fuzzCheckRetryAfter(t, ra, re.RetryAfter, start, time.Now())
		}
		if st != http.StatusTooManyRequests && re.RetryAfter != 0 {
			t.Fatalf("RetryAfter %v on HTTP %d", re.RetryAfter, st)
		}
		_ = re.NotSupported()
	})
}

// FuzzRetryAfter parses fuzzed Retry-After values.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", " 30 ", "-1", "1.5", "Wed, 21 Oct 2037 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Fri, 31 Dec 9999 23:59:59 GMT", "", "soon",
		"3600", "3601", "86400", "Fri, 02 Jan 2026 03:34:05 GMT"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		fuzzCheckRetryAfter(t, v, retryAfter(v, now), now, now)
	})
}
