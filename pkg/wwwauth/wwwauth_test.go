package wwwauth

import (
	"testing"
)

func TestParseBearer(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   Challenge
		ok     bool
	}{
		{"generation 2 server's 401", []string{`Bearer error="invalid_token", error_description="Authentication required", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`},
			Challenge{Error: "invalid_token", ErrorDescription: "Authentication required", ResourceMetadata: "https://mcp.example.com/.well-known/oauth-protected-resource"}, true},
		{"insufficient scope with a scope list", []string{`Bearer error="insufficient_scope", scope="notes.read notes.write"`},
			Challenge{Error: "insufficient_scope", Scope: "notes.read notes.write"}, true},
		{"unquoted values, odd spacing and case", []string{`bearer   ERROR = invalid_token ,scope=files.read`},
			Challenge{Error: "invalid_token", Scope: "files.read"}, true},
		{"another scheme first", []string{`Basic realm="x", Bearer scope="a b", resource_metadata="https://r/m"`},
			Challenge{Scope: "a b", ResourceMetadata: "https://r/m"}, true},
		{"in a second header value", []string{`Negotiate abc==`, `Bearer realm="mcp"`},
			Challenge{}, true},
		{"escapes in quoted strings", []string{`Bearer error_description="say \"hi\", please"`},
			Challenge{ErrorDescription: `say "hi", please`}, true},
		{"no bearer", []string{`Basic realm="x"`}, Challenge{}, false},
		{"empty", nil, Challenge{}, false},
		{"unterminated quote", []string{`Bearer scope="a b`}, Challenge{Scope: "a b"}, true},
	}
	for _, tt := range tests {
		got, ok := ParseBearer(tt.header)
		if ok != tt.ok || got.Error != tt.want.Error || got.ErrorDescription != tt.want.ErrorDescription ||
			got.Scope != tt.want.Scope || got.ResourceMetadata != tt.want.ResourceMetadata {
			t.Errorf("%s: ParseBearer(%q) = %+v, %v; want %+v, %v", tt.name, tt.header, got, ok, tt.want, tt.ok)
		}
	}
	if c, _ := ParseBearer([]string{`Bearer scope="a  b"`}); len(c.Scopes()) != 2 {
		t.Errorf("Scopes() = %q", c.Scopes())
	}
}

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{`Bearer error="invalid_token", scope="a b"`, `Basic realm="x", Bearer`, `"`, `Bearer a=`, `=,=`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseBearer([]string{s})
		if !ok && (c.Error != "" || c.Params != nil) {
			t.Fatalf("no challenge but %+v", c)
		}
	})
}

func TestParseDPoP(t *testing.T) {
	// A resource that takes DPoP-bound tokens only challenges with DPoP
	// (RFC 9449 section 7.1): its resource_metadata is read all the same.
	c, ok := ParseBearer([]string{`DPoP algs="ES256", resource_metadata="https://r/m"`})
	if !ok || c.Scheme != "DPoP" || c.ResourceMetadata != "https://r/m" {
		t.Errorf("ParseBearer(DPoP only) = %+v, %v", c, ok)
	}
	// Both: Bearer first for ParseBearer, the DPoP one for ParseDPoP.
	both := []string{`DPoP error="use_dpop_nonce", error_description="nonce"`, `Bearer scope="a"`}
	if c, _ := ParseBearer(both); c.Scheme != "Bearer" || c.Scope != "a" {
		t.Errorf("ParseBearer(both) = %+v", c)
	}
	if c, ok := ParseDPoP(both); !ok || c.Error != "use_dpop_nonce" {
		t.Errorf("ParseDPoP(both) = %+v, %v", c, ok)
	}
	if _, ok := ParseDPoP([]string{`Bearer error="use_dpop_nonce"`}); ok {
		t.Error("ParseDPoP took a Bearer challenge")
	}
}
