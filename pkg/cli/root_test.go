package cli

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/spf13/cobra"
)

// TestSubcommandsTable: the table newRootCmdFor builds single commands from
// names each command as cobra does, without aliases (commandName knows
// names only).
func TestSubcommandsTable(t *testing.T) {
	deps := &Deps{}
	deps.fill()
	g := &globalOptions{deps: deps}
	for _, c := range subcommands {
		cmd := c.new(g)
		if cmd.Name() != c.name {
			t.Errorf("subcommands entry %q builds command %q", c.name, cmd.Name())
		}
		if len(cmd.Aliases) != 0 {
			t.Errorf("command %q has aliases %v: teach commandName them", c.name, cmd.Aliases)
		}
	}
}

// TestCommandNameAsCobra: commandName picks the command cobra's Find picks
// in the whole tree, or "" (the whole tree is built).
func TestCommandNameAsCobra(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"token"}, "token"},
		{[]string{"token", "--json"}, "token"},
		{[]string{"--server", "https://mcp.example.com", "token"}, "token"},
		{[]string{"--server=https://mcp.example.com", "token"}, "token"},
		{[]string{"--debug", "token"}, "token"},
		{[]string{"--debug=true", "--storage", "file", "status"}, "status"},
		{[]string{"--generation", "2", "tokens", "list"}, "tokens"},
		{[]string{"--help", "token"}, ""}, // --help is not a flag yet when cobra looks
		{[]string{"-h", "token"}, ""},
		{[]string{"--", "token"}, ""},
		{[]string{"--nope", "token"}, ""},
		{[]string{"--server"}, ""},
		{[]string{"--server", "token"}, ""},
		{[]string{"help", "token"}, "help"},
		{[]string{"__complete", "token", ""}, "__complete"},
		{[]string{"completion", "bash"}, "completion"},
		{[]string{"tokn"}, "tokn"},
		{[]string{"", "token"}, "token"},
	}
	for _, tt := range tests {
		deps := &Deps{}
		deps.fill()
		if got := commandName(newBareRoot(&globalOptions{deps: deps}), tt.args); got != tt.want {
			t.Errorf("commandName(%q) = %q, want %q", tt.args, got, tt.want)
		}
		// cobra agrees wherever one of ncmcp's commands is named.
		full := newRootCmd(deps)
		full.InitDefaultHelpCmd()
		full.InitDefaultCompletionCmd(tt.args...)
		cmd, _, err := full.Find(tt.args)
		top := ""
		for c := cmd; err == nil && c != nil && c.HasParent(); c = c.Parent() {
			top = c.Name()
		}
		if isSubcommand(tt.want) && top != tt.want {
			t.Errorf("args %q: cobra runs %q under the root, commandName says %q", tt.args, top, tt.want)
		}
		if isSubcommand(top) && top != tt.want && !slices.Contains(tt.args, "--") {
			t.Errorf("args %q: cobra runs %q, commandName says %q", tt.args, top, tt.want)
		}
	}
}

func isSubcommand(name string) bool {
	for _, c := range subcommands {
		if c.name == name {
			return true
		}
	}
	return false
}

// TestLazyTreeSameHelp: a tree with the named command alone prints the
// same help and the same errors as the whole tree.
func TestLazyTreeSameHelp(t *testing.T) {
	run := func(root *cobra.Command, args []string) string {
		var out bytes.Buffer
		root.SetArgs(args)
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.ExecuteContext(context.Background())
		if err != nil {
			out.WriteString("error: " + err.Error())
		}
		return out.String()
	}
	var cases [][]string
	for _, c := range subcommands {
		cases = append(cases,
			[]string{c.name, "--help"},
			[]string{"--server", "https://mcp.example.com", c.name, "-h"},
			[]string{c.name, "--no-such-flag"},
		)
	}
	cases = append(cases, []string{"tokens", "list", "--help"}, []string{"clients", "nope"}, []string{"token", "extra"})
	for _, args := range cases {
		deps := &Deps{Getenv: func(string) string { return "" }}
		deps.fill()
		lazy, name := newRootCmdFor(deps, args)
		if name != args[slices.IndexFunc(args, isSubcommand)] {
			t.Errorf("args %q: built %q alone", args, name)
		}
		if len(lazy.Commands()) != 1 {
			t.Errorf("args %q: the lazy tree has %d commands", args, len(lazy.Commands()))
		}
		if got, want := run(lazy, args), run(newRootCmd(deps), args); got != want {
			t.Errorf("args %q: the lazy tree prints\n%s\nthe whole tree\n%s", args, got, want)
		}
	}
}

// TestSignalsWatchedWhenNeeded: 'ncmcp token' starts the signal handling
// (os/signal's threads) only before a refresh; the other commands before
// they run.
func TestSignalsWatchedWhenNeeded(t *testing.T) {
	srv, err := devserver.Start(devserver.Options{AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	env := map[string]string{"NCMCP_CONFIG_DIR": t.TempDir(), "NCMCP_STORAGE": "file"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(args ...string) (watched int) {
		t.Helper()
		var out, errs bytes.Buffer
		deps := Deps{
			Stdout: &out, Stderr: &errs, Stdin: strings.NewReader(""),
			Getenv:       func(k string) string { return env[k] },
			WatchSignals: func() { watched++ },
			OpenURL: func(u string) error {
				go func() {
					if resp, err := http.Get(u); err == nil {
						resp.Body.Close()
					}
				}()
				return nil
			},
		}
		if code := Run(ctx, args, deps); code != ExitOK {
			t.Fatalf("%q: exit %d\n%s", args, code, errs.String())
		}
		return watched
	}
	if n := run("login", "--server", srv.URL(), "--client-id", devserver.PublicClientID, "--timeout", "20s"); n == 0 {
		t.Error("login ran without the signal handling")
	}
	before := srv.TokenRequests("refresh_token")
	if n := run("token"); n != 0 {
		t.Errorf("a cached token started the signal handling (%d calls)", n)
	}
	if n := run("--debug", "token", "--json"); n != 0 {
		t.Errorf("a cached token started the signal handling (%d calls)", n)
	}
	if srv.TokenRequests("refresh_token") != before {
		t.Fatal("the cached token was refreshed")
	}
	if n := run("token", "--min-ttl", "2h"); n == 0 {
		t.Error("a refresh ran without the signal handling")
	}
	if srv.TokenRequests("refresh_token") != before+1 {
		t.Fatal("no refresh")
	}
	if n := run("status"); n == 0 {
		t.Error("status ran without the signal handling")
	}
}
