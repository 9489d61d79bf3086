// Package opener opens http(s) URLs in the user's browser: the command in
// NCMCP_BROWSER or BROWSER when set, else the platform's default through
// github.com/pkg/browser. Nothing a browser prints reaches ncmcp's stdout.
package opener

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strings"

	"github.com/pkg/browser"
)

// Opener opens URLs.
type Opener struct {
	// Getenv reads NCMCP_BROWSER and BROWSER.
	Getenv func(string) string
	// Output receives what a launched browser prints (io.Discard when nil).
	Output io.Writer
}

// ErrNotHTTP is returned for anything but an absolute http or https URL:
// ncmcp never hands other schemes to a launcher.
var ErrNotHTTP = errors.New("refusing to open a URL that is not http(s)")

// CheckURL returns an error unless raw is an absolute http(s) URL.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ErrNotHTTP
	}
	return nil
}

// Command returns the browser command configured in the environment
// (NCMCP_BROWSER, then BROWSER), split into words, or nil.
func (o Opener) Command() []string {
	for _, name := range []string{"NCMCP_BROWSER", "BROWSER"} {
		if v := strings.TrimSpace(o.Getenv(name)); v != "" {
			return strings.Fields(v)
		}
	}
	return nil
}

// Open starts the browser at rawURL and returns without waiting for it to
// exit. The URL is passed as one argument, never through a shell.
func (o Opener) Open(rawURL string) error {
	if err := CheckURL(rawURL); err != nil {
		return err
	}
	out := o.Output
	if out == nil {
		out = io.Discard
	}
	if argv := o.Command(); argv != nil {
		cmd := exec.Command(argv[0], append(argv[1:], rawURL)...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start browser %q: %w", argv[0], err)
		}
		go func() { _ = cmd.Wait() }()
		return nil
	}
	browser.Stdout, browser.Stderr = out, out
	if err := browser.OpenURL(rawURL); err != nil {
		return fmt.Errorf("open a browser: %w", err)
	}
	return nil
}
