package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/provision"
)

// TestTokenRowsReadable: the rows come under a header, and an app
// password's row has no empty columns: its missing client and scopes show
// as "-", and it says "app password" where a refresh token would be.
func TestTokenRowsReadable(t *testing.T) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	var b bytes.Buffer
	printTokenRows(&b, now, []TokenRow{
		{Server: "https://mcp.example.com", Username: "alice", Kind: "flow1", ClientID: "c1", Scopes: []string{"openid"}, AccessTokenExpiry: &exp, HasRefreshToken: true, Storage: "keyring"},
		{Server: "https://mcp.example.com", Username: "alice", Kind: provision.KindLoginFlow, Scopes: []string{}, ProvisionedAt: &now, Storage: "server"},
	})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SERVER\tACCOUNT\tKIND\tCLIENT\tSCOPES") {
		t.Fatalf("output:\n%s", b.String())
	}
	app := strings.Split(lines[2], "\t")
	for i, f := range app {
		if f == "" {
			t.Errorf("column %d of the app password's row is empty: %q", i, lines[2])
		}
	}
	if !strings.Contains(lines[2], "\tapp password\t") || strings.Contains(lines[2], "no refresh token") {
		t.Errorf("app password row: %q", lines[2])
	}
}
