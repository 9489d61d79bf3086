package loopback

import (
	"strings"
	"testing"
)

// TestIssuerErrorQuotesTheCode: the error code comes from the callback's
// query, where anyone who can reach the listener puts what they like: the
// message quotes it, so that it can neither pass for ncmcp's own words nor
// break the line.
func TestIssuerErrorQuotesTheCode(t *testing.T) {
	e := &IssuerError{Expected: "https://idp.example", AuthError: &AuthError{Code: "access_denied) is fine\nncmcp: all good ("}}
	msg := e.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, `the error it carries ("access_denied) is fine\nncmcp: all good (")`) {
		t.Errorf("message %q", msg)
	}
}
