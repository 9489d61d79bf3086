package devserver

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// authorizeEndpoint wraps the OP's handler. For requests to the
// authorization endpoint it checks the scopes as Dex does, which zitadel
// does not (it silently drops the scopes it does not know): an unknown scope
// or a missing openid is sent back to the client's redirect URI as
// error=invalid_scope, with Dex's description
// ("Unrecognized scope(s) [\"notes.read\"]"). Requests with an unknown
// client or a redirect URI the client does not have are left to zitadel,
// which answers them without a redirect. Other requests pass through.
func (s *Server) authorizeEndpoint(authPath string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != authPath {
			next.ServeHTTP(w, r)
			return
		}
		_ = r.ParseForm()
		c, ok := s.store.client(r.Form.Get("client_id"))
		redirectURI := r.Form.Get("redirect_uri")
		if !ok || !redirectAllowed(c, redirectURI) {
			next.ServeHTTP(w, r)
			return
		}
		scopes := strings.Fields(r.Form.Get("scope"))
		var unknown []string
		for _, sc := range scopes {
			if !dexScope(sc, s.store.knownClient) {
				unknown = append(unknown, sc)
			}
		}
		desc := ""
		switch {
		case len(unknown) > 0:
			desc = fmt.Sprintf("Unrecognized scope(s) %q", unknown)
		case !slices.Contains(scopes, "openid"):
			desc = fmt.Sprintf("Missing required scope(s) %q.", []string{"openid"})
		}
		if desc == "" {
			next.ServeHTTP(w, r)
			return
		}
		target, err := url.Parse(redirectURI)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		q := target.Query()
		q.Set("error", "invalid_scope")
		q.Set("error_description", desc)
		q.Set("state", r.Form.Get("state"))
		target.RawQuery = q.Encode()
		http.Redirect(w, r, target.String(), http.StatusFound)
	})
}

// redirectAllowed reports whether the OP accepts uri as c's redirect URI:
// one of its registered URIs, or, for a native client, an http loopback URI
// that differs from a registered one only in its port (RFC 8252, section
// 7.3).
func redirectAllowed(c *opClient, uri string) bool {
	if slices.Contains(c.redirectURIs, uri) {
		return true
	}
	if c.appType != op.ApplicationTypeNative {
		return false
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" {
		return false
	}
	for _, reg := range c.redirectURIs {
		ru, err := url.Parse(reg)
		if err != nil || ru.Scheme != "http" || ru.Hostname() != u.Hostname() || ru.Path != u.Path {
			continue
		}
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
			return true
		}
	}
	return false
}
