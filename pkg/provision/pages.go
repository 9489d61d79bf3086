package provision

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Page is a page the user must open for the server to get access.
type Page struct {
	URL string
	// Open is set when ncmcp may open it in the browser (on the server's
	// own origin); otherwise it is only shown.
	Open bool
	// Host is the page's host, to say where it points.
	Host string
	// Purpose is "login-flow" (Nextcloud's Login Flow page), "flow2" (the
	// server's Flow 2 authorization URL) or "settings" (a Nextcloud
	// settings page where the user provisions by hand).
	Purpose string
}

// CheckURL accepts only an http(s) URL on the server's own origin (scheme,
// host and port): a server must not make ncmcp open arbitrary URLs or
// schemes.
func CheckURL(raw, serverURL string) error {
	u, err := httpURL(raw)
	if err != nil {
		return err
	}
	if !sameOrigin(u, serverURL) {
		s, _ := url.Parse(serverURL)
		return fmt.Errorf("refusing to open %s: it is not on the server's origin %s://%s", u.Scheme+"://"+u.Host, s.Scheme, s.Host)
	}
	return nil
}

// CheckPage accepts a page that a server asks the user to open: on the
// server's own origin it may be opened; an https page on another host (a
// Login Flow page lives on the Nextcloud host) is only shown; anything else
// is refused.
func CheckPage(raw, serverURL, purpose string) (Page, error) {
	u, err := httpURL(raw)
	if err != nil {
		return Page{}, err
	}
	p := Page{URL: u.String(), Host: u.Host, Purpose: purpose}
	if sameOrigin(u, serverURL) {
		p.Open = true
		return p, nil
	}
	if u.Scheme != "https" {
		return Page{}, fmt.Errorf("refusing %s: a page off the server's origin must use https", u.Scheme+"://"+u.Host)
	}
	return p, nil
}

func httpURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return nil, fmt.Errorf("refusing to open %q: not an http(s) URL", raw)
	}
	return u, nil
}

func sameOrigin(u *url.URL, serverURL string) bool {
	s, err := url.Parse(serverURL)
	return err == nil && strings.EqualFold(u.Scheme, s.Scheme) && strings.EqualFold(u.Host, s.Host)
}

// urlInText finds the first http(s) URL in a message (an elicitation's
// text names the Login Flow page).
var urlInText = regexp.MustCompile(`https?://[^\s<>"']+`)

// FindURL returns the first http(s) URL in text, or "".
func FindURL(text string) string {
	return strings.TrimRight(urlInText.FindString(text), ".,;:)")
}
