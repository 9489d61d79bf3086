package oauth

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Expiry returns when the access token expires: from expires_in, else,
// when the IdP left it out (or sent 0), from the exp claim of a JWT access
// token (read only for its lifetime, not trusted for anything else); zero
// when neither says.
func Expiry(tok *oauth2.Token) time.Time {
	if !tok.Expiry.IsZero() {
		return tok.Expiry
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil {
		return time.Time{}
	}
	n, err := c.Exp.Int64()
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// MatchScopes maps requested scopes onto the spelling the server lists in
// scopes_supported: early generation-1 servers say notes:read where newer ones say
// notes.read. Scopes the server does not list are kept as given; notes
// says what was changed.
func MatchScopes(requested, supported []string) (out []string, notes []string) {
	canon := func(s string) string { return strings.NewReplacer(":", ".", "_", ".").Replace(strings.ToLower(s)) }
	bySpelling := map[string]string{}
	for _, s := range supported {
		bySpelling[canon(s)] = s
	}
	for _, r := range requested {
		if slices.Contains(supported, r) {
			out = append(out, r)
			continue
		}
		if s, ok := bySpelling[canon(r)]; ok && s != r {
			notes = append(notes, r+" -> "+s)
			r = s
		}
		out = append(out, r)
	}
	return out, notes
}
