// Package wwwauth reads Bearer challenges of WWW-Authenticate headers
// (RFC 6750 section 3, RFC 9728 section 5.1), and DPoP challenges, which
// have the same parameters (RFC 9449 section 7.1): error,
// error_description, scope and resource_metadata.
package wwwauth

import (
	"strings"
)

// Challenge is a Bearer or DPoP challenge's parameters; absent ones are
// empty.
type Challenge struct {
	// Scheme is the challenge's scheme as sent (Bearer or DPoP).
	Scheme           string
	Error            string
	ErrorDescription string
	// Scope is the space-separated scope the resource asks for.
	Scope string
	// ResourceMetadata is the URL of the protected-resource metadata.
	ResourceMetadata string
	// Params holds every parameter, by lower-case name.
	Params map[string]string
}

// Scopes returns Scope split into its scopes.
func (c Challenge) Scopes() []string { return strings.Fields(c.Scope) }

// ParseBearer returns the first Bearer challenge among the header values,
// else the first DPoP challenge (a resource that takes DPoP-bound tokens
// only), and whether there was one. Parameters are name=token or
// name="quoted string" (RFC 9110 section 11.2); other schemes are skipped.
func ParseBearer(values []string) (Challenge, bool) {
	if c, ok := parse(values, "Bearer"); ok {
		return c, true
	}
	return parse(values, "DPoP")
}

// ParseDPoP returns the first DPoP challenge among the header values, and
// whether there was one.
func ParseDPoP(values []string) (Challenge, bool) { return parse(values, "DPoP") }

func parse(values []string, scheme string) (Challenge, bool) {
	for _, v := range values {
		for _, ch := range parseChallenges(v) {
			if strings.EqualFold(ch.scheme, scheme) {
				c := Challenge{Scheme: ch.scheme, Params: ch.params}
				c.Error = ch.params["error"]
				c.ErrorDescription = ch.params["error_description"]
				c.Scope = ch.params["scope"]
				c.ResourceMetadata = ch.params["resource_metadata"]
				return c, true
			}
		}
	}
	return Challenge{}, false
}

type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges splits one header value into its challenges: a scheme
// starts a challenge, and name=value pairs after it are its parameters
// (whether separated by a space or a comma), until the next bare token.
func parseChallenges(s string) []challenge {
	var out []challenge
	p := parser{s: s}
	for {
		p.skipSpaceAndCommas()
		if p.done() {
			return out
		}
		name := p.token()
		if name == "" {
			p.i++ // a byte that starts nothing: skip it
			continue
		}
		p.skipSpace()
		if len(out) > 0 && p.peek() == '=' {
			p.i++
			p.skipSpace()
			var val string
			if p.peek() == '"' {
				val = p.quoted()
			} else {
				val = p.token()
			}
			out[len(out)-1].params[strings.ToLower(name)] = val
			continue
		}
		out = append(out, challenge{scheme: name, params: map[string]string{}})
	}
}

type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }

func (p *parser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *parser) skipSpace() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *parser) skipSpaceAndCommas() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

// isTchar reports whether c may appear in a token (RFC 9110 section 5.6.2);
// '/' is accepted too, for token68 values.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~/:", c) >= 0
}

func (p *parser) token() string {
	start := p.i
	for !p.done() && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string, undoing backslash escapes.
func (p *parser) quoted() string {
	p.i++ // opening quote
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '\\':
			if !p.done() {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
