// Package httpclient builds the one *http.Client ncmcp uses: proxy settings
// from the environment, TLS verification on, timeouts everywhere, and an
// optional trace of requests on stderr with secrets redacted.
package httpclient

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Timeout bounds each whole request, body included.
const Timeout = 30 * time.Second

// Options configures New.
type Options struct {
	// Debug, when not nil, receives one line per request and response.
	Debug io.Writer
	// Transport replaces the default transport (tests).
	Transport http.RoundTripper
}

// New returns an HTTP client with the settings above.
func New(o Options) *http.Client {
	rt := o.Transport
	if rt == nil {
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       30 * time.Second,
			MaxIdleConns:          4,
			ForceAttemptHTTP2:     true,
		}
	}
	if o.Debug != nil {
		rt = &tracer{next: rt, w: o.Debug}
	}
	return &http.Client{Transport: rt, Timeout: Timeout}
}

// secretParams are query and form parameters whose values never appear in
// a trace.
var secretParams = map[string]bool{
	"code": true, "state": true, "nonce": true, "code_verifier": true, "code_challenge": true,
	"access_token": true, "refresh_token": true, "id_token": true, "token": true,
	"client_secret": true, "client_assertion": true, "registration_access_token": true,
	"password": true, "authRequestID": true, "id": true,
}

// RedactURL returns u with the values of secret query parameters replaced.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			if secretParams[k] {
				q[k] = []string{"REDACTED"}
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}

type tracer struct {
	next http.RoundTripper
	mu   sync.Mutex
	w    io.Writer
}

func (t *tracer) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	auth := ""
	if req.Header.Get("Authorization") != "" {
		auth = " (Authorization: REDACTED)"
	}
	t.printf("> %s %s%s", req.Method, RedactURL(req.URL), auth)
	resp, err := t.next.RoundTrip(req)
	d := time.Since(start).Round(time.Millisecond)
	if err != nil {
		t.printf("< %s %s: error after %s: %v", req.Method, RedactURL(req.URL), d, redactErr(err, req.URL))
		return nil, err
	}
	extra := ""
	if loc := resp.Header.Get("Location"); loc != "" {
		if lu, perr := req.URL.Parse(loc); perr == nil {
			extra = " -> " + RedactURL(lu)
		}
	}
	t.printf("< %d %s (%s)%s", resp.StatusCode, resp.Header.Get("Content-Type"), d, extra)
	return resp, nil
}

func (t *tracer) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "debug: "+format+"\n", args...)
}

// redactErr removes the raw URL (with its query) from a transport error.
func redactErr(err error, u *url.URL) string {
	s := err.Error()
	if u != nil && u.RawQuery != "" {
		s = strings.ReplaceAll(s, u.String(), RedactURL(u))
	}
	return s
}
