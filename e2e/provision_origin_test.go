package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

// pageOrigin returns the page origin 'ncmcp status --json' shows for the
// server.
func pageOrigin(t *testing.T, e *env) string {
	t.Helper()
	var s struct {
		Servers []struct {
			PageOrigin string `json:"page_origin"`
		} `json:"servers"`
	}
	r := e.mustRun("status", "--json", "--offline")
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil || len(s.Servers) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.Stdout)
	}
	return s.Servers[0].PageOrigin
}

// nextcloudLayouts are the places Nextcloud can be, seen from the MCP
// server (generation 2): its own origin over plain http on loopback (the
// upstream's docker-compose quick start), its own origin over https with a
// CA the browser trusts, and the MCP server's origin (one reverse proxy).
var nextcloudLayouts = []struct {
	name string
	opts devserver.Options
}{
	{"own origin, http", devserver.Options{}},
	{"own origin, https", devserver.Options{NextcloudTLS: true}},
	{"same origin", devserver.Options{NextcloudSameOrigin: true}},
}

// TestProvisionPageConsent: where Nextcloud is its own origin, a script
// (no terminal) gets the page printed but not opened, and exit 8 at
// --timeout with a hint naming --open; --open opens it, completes, and
// remembers the origin; the next provisioning opens it without the flag;
// a server that later names another origin is warned about, naming both,
// and not opened. A page on the MCP server's own origin opens at once.
func TestProvisionPageConsent(t *testing.T) {
	t.Parallel()
	for _, layout := range nextcloudLayouts {
		t.Run(layout.name, func(t *testing.T) {
			t.Parallel()
			o := layout.opts
			o.AutoApprove, o.Generation = true, 2
			dev := startDev(t, o)
			e := loggedIn(t, dev)
			if ca := dev.NextcloudCACertPEM(); ca != nil {
				e.set("NCMCP_E2E_BROWSER_CA", string(ca))
			}
			log := filepath.Join(t.TempDir(), "browser.log")
			e.set("NCMCP_E2E_BROWSER_LOG", log)
			page := dev.NextcloudURL() + "/index.php/login/v2/flow/"

			if o.NextcloudSameOrigin {
				out, _ := provisionJSON(t, e, "--interval", "200ms")
				if out.Outcome != "provisioned" || !strings.HasPrefix(out.URL, dev.URL()+"/index.php/login/v2/flow/") {
					t.Fatalf("provision on the server's origin: %+v", out)
				}
				if b := browserLog(t, log); strings.Count(b, "open ") != 1 {
					t.Errorf("browser log:\n%s", b)
				}
				if po := pageOrigin(t, e); po != "" {
					t.Errorf("recorded %q for the server's own origin", po)
				}
				return
			}

			r := e.expectCode(8, "run 'ncmcp provision --open' to let ncmcp open pages on "+dev.NextcloudURL(), "provision", "--timeout", "3s", "--interval", "200ms")
			if !strings.Contains(r.Stderr, page) || !strings.Contains(r.Stderr, "Not opened: "+dev.NextcloudURL()+" is not an origin you approved") ||
				strings.Contains(r.Stderr, "reachable") || strings.Contains(r.Stderr, "unencrypted") {
				t.Errorf("stderr:\n%s", r.Stderr)
			}
			if b := browserLog(t, log); b != "" {
				t.Fatalf("the page was opened without consent:\n%s", b)
			}
			if po := pageOrigin(t, e); po != "" {
				t.Fatalf("origin recorded without consent: %q", po)
			}

			out, r := provisionJSON(t, e, "--open", "--interval", "200ms")
			if out.Outcome != "provisioned" || !strings.HasPrefix(out.URL, page) {
				t.Fatalf("provision --open: %+v\n%s", out, r.Stderr)
			}
			if po := pageOrigin(t, e); po != dev.NextcloudURL() {
				t.Fatalf("recorded origin %q, want %q", po, dev.NextcloudURL())
			}
			if st := e.mustRun("status", "--offline"); !strings.Contains(st.Stdout+st.Stderr, "opens provisioning pages on "+dev.NextcloudURL()+" without asking") {
				t.Errorf("status does not show the approved origin:\n%s%s", st.Stdout, st.Stderr)
			}

			// The server's access revoked (and with it this login): log in
			// and provision again.
			e.mustRun("tokens", "revoke", "--server-side")
			e.mustRun(loginArgs(dev)...)
			if out, r := provisionJSON(t, e, "--interval", "200ms"); out.Outcome != "provisioned" || strings.Contains(r.Stderr, "Not opened") {
				t.Fatalf("second provisioning, origin approved: %+v\n%s", out, r.Stderr)
			}
			if b := browserLog(t, log); strings.Count(b, "open "+page) != 2 {
				t.Errorf("want two pages opened:\n%s", b)
			}

			// The server sends the user somewhere else than approved.
			e.mustRun("config", "set", "page-origin", "https://cloud.example.com")
			e.mustRun("tokens", "revoke", "--server-side")
			e.mustRun(loginArgs(dev)...)
			r = e.expectCode(8, "now sends you to "+dev.NextcloudURL()+", not to https://cloud.example.com as before", "provision", "--timeout", "3s", "--interval", "200ms")
			if !strings.Contains(r.Stderr, "Not opened") {
				t.Errorf("stderr:\n%s", r.Stderr)
			}
			if b := browserLog(t, log); strings.Count(b, "open "+page) != 2 {
				t.Errorf("a page on a changed origin was opened:\n%s", b)
			}
			e.mustRun("config", "unset", "page-origin")
			if po := pageOrigin(t, e); po != "" {
				t.Errorf("config unset left %q", po)
			}
			// Logging out of the last account forgets the approval too.
			e.mustRun("config", "set", "page-origin", dev.NextcloudURL())
			e.mustRun("logout")
			if cfg, err := os.ReadFile(filepath.Join(e.configDir(), "config.json")); err != nil || strings.Contains(string(cfg), "page_origin") {
				t.Errorf("after logout (%v):\n%s", err, cfg)
			}
		})
	}
}

