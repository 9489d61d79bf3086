package cli

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// parse runs a command tree whose one subcommand is built by mk with a
// capturing run function, and returns the exit code.
func parse(t *testing.T, env map[string]string, mk func(g *globalOptions) *cobra.Command, args ...string) (int, *globalOptions, string) {
	t.Helper()
	var stderr bytes.Buffer
	deps := &Deps{Stdout: &bytes.Buffer{}, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
	deps.fill()
	g := &globalOptions{deps: deps}
	root := newBareRoot(g)
	root.AddCommand(mk(g))
	root.SetArgs(args)
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&stderr)
	err := root.ExecuteContext(context.Background())
	if err != nil && !isCodedError(err) && isCobraUsageError(err) {
		err = &Error{Code: ExitUsage, Err: err}
	}
	return report(&stderr, err), g, stderr.String()
}

func TestLoginFlags(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		want     LoginOptions
		server   string
		clientID string
	}{
		{name: "defaults", args: []string{"login"}, want: LoginOptions{Timeout: 5 * time.Minute}},
		{name: "all flags", args: []string{"login", "--server", "https://mcp.example.com/mcp/", "--client-id", "c1", "--no-browser", "--timeout", "30s", "--port", "8400"},
			want: LoginOptions{NoBrowser: true, Timeout: 30 * time.Second, Port: 8400}, server: "https://mcp.example.com/mcp", clientID: "c1"},
		{name: "environment", env: map[string]string{"NCMCP_SERVER": "http://127.0.0.1:9", "NCMCP_CLIENT_ID": "c2", "NCMCP_NO_BROWSER": "1"}, args: []string{"login"},
			want: LoginOptions{NoBrowser: true, Timeout: 5 * time.Minute}, server: "http://127.0.0.1:9", clientID: "c2"},
		{name: "flag beats environment", env: map[string]string{"NCMCP_SERVER": "http://127.0.0.1:9", "NCMCP_NO_BROWSER": "1"}, args: []string{"login", "--server", "http://127.0.0.1:10", "--no-browser=false"},
			want: LoginOptions{Timeout: 5 * time.Minute}, server: "http://127.0.0.1:10"},
		{name: "bad timeout", args: []string{"login", "--timeout", "0s"}, wantCode: ExitUsage},
		{name: "bad port", args: []string{"login", "--port", "70000"}, wantCode: ExitUsage},
		{name: "bad server", args: []string{"login", "--server", "mcp.example.com"}, wantCode: ExitUsage},
		{name: "bad storage", args: []string{"login", "--storage", "cloud"}, wantCode: ExitUsage},
		{name: "unknown flag", args: []string{"login", "--nope"}, wantCode: ExitUsage},
		{name: "stray argument", args: []string{"login", "extra"}, wantCode: ExitUsage},
		{name: "a secret is never a flag", args: []string{"login", "--client-secret", "s"}, wantCode: ExitUsage},
		{name: "unreadable CA file", args: []string{"login", "--cacert", "/nonexistent/ca.pem"}, wantCode: ExitUsage},
		{name: "bad generation", args: []string{"login", "--generation", "3"}, wantCode: ExitUsage},
		{name: "bad generation in the environment", env: map[string]string{"NCMCP_GENERATION": "two"}, args: []string{"login"}, wantCode: ExitUsage},
		{name: "scopes and generation", args: []string{"login", "--scopes", "notes.read,files.read", "--generation", "2"}, want: LoginOptions{Timeout: 5 * time.Minute}},
		{name: "paste and refresh token both read stdin", args: []string{"login", "--paste", "--with-refresh-token"}, wantCode: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *LoginOptions
			code, g, stderr := parse(t, tt.env, func(g *globalOptions) *cobra.Command {
				return newLoginCmd(g, func(_ context.Context, o *LoginOptions) error { got = o; return nil })
			}, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (%s)", code, tt.wantCode, stderr)
			}
			if tt.wantCode != 0 {
				if got != nil {
					t.Fatal("run function called despite a usage error")
				}
				return
			}
			if got.NoBrowser != tt.want.NoBrowser || got.Timeout != tt.want.Timeout || got.Port != tt.want.Port {
				t.Fatalf("options = %+v, want %+v", *got, tt.want)
			}
			if g.Server != tt.server || g.ClientID != tt.clientID {
				t.Fatalf("server %q client %q, want %q %q", g.Server, g.ClientID, tt.server, tt.clientID)
			}
		})
	}
}

