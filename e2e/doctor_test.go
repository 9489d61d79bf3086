package e2e

import (
	"encoding/json"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

type doctorOut struct {
	Server string `json:"server"`
	OK     bool   `json:"ok"`
	Checks []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail"`
		Hint   string `json:"hint"`
	} `json:"checks"`
}

func runDoctor(t *testing.T, e *env, code int, args ...string) map[string]string {
	t.Helper()
	r := e.expectCode(code, "", append([]string{"doctor", "--json"}, args...)...)
	var out doctorOut
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.Stdout)
	}
	if out.OK != (code == 0) {
		t.Errorf("ok = %v with exit %d", out.OK, code)
	}
	status := map[string]string{}
	for _, c := range out.Checks {
		status[c.Name] = c.Status
		if c.Status != "OK" && c.Status != "SKIP" && c.Hint == "" {
			t.Errorf("%s is %s without a hint", c.Name, c.Status)
		}
	}
	return status
}

// TestDoctorHealthy: against a healthy dev server, with a real keyring,
// every server and machine check passes.
func TestDoctorHealthy(t *testing.T) {
	t.Parallel()
	k := startKeyring(t)
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := k.use(newEnv(t))
	st := runDoctor(t, e, 0, "--server", dev.URL())
	for _, name := range []string{"server reachable", "protected-resource metadata", "server generation", "authorization server metadata", "PKCE S256", "revocation endpoint", "offline_access", "keyring backend", "loopback listener", "browser"} {
		if st[name] != "OK" {
			t.Errorf("%s: %s, want OK", name, st[name])
		}
	}
}

// TestDoctorBroken: an IdP that is down and a keyring that is required but
// missing are FAILs, with exit 1.
func TestDoctorBroken(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	if err := dev.StopIdP(); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	st := runDoctor(t, e, 1, "--server", dev.URL(), "--storage", "keyring")
	want := map[string]string{
		"server reachable": "OK", "protected-resource metadata": "OK", "authorization server metadata": "FAIL",
		"PKCE S256": "SKIP", "keyring backend": "FAIL", "loopback listener": "OK",
	}
	for name, s := range want {
		if st[name] != s {
			t.Errorf("%s: %s, want %s", name, st[name], s)
		}
	}
	st = runDoctor(t, e, 1, "--server", "http://127.0.0.1:1", "--storage", "file")
	if st["server reachable"] != "FAIL" || st["keyring backend"] != "OK" {
		t.Errorf("unreachable server: %v", st)
	}
}
