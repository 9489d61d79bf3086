package httpclient

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDebugTraceRedactsSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/callback?code=SECRET-CODE&state=SECRET-STATE", http.StatusFound)
	}))
	defer srv.Close()
	var trace bytes.Buffer
	c := New(Options{Debug: &trace})
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
	c := New(Options{})
	if c.Timeout != Timeout {
		t.Errorf("Timeout = %s", c.Timeout)
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr.Proxy == nil || tr.TLSClientConfig != nil && tr.TLSClientConfig.InsecureSkipVerify {
		t.Errorf("transport %+v", c.Transport)
	}
}