func TestTokenFlags(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		minTTL   time.Duration
		account  string
		storage  string
	}{
		{name: "defaults", args: []string{"token"}, minTTL: time.Minute},
		{name: "min-ttl and account", args: []string{"token", "--min-ttl", "10m", "--account", "alice"}, minTTL: 10 * time.Minute, account: "alice"},
		{name: "environment", env: map[string]string{"NCMCP_ACCOUNT": "bob", "NCMCP_STORAGE": "file"}, args: []string{"token"}, minTTL: time.Minute, account: "bob", storage: "file"},
		{name: "negative min-ttl", args: []string{"token", "--min-ttl", "-1s"}, wantCode: ExitUsage},
		{name: "not a duration", args: []string{"token", "--min-ttl", "soon"}, wantCode: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *TokenOptions
			code, g, stderr := parse(t, tt.env, func(g *globalOptions) *cobra.Command {
				return newTokenCmd(g, func(_ context.Context, o *TokenOptions) error { got = o; return nil })
			}, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (%s)", code, tt.wantCode, stderr)
			}
			if tt.wantCode != 0 {
				return
			}
			if got.MinTTL != tt.minTTL || g.Account != tt.account || g.Storage != tt.storage {
				t.Fatalf("min-ttl %s account %q storage %q", got.MinTTL, g.Account, g.Storage)
			}
		})
	}
}

func TestStatusAndLogoutFlags(t *testing.T) {
	var st *StatusOptions
	code, _, _ := parse(t, nil, func(g *globalOptions) *cobra.Command {
		return newStatusCmd(g, func(_ context.Context, o *StatusOptions) error { st = o; return nil })
	}, "status", "--json")
	if code != 0 || !st.JSON {
		t.Fatalf("status --json: exit %d, opts %+v", code, st)
	}
	code, _, _ = parse(t, nil, func(g *globalOptions) *cobra.Command {
		return newStatusCmd(g, func(context.Context, *StatusOptions) error { return nil })
	}, "status", "extra")
	if code != ExitUsage {
		t.Fatalf("status extra: exit %d", code)
	}
	var lo *LogoutOptions
	code, g, _ := parse(t, map[string]string{"NCMCP_SERVER": "https://mcp.example.com"}, func(g *globalOptions) *cobra.Command {
		return newLogoutCmd(g, func(_ context.Context, o *LogoutOptions) error { lo = o; return nil })
	}, "logout", "--account", "alice")
	if code != 0 || lo == nil || g.Account != "alice" || g.Server != "https://mcp.example.com" {
		t.Fatalf("logout: exit %d, account %q server %q", code, g.Account, g.Server)
	}
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nonsense"}, ExitUsage, "unknown command"},
		{[]string{"version"}, ExitOK, ""},
		{[]string{"token"}, ExitAuth, "ncmcp: not logged in to any server\nhint: run 'ncmcp login --server URL'\n"},
		{[]string{"status"}, ExitAuth, "not logged in"},
		{[]string{"logout"}, ExitAuth, "not logged in"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		dir := t.TempDir()
		code := Run(context.Background(), tt.args, Deps{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
			if k == "NCMCP_CONFIG_DIR" {
				return dir
			}
			return ""
		}})
		if code != tt.code || (tt.want != "" && !bytes.Contains(stderr.Bytes(), []byte(tt.want))) {
			t.Errorf("ncmcp %v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.code, tt.want)
		}
		if bytes.Count(stderr.Bytes(), []byte("ncmcp: ")) > 1 {
			t.Errorf("ncmcp %v printed the error more than once: %q", tt.args, stderr.String())
		}
	}
}
