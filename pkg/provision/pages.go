package provision

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Page is a page the user must open for the server to get access: usually
// on Nextcloud's own host, which in real deployments is not the MCP
// server's.
type Page struct {
	URL string
	// Origin is the page's scheme://host[:port].
	Origin string
	// Host is the page's host, to say where it points.
	Host string
	// SameOrigin is set for a page on the server's own origin, which ncmcp
	// opens without asking.
	SameOrigin bool
	// Insecure is set for a plain http page on a host that is not
	// loopback: what the user types there crosses the network unencrypted.
	Insecure bool
	// Purpose is "login-flow" (Nextcloud's Login Flow page), "flow2" (the
	// server's Flow 2 authorization URL) or "settings" (a Nextcloud
	// settings page where the user provisions by hand).
	Purpose string
}

// PageError is a page a server named that ncmcp refuses to show or open:
// not an absolute http(s) URL, with user information, or with control
// characters.
type PageError struct {
	Reason string
}

func (e *PageError) Error() string {
	return "the server named a page ncmcp refuses to open: " + e.Reason
}

// CheckPage reads a page that a server asks the user to open. Any http(s)
// page is accepted (whether ncmcp may open it is Decide's question); other
// schemes, user information in the URL and control characters are refused
// with a *PageError.
func CheckPage(raw, serverURL, purpose string) (Page, error) {
	if strings.IndexFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) >= 0 {
		return Page{}, &PageError{Reason: "its URL has control characters"}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return Page{}, &PageError{Reason: fmt.Sprintf("%q is not an http(s) URL", raw)}
	case u.User != nil:
		return Page{}, &PageError{Reason: "its URL carries a user name or password (" + u.Scheme + "://…@" + u.Host + ")"}
	}
	p := Page{URL: u.String(), Origin: Origin(u), Host: u.Host, Purpose: purpose}
	if s, err := url.Parse(serverURL); err == nil {
		p.SameOrigin = p.Origin == Origin(s)
	}
	p.Insecure = u.Scheme == "http" && !isLoopback(u.Hostname())
	return p, nil
}

// Origin returns a URL's origin, scheme://host[:port], in lower case and
// without a default port.
func Origin(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// ParseOrigin reads an origin a user gives (a URL whose path, query and
// fragment are ignored) and returns it in Origin's form.
func ParseOrigin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return "", errors.New("not an http(s) origin such as https://cloud.example.com")
	}
	return Origin(u), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Action is what ncmcp does with a page.
type Action int

// Actions of Decide.
const (
	// ActionOpen opens the page in the browser.
	ActionOpen Action = iota
	// ActionAsk asks the user first.
	ActionAsk
	// ActionShow only shows it: the user opens it, anywhere.
	ActionShow
)

// Decision is what to do with a page, and why.
type Decision struct {
	Action Action
	// Record is set when the page's origin is to be remembered as approved
	// for the server once opened (--open, or a yes).
	Record bool
	// Changed is the origin approved before, when the page is on another:
	// the server now sends the user elsewhere.
	Changed string
}

// Decide says whether ncmcp may open a page in the browser, as the MCP
// specification asks of URL elicitations: only with the user's consent,
// shown the whole URL and its host. A page on the server's own origin
// opens; so does one on the origin the user approved for this server
// before (approved). Otherwise ncmcp asks where it can (interactive: a
// terminal), opens where the user said so up front (open, the --open
// flag), and else only shows it.
func Decide(p Page, approved string, interactive, open bool) Decision {
	switch {
	case p.SameOrigin:
		return Decision{Action: ActionOpen}
	case approved != "" && approved == p.Origin:
		return Decision{Action: ActionOpen}
	}
	d := Decision{Record: true}
	if approved != "" {
		d.Changed = approved
	}
	switch {
	case open:
		d.Action = ActionOpen
	case interactive:
		d.Action = ActionAsk
	default:
		d.Action = ActionShow
	}
	return d
}

// urlInText finds the first http(s) URL in a message (an elicitation's
// text names the Login Flow page).
var urlInText = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`https?://[^\s<>"']+`) })

// FindURL returns the first http(s) URL in text, or "".
func FindURL(text string) string {
	return strings.TrimRight(urlInText().FindString(text), ".,;:)")
}
