package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

// TestQuirks: IdPs and servers in the wild, each reproduced by the dev
// server, and what ncmcp does about them.
func TestQuirks(t *testing.T) {
	t.Parallel()

	t.Run("discovery answered by a redirect", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true, DiscoveryRedirect: true})
		e := loggedIn(t, dev)
		if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token").Stdout)) {
			t.Fatal("token")
		}
	})

	t.Run("metadata names an internal host", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true, PRMIssuer: "http://keycloak:8080/realms/nc"})
		e := newEnv(t).set("NCMCP_STORAGE", "file")
		r := e.expectCode(1, `names the host "keycloak"`, loginArgs(dev)...)
		if !strings.Contains(r.Stderr, "--issuer") {
			t.Errorf("no override named:\n%s", r.Stderr)
		}
		e.mustRun(loginArgs(dev, "--issuer", dev.IssuerURL())...)
		if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)) {
			t.Fatal("token refreshed through the overridden issuer")
		}
	})

	t.Run("refresh without a new refresh token", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true, NoRefreshRotation: true})
		e := loggedIn(t, dev)
		before := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
		for i := 0; i < 2; i++ {
			if !mcpAccepts(t, dev, strings.TrimSpace(e.mustRun("token", "--min-ttl", "2h").Stdout)) {
				t.Fatalf("refresh %d", i+1)
			}
		}
		after := tokensInFile(t, e, dev.URL(), devserver.DefaultUser.Subject)
		if after.RefreshToken != before.RefreshToken || after.AccessToken == before.AccessToken {
			t.Fatal("the old refresh token was not kept, or no new access token stored")
		}
		if n := dev.TokenRequests("refresh_token"); n != 2 {
			t.Errorf("%d refreshes, want 2", n)
		}
	})

	t.Run("no expires_in", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, devserver.Options{AutoApprove: true, OmitExpiresIn: true})
		e := loggedIn(t, dev)
		var out TokenOut
		if err := json.Unmarshal([]byte(e.mustRun("token", "--json").Stdout), &out); err != nil {
			t.Fatal(err)
		}
		if d := time.Until(out.ExpiresAt); d < 50*time.Minute || d > 61*time.Minute {
			t.Fatalf("expiry %v: want the access token's exp, about an hour away", out.ExpiresAt)
		}
	})
}
