package httpclient

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDebugTraceRedactsSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/callback?code=SECRET-CODE&state=SECRET-STATE", http.StatusFound)
	}))
	defer srv.Close()
	var trace bytes.Buffer
	c, err := New(Options{Debug: &trace})
	if err != nil {
		t.Fatal(err)
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/authorize?client_id=c&code_challenge=SECRET-CHALLENGE&state=SECRET-STATE2&refresh_token=SECRET-RT", nil)
	req.Header.Set("Authorization", "Bearer SECRET-BEARER")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out := trace.String()
	if strings.Contains(out, "SECRET") {
		t.Fatalf("trace leaks a secret:\n%s", out)
	}
	for _, want := range []string{"> GET " + srv.URL + "/authorize?", "client_id=c", "REDACTED", "< 302", "-> http://127.0.0.1:1/callback?code=REDACTED"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
}

func TestNewHasTimeoutAndProxy(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != Timeout {
		t.Errorf("Timeout = %s", c.Timeout)
	}
	tr, ok := c.Transport.(*httpsOnly).next.(*http.Transport)
	if !ok || tr.Proxy == nil || tr.TLSClientConfig == nil || tr.TLSClientConfig.InsecureSkipVerify {
		t.Errorf("transport %+v", c.Transport)
	}
}

func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://mcp.example.com/x", "http://app/token", "http://10.1.2.3:8080/"} {
		_, err := c.Get(u)
		var pe *PlainHTTPError
		if !errors.As(err, &pe) {
			t.Errorf("GET %s: %v, want PlainHTTPError", u, err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("loopback http refused: %v", err)
	}
	resp.Body.Close()
}

// TestTLSVerification: an https server with a private CA is refused, and
// accepted once its CA is given with CACertFile.
func TestTLSVerification(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c, _ := New(Options{})
	if _, err := c.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	pemFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{CACertFile: pemFile})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("with --cacert: %v", err)
	}
	resp.Body.Close()
	if _, err := New(Options{CACertFile: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}

// TestNoSecretsAcrossOrigins: a token endpoint that answers 307 to another
// origin must not receive the re-sent body there; a redirect on the same
// origin is followed.
func TestNoSecretsAcrossOrigins(t *testing.T) {
	var gotBody []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = append(gotBody, string(b)+" "+r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusOK)
	}))
	defer other.Close()
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
		case "/moved":
			http.Redirect(w, r, "/token2", http.StatusPermanentRedirect)
		case "/token2":
			b, _ := io.ReadAll(r.Body)
			_, _ = w.Write(b)
		}
	}))
	defer hostile.Close()
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, hostile.URL+"/token", strings.NewReader("grant_type=refresh_token&refresh_token=SECRET"))
	req.SetBasicAuth("client", "SECRET-CLIENT")
	_, err = c.Do(req)
	var ce *CrossOriginRedirectError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a refused cross-origin redirect", err)
	}
	if len(gotBody) != 0 {
		t.Fatalf("the other origin received %q", gotBody)
	}
	resp, err := c.Post(hostile.URL+"/moved", "application/x-www-form-urlencoded", strings.NewReader("a=b"))
	if err != nil {
		t.Fatalf("same-origin redirect: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "a=b" {
		t.Fatalf("same-origin 308 lost the body: %q", b)
	}
}
