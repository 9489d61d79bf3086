package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
)

// describeGrant says what kind of access the server holds, for a sentence.
func describeGrant(s *provision.Status) string {
	if s == nil || !s.Provisioned {
		return ""
	}
	var parts []string
	switch s.Kind {
	case provision.KindLoginFlow:
		parts = append(parts, "an app password (Login Flow v2)")
		if s.Username != "" {
			parts[0] += " of Nextcloud user " + termsafe.String(s.Username)
		}
	case provision.KindFlow2:
		parts = append(parts, "a refresh token (Flow 2)")
	default:
		parts = append(parts, termsafe.String(s.Kind))
	}
	if s.ProvisionedAt != nil {
		parts = append(parts, "since "+s.ProvisionedAt.Local().Format(time.RFC3339))
	}
	switch {
	case len(s.Scopes) > 0:
		parts = append(parts, "scopes "+termsafe.String(strings.Join(s.Scopes, " ")))
	case s.Kind == provision.KindLoginFlow:
		parts = append(parts, "no scope restriction beyond your token")
	}
	return ": " + strings.Join(parts, ", ")
}

// provisionUI shows provisioning pages and progress on the terminal.
type provisionUI struct {
	g            *globalOptions
	noBrowser    bool
	server, name string
	limit        time.Duration
	tick         func(time.Duration)
}

func (u *provisionUI) ShowPage(p provision.Page) {
	w := u.g.deps.Stderr
	switch p.Purpose {
	case "settings":
		fmt.Fprintf(w, "This server provisions its access on a Nextcloud settings page: open it, give the server access there (an app password, for example), and ncmcp waits for the server to confirm.\n\n  %s\n\n", termsafe.String(p.URL))
	default:
		fmt.Fprintf(w, "Open this URL in a browser to give %s access to Nextcloud for %s:\n\n  %s\n\n", u.server, u.name, termsafe.String(p.URL))
	}
	switch {
	case !p.Open:
		fmt.Fprintf(w, "The page is on %s, not on the MCP server, so ncmcp does not open it: open it yourself if that is your Nextcloud.\n", termsafe.String(p.Host))
	case !u.noBrowser:
		if err := u.g.openURL(p.URL); err != nil {
			fmt.Fprintf(w, "warning: could not open a browser (%s): open the URL above yourself\n", oneLine(err.Error()))
		}
	}
}

func (u *provisionUI) Notice(msg string) {
	fmt.Fprintln(u.g.deps.Stderr, termsafe.Lines(msg))
}

func (u *provisionUI) Waiting(elapsed time.Duration) {
	if u.tick == nil {
		if elapsed < 0 {
			return
		}
		u.tick = waitIndicator(u.g.deps, u.limit)
	}
	u.tick(elapsed)
}

// waitIndicator returns a function that shows waiting progress: a spinner
// on a terminal (unless NO_COLOR), plain lines every 30 s otherwise. A
// negative duration ends the display.
func waitIndicator(d *Deps, limit time.Duration) func(time.Duration) {
	w := d.Stderr
	if d.StderrIsTerminal != nil && d.StderrIsTerminal() && d.Getenv("NO_COLOR") == "" && d.rawStderr != nil {
		w = d.rawStderr
		frames := []string{"|", "/", "-", "\\"}
		i := 0
		return func(elapsed time.Duration) {
			if elapsed < 0 {
				fmt.Fprint(w, "\r\033[K")
				return
			}
			fmt.Fprintf(w, "\r%s waiting for the server to confirm (%s of %s)", frames[i%len(frames)], elapsed.Round(time.Second), limit)
			i++
		}
	}
	var next time.Duration
	return func(elapsed time.Duration) {
		if elapsed < 0 {
			return
		}
		if elapsed >= next {
			fmt.Fprintf(w, "Waiting for the server to confirm (%s of %s)...\n", elapsed.Round(time.Second), limit)
			next += 30 * time.Second
		}
	}
}