// TestProvisionPageConsentOnTerminal: on a terminal ncmcp asks before
// opening a page on Nextcloud's origin, naming it; y opens it and
// provisioning completes, n does not, and ncmcp waits as a script would.
func TestProvisionPageConsentOnTerminal(t *testing.T) {
	t.Parallel()
	for _, answer := range []string{"y", "n"} {
		t.Run(answer, func(t *testing.T) {
			t.Parallel()
			dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
			e := loggedIn(t, dev)
			log := filepath.Join(t.TempDir(), "browser.log")
			e.set("NCMCP_E2E_BROWSER_LOG", log)
			args := []string{"provision", "--interval", "200ms"}
			if answer == "n" {
				args = append(args, "--timeout", "3s")
			}
			out, code := runOnTerminal(t, e, "in your browser? [Y/n] ", answer+"\n", args...)
			question := "Open " + dev.NextcloudURL() + "/index.php/login/v2/flow/"
			if !strings.Contains(out, question) || !strings.Contains(out, "(Nextcloud for "+dev.URL()+") in your browser? [Y/n]") {
				t.Errorf("no question naming the page and its host:\n%s", out)
			}
			b := browserLog(t, log)
			switch answer {
			case "y":
				if code != 0 || !strings.Contains(out, "now has access to Nextcloud") || strings.Count(b, "open ") != 1 {
					t.Fatalf("exit %d, browser log %q:\n%s", code, b, out)
				}
				if po := pageOrigin(t, e); po != dev.NextcloudURL() {
					t.Errorf("recorded origin %q", po)
				}
			case "n":
				if code != 8 || !strings.Contains(out, "Not opened: open the URL above yourself") || b != "" {
					t.Fatalf("exit %d, browser log %q:\n%s", code, b, out)
				}
				if po := pageOrigin(t, e); po != "" {
					t.Errorf("recorded origin %q after a no", po)
				}
			}
		})
	}
}

// runOnTerminal runs ncmcp on a pseudo-terminal, types answer once the
// output shows prompt, and returns all output and the exit code.
func runOnTerminal(t *testing.T, e *env, prompt, answer string, args ...string) (string, int) {
	t.Helper()
	d := startOnTerminal(t, e, args...)
	d.answer(prompt, answer)
	return d.wait()
}
