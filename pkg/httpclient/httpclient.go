// Package httpclient builds the one *http.Client ncmcp uses: proxy settings
// from the environment, TLS verification always on (with extra CAs from a
// file), plain http only to loopback addresses, timeouts everywhere, and an
// optional trace of requests on stderr with secrets redacted.
package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
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
	// CACertFile names a PEM file of CA certificates trusted in addition to
	// the system's (SSL_CERT_FILE replaces the system's, as Go does).
	CACertFile string
	// Transport replaces the default transport (tests).
	Transport http.RoundTripper
}

// New returns an HTTP client with the settings above.
func New(o Options) (*http.Client, error) {
	rt := o.Transport
	if rt == nil {
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.CACertFile != "" {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pem, err := os.ReadFile(o.CACertFile)
			if err != nil {
				return nil, fmt.Errorf("read CA certificates: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s holds no PEM certificate", o.CACertFile)
			}
			tlsConfig.RootCAs = pool
		}
		rt = &http.Transport{
			TLSClientConfig:       tlsConfig,
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
	rt = &httpsOnly{next: rt}
	if o.Debug != nil {
		rt = &tracer{next: rt, w: o.Debug}
	}
	return &http.Client{Transport: rt, Timeout: Timeout, CheckRedirect: CheckRedirect}, nil
}

// maxRedirects is how many redirects a request follows.
const maxRedirects = 10

// CrossOriginRedirectError refuses a redirect that would re-send a request
// with a body (a token, registration or revocation request: codes,
// verifiers, refresh tokens, client secrets) to another origin.
type CrossOriginRedirectError struct {
	Method   string
	From, To string
}

func (e *CrossOriginRedirectError) Error() string {
	return fmt.Sprintf("refusing to follow a redirect of %s %s to another origin, %s: the request carries secrets", e.Method, e.From, e.To)
}

// Origin returns scheme://host[:port] of u, in lower case.
func Origin(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

// CheckRedirect follows at most 10 redirects, and none that leads a request
// other than GET or HEAD to another origin. (Go drops the Authorization
// header on redirects to other hosts, but re-sends a 307/308's body, and
// keeps the header for subdomains.)
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	first := via[0]
	if first.Method != http.MethodGet && first.Method != http.MethodHead && Origin(req.URL) != Origin(first.URL) {
		return &CrossOriginRedirectError{Method: first.Method, From: Origin(first.URL), To: Origin(req.URL)}
	}
	return nil
}

// PlainHTTPError refuses a plain http request to a host that is not a
// loopback address: tokens and codes would cross the network unencrypted.
type PlainHTTPError struct{ Host string }

func (e *PlainHTTPError) Error() string {
	return fmt.Sprintf("refusing plain http to %s: tokens would travel unencrypted; use https (plain http is only for loopback addresses)", e.Host)
}

// httpsOnly lets plain http through only to loopback addresses.
type httpsOnly struct{ next http.RoundTripper }

func (h *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !IsLoopback(req.URL.Hostname()) {
		return nil, &PlainHTTPError{Host: req.URL.Host}
	}
	return h.next.RoundTrip(req)
}

// IsLoopback reports whether host is localhost or a loopback IP address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
