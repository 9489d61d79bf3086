package cli

import (
	"strings"
	"testing"
)

// TestLoginClientAuthFlagsNameBothLogins: --private-key and --secret-stdin
// without a login that takes them say that both --client-credentials and
// --jwt-bearer-file do.
func TestLoginClientAuthFlagsNameBothLogins(t *testing.T) {
	for _, flag := range []string{"--private-key=key.pem", "--secret-stdin"} {
		code, _, stderr := runTools(t, "login", "--server", "https://mcp.example", "--client-id", "c", flag)
		if code != ExitUsage || !strings.Contains(stderr, "is for --client-credentials and --jwt-bearer-file") || !strings.Contains(stderr, "add --client-credentials or --jwt-bearer-file FILE") {
			t.Errorf("%s: exit %d, stderr:\n%s", flag, code, stderr)
		}
	}
}
