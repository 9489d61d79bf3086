package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

// provisioned logs in to dev and gives the server its own credential for
// alice: an app password through Login Flow v2 on generation 2, a Flow 2
// refresh token on generation 1.
func provisioned(t *testing.T, dev *devserver.Server) *env {
	t.Helper()
	e := loggedIn(t, dev)
	e.set("NCMCP_E2E_BROWSER_LOG", filepath.Join(t.TempDir(), "browser.log"))
	e.mustRun("provision", "--interval", "200ms", "--open")
	if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); !ok {
		t.Fatal("the server holds no credential of its own for alice after provisioning")
	}
	return e
}

// stderrHas fails t for each of wants that r's stderr lacks.
func stderrHas(t *testing.T, r result, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
}

// TestLogoutRevokeGeneration1: the IdP revokes both tokens and logout
// exits 0; what the server holds of its own is named, with the way to end
// it, and stays.
func TestLogoutRevokeGeneration1(t *testing.T) {
	t.Parallel()
	t.Run("nothing provisioned", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true})
		e := loggedIn(t, dev)
		rt := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject).RefreshToken
		r := e.mustRun("logout", "--revoke")
		stderrHas(t, r,
			"server's own credential:  none: the server holds no credential of its own for alice, per its status tool",
			"refresh token:            revoked at "+dev.IssuerURL(),
			"access token:             revoked at "+dev.IssuerURL(),
			"Logged out alice from "+dev.URL()+" (revoked: the refresh token, the access token; NOT revoked, still valid: nothing).")
		if got := refreshAtOP(t, dev, rt); got == "" {
			t.Error("the IdP still takes the refresh token")
		}
		e.expectCode(4, "not logged in", "token")
	})
	t.Run("the server's refresh token stays", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true})
		e := provisioned(t, dev)
		r := e.mustRun("logout", "--revoke")
		stderrHas(t, r,
			"server's own credential:  STAYS (not asked: --server-side): the server holds a refresh token (Flow 2) for alice (provisioned ",
			"refresh token:            revoked at ",
			"The server's refresh token (Flow 2) for alice stays valid: the server keeps using it; to end it, log in again ('ncmcp login --server "+dev.URL()+"') and run 'ncmcp logout --server-side'.",
			"NOT revoked, still valid: the server's refresh token (Flow 2) (not asked)")
		if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); !ok {
			t.Error("the server lost its own token, which was not asked for")
		}
	})
}

// TestLogoutRevokeGeneration2: a generation-2 server has no revocation
// endpoint, so --revoke revokes nothing: logout forgets the tokens, lists
// them as still valid with the reason, names the server's app password
// that stays, and exits 1.
func TestLogoutRevokeGeneration2(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := provisioned(t, dev)
	r := e.expectCode(1, "ncmcp: alice was logged out from "+dev.URL()+", but not everything was revoked: revoked: nothing; "+
		"NOT revoked, still valid: the server's app password (Nextcloud Login Flow v2) (not asked), the refresh token (no revocation endpoint), the access token (no revocation endpoint)",
		"logout", "--revoke")
	stderrHas(t, r,
		"server's own credential:  STAYS (not asked: --server-side): the server holds an app password (Nextcloud Login Flow v2) for alice, per its status tool",
		"refresh token:            NOT revoked: the server (generation 2, its own authorization server, relaying the IdP's tokens) has no revocation endpoint; removed locally only; it stays valid until it expires",
		"stored account:           removed, with its tokens, from the file storage",
		"or delete the app password in Nextcloud (Settings > Security > Devices & sessions)",
		"hint: the server (generation 2")
	if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); !ok {
		t.Error("the server lost its app password, which was not asked for")
	}
	e.expectCode(4, "not logged in", "token")
}

// TestLogoutServerSideRevoke: --server-side --revoke ends both, the
// server's credential first (its tools need the account's token): the
// server no longer holds its token, and the IdP no longer takes ncmcp's.
func TestLogoutServerSideRevoke(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true})
	e := provisioned(t, dev)
	rt := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject).RefreshToken
	r := e.mustRun("logout", "--server-side", "--revoke")
	stderrHas(t, r,
		"server's own credential:  ended by the server: it held a refresh token (Flow 2) (provisioned ",
		"(its answer: Successfully revoked Nextcloud access.",
		"refresh token:            revoked at "+dev.IssuerURL(),
		"Logged out alice from "+dev.URL()+" (revoked: the server's refresh token (Flow 2), the refresh token, the access token; NOT revoked, still valid: nothing).")
	if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); ok {
		t.Error("the server still holds its own token")
	}
	if got := refreshAtOP(t, dev, rt); got == "" {
		t.Error("the IdP still takes the refresh token")
	}
	e.expectCode(4, "not logged in", "token")
}

// TestLogoutServerSidePartial: on generation 2 --server-side ends the
// server's app password, but nothing can revoke the tokens: exit 1, with
// what was revoked and what stays.
func TestLogoutServerSidePartial(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	e := provisioned(t, dev)
	r := e.expectCode(1, "ncmcp: alice was logged out from "+dev.URL()+", but not everything was revoked: revoked: the server's app password (Nextcloud Login Flow v2); "+
		"NOT revoked, still valid: the refresh token (no revocation endpoint), the access token (no revocation endpoint)",
		"logout", "--server-side", "--revoke")
	stderrHas(t, r, "server's own credential:  ended by the server: it held an app password (Nextcloud Login Flow v2)")
	if _, ok := dev.ProvisionedToken(devserver.DefaultUser.Subject); ok {
		t.Error("the server still holds its app password")
	}
	e.expectCode(4, "not logged in", "token")
}

// TestLogoutServerSideRefused: when the server does not end its
// credential, nothing else is done: the tokens are neither revoked nor
// forgotten (trying again needs them), and logout exits 1.
func TestLogoutServerSideRefused(t *testing.T) {
	t.Parallel()
	// The server refuses every tool call of this IdP's tokens.
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2, StrictScopeClaim: true})
	e := loggedIn(t, dev)
	before := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
	r := e.expectCode(1, "ncmcp: alice was not logged out from "+dev.URL(), "logout", "--server-side", "--revoke")
	stderrHas(t, r,
		"server's own credential:  NOT ended: ",
		"refresh token:            NOT revoked: not tried, since the server's own credential was not ended",
		"stored account:           kept, with its tokens, so that the logout can be tried again",
		"NOT revoked, still valid: the server's own credential (not ended), the refresh token (still stored), the access token (still stored)",
		"run 'ncmcp logout --server-side --revoke' again (nothing else was done)")
	if got := strings.TrimSpace(e.mustRun("token").Stdout); got != before.AccessToken {
		t.Error("the account's tokens are no longer stored")
	}
}
