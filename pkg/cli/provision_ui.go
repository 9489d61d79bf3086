package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
)

// describeGrant says what kind of access the server holds, for a sentence.
func describeGrant(s *provision.Status) string {
	if s == nil || !s.Provisioned {
		return ""
	}
	kind, known := credentialKind(s.Kind)
	if !known {
		kind = termsafe.String(s.Kind)
	}
	if s.Kind == provision.KindLoginFlow && s.Username != "" {
		kind += " of Nextcloud user " + termsafe.String(s.Username)
	}
	parts := []string{kind}
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

// credentialKind names a kind of credential the server holds for an
// account (provision.Kind*), with its indefinite article: "an app password
// (Login Flow v2)"; known is false for a kind ncmcp does not know.
func credentialKind(kind string) (name string, known bool) {
	switch kind {
	case provision.KindLoginFlow:
		return "an app password (Login Flow v2)", true
	case provision.KindFlow2:
		return "a refresh token (Flow 2)", true
	}
	return "", false
}

// provisionUI shows provisioning pages and progress on the terminal, and
// opens pages in the browser where the user consents (provision.Decide).
type provisionUI struct {
	g            *globalOptions
	st           *store.Store
	noBrowser    bool
	open         bool
	interactive  bool
	approved     string // the server's approved page origin
	server, name string
	limit        time.Duration
	tick         func(time.Duration)
	// notOpened is the origin of a page ncmcp did not open for want of
	// consent, for the timeout's hint.
	notOpened string
}

func (u *provisionUI) ShowPage(ctx context.Context, p provision.Page) {
	w := u.g.deps.Stderr
	where := "Nextcloud for " + u.server
	if p.SameOrigin {
		where = "the MCP server " + u.server
	}
	switch p.Purpose {
	case "settings":
		fmt.Fprintf(w, "This server provisions its access on a Nextcloud settings page: open it, give the server access there (an app password, for example), and ncmcp waits for the server to confirm.\n\n  %s\n  (on %s, %s)\n\n", termsafe.String(p.URL), termsafe.String(p.Host), where)
	default:
		fmt.Fprintf(w, "Open this URL in a browser to give %s access to Nextcloud for %s:\n\n  %s\n  (on %s, %s)\n\n", u.server, u.name, termsafe.String(p.URL), termsafe.String(p.Host), where)
	}
	if p.Insecure {
		fmt.Fprintf(w, "warning: %s is plain http to another machine: your Nextcloud password would cross the network unencrypted\n", termsafe.String(p.Origin))
	}
	if u.noBrowser {
		fmt.Fprintln(w, "Not opened (--no-browser): open it yourself; ncmcp waits for the server to confirm.")
		return
	}
	d := provision.Decide(p, u.approved, u.interactive, u.open)
	if d.Changed != "" {
		fmt.Fprintf(w, "warning: %s now sends you to %s, not to %s as before: open it only if that is your Nextcloud\n", u.server, termsafe.String(p.Origin), termsafe.String(d.Changed))
	}
	switch d.Action {
	case provision.ActionAsk:
		yes, err := u.ask(ctx, fmt.Sprintf("Open %s (%s) in your browser? [Y/n] ", termsafe.String(p.URL), where))
		if err != nil || !yes {
			fmt.Fprintln(w, "Not opened: open the URL above yourself, on this or another device; ncmcp waits for the server to confirm.")
			return
		}
	case provision.ActionShow:
		u.notOpened = p.Origin
		fmt.Fprintf(w, "Not opened: %s is not an origin you approved for %s, and there is no terminal to ask. Open the URL yourself (on any device), or run again with --open to let ncmcp open pages there; ncmcp waits for the server to confirm.\n", termsafe.String(p.Origin), u.server)
		return
	}
	if d.Record {
		if err := u.st.SetPageOrigin(ctx, u.server, p.Origin); err != nil {
			fmt.Fprintf(w, "warning: could not remember %s for %s (%s): ncmcp will ask again next time\n", termsafe.String(p.Origin), u.server, oneLine(err.Error()))
		} else {
			u.approved = p.Origin
			fmt.Fprintf(w, "ncmcp will open pages on %s for %s without asking ('ncmcp config unset page-origin --server %s' forgets it).\n", termsafe.String(p.Origin), u.server, u.server)
		}
	}
	if err := u.g.openURL(p.URL); err != nil {
		fmt.Fprintf(w, "warning: could not open a browser (%s): open the URL above yourself\n", oneLine(err.Error()))
	}
}

// ask asks a yes/no question on stderr and reads the answer from stdin;
// an empty answer is yes. It gives up when ctx ends.
func (u *provisionUI) ask(ctx context.Context, question string) (bool, error) {
	fmt.Fprint(u.g.deps.Stderr, question)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(io.LimitReader(u.g.deps.Stdin, 1024)).ReadString('\n')
		answer <- line
	}()
	select {
	case line := <-answer:
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "", "y", "yes":
			return true, nil
		}
		return false, nil
	case <-ctx.Done():
		fmt.Fprintln(u.g.deps.Stderr)
		return false, ctx.Err()
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
