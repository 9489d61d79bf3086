package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/setup"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

// SetupOptions are the inputs of 'ncmcp setup'.
type SetupOptions struct {
	g      *globalOptions
	Client string
	Name   string
	Print  bool
	List   bool
	// Command is the ncmcp executable the client runs.
	Command string
	// File writes to this configuration file instead of the client's own
	// (a project's .mcp.json, a workspace's .vscode/mcp.json).
	File string
	// NoLogin writes without making sure of a usable login first.
	NoLogin bool
	// OS shows, with Print, the entry for another OS.
	OS string
}

func newSetupCmd(g *globalOptions, runF func(context.Context, *SetupOptions) error) *cobra.Command {
	opts := &SetupOptions{g: g}
	cmd := &cobra.Command{
		Use:   "setup CLIENT",
		Short: "Connect an MCP client application to the server through ncmcp",
		Long: `Write the entry that connects an MCP client to the selected server into that
client's configuration file, in the form that keeps working after the
access token expires: 'ncmcp proxy' as a stdio server for Claude Desktop,
Cursor, VS Code, Windsurf, Gemini CLI, Zed and Codex CLI; the server's URL
with 'ncmcp token --headers' as headersHelper for Claude Code.

The entry is merged into what is there: other servers, settings, the
entry's own keys (env, timeouts) and comments are kept, the file as it was
is copied beside it (` + setup.BackupSuffix + `, numbered after the first,
which is never overwritten), and nothing is written when the entry is there
already, or when the result would not parse. The client's own file may be a
link into your dotfiles: its target is changed, the link kept. A --file
that is a link may lead only within its directory, and files of another
user are refused.

The entry carries what ncmcp needs where the client runs it, which is not
your shell: the config directory, storage and CA file when they are not
the defaults (in its env). Before writing, setup makes sure of a usable
login, logging in in the browser when needed (--no-login skips that), so
that the client's first connection never waits for a browser.

--print shows the entry without writing (--os for another OS); --list
shows which clients are installed.

Clients: ` + strings.Join(setup.IDs(), ", ") + `.`,
		Example: `  ncmcp setup claude-desktop --server https://mcp.example.com
  ncmcp setup claude-code --print
  ncmcp setup vscode --file .vscode/mcp.json      # for one workspace
  ncmcp setup --list`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return setup.IDs(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Client = args[0]
			}
			switch {
			case opts.List && opts.Client != "":
				return usageErrorf("use --list alone", "--list takes no client")
			case !opts.List && opts.Client == "":
				return usageErrorf("name one of: "+strings.Join(setup.IDs(), ", "), "which client?")
			case opts.Print && opts.File != "":
				return usageErrorf("use one of them", "--print writes nothing, --file says where to write")
			case opts.OS != "" && !opts.Print:
				return usageErrorf("use --os with --print", "--os shows another OS's entry; setup writes for this one")
			case opts.OS != "" && opts.OS != "linux" && opts.OS != "darwin" && opts.OS != "windows":
				return usageErrorf("use --os linux, darwin or windows", "unknown --os %q", opts.OS)
			}
			if _, ok := setup.Lookup(opts.Client); !ok && !opts.List {
				// The error names the clients; the hint says where they are described.
				return usageErrorf("'ncmcp setup --list' shows them with their config files", "%v", &setup.UnknownClientError{ID: opts.Client})
			}
			if strings.TrimSpace(opts.Name) == "" {
				return usageErrorf("pass a name such as --name nextcloud", "empty --name")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSetup(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", "nextcloud", "the entry's name in the client's configuration")
	f.BoolVar(&opts.Print, "print", false, "print the entry and where it goes, without writing")
	f.BoolVar(&opts.List, "list", false, "list the clients ncmcp sets up and whether they are installed")
	f.StringVar(&opts.Command, "command", "", "the ncmcp executable the client runs (default: this one)")
	f.StringVar(&opts.File, "file", "", "write to this configuration file instead of the client's own")
	f.BoolVar(&opts.NoLogin, "no-login", false, "write without making sure of a usable login first")
	f.StringVar(&opts.OS, "os", "", "with --print: the entry and path for this OS (linux, darwin, windows)")
	_ = cmd.RegisterFlagCompletionFunc("os", cobra.FixedCompletions([]string{"linux", "darwin", "windows"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// setupEnv is where this machine's clients keep their configuration; for
// another OS (--os), where they keep it there, from the home directory.
func (g *globalOptions) setupEnv(goos string) setup.Env {
	if goos != "" && goos != runtime.GOOS {
		if goos == "windows" {
			return setup.Env{GOOS: goos, Home: "%USERPROFILE%", AppData: "%APPDATA%"}
		}
		return setup.Env{GOOS: goos, Home: "~"}
	}
	env := g.deps.Getenv
	home := env("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return setup.Env{GOOS: runtime.GOOS, Home: home, AppData: env("APPDATA"), XDGConfigHome: env("XDG_CONFIG_HOME"),
		CodexHome: env("CODEX_HOME"), ClaudeConfigDir: env("CLAUDE_CONFIG_DIR"), LookPath: exec.LookPath}
}

// entryEnv is the part of this shell's ncmcp settings that a client must
// be given: those that differ from what ncmcp would use without them.
// Never a secret.
func (g *globalOptions) entryEnv() map[string]string {
	env := map[string]string{}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	if g.deps.Getenv("NCMCP_CONFIG_DIR") != "" || g.deps.Getenv("XDG_CONFIG_HOME") != "" {
		if dir, err := g.configDir(); err == nil {
			if def, err := os.UserConfigDir(); err != nil || filepath.Join(def, "ncmcp") != abs(dir) {
				env["NCMCP_CONFIG_DIR"] = abs(dir)
			}
		}
	}
	if g.Storage != "" && g.Storage != "auto" {
		env["NCMCP_STORAGE"] = g.Storage
	}
	if g.CACert != "" {
		env["NCMCP_CACERT"] = abs(g.CACert)
	}
	return env
}

func runSetup(ctx context.Context, opts *SetupOptions) error {
	g, d := opts.g, opts.g.deps
	env := g.setupEnv(opts.OS)
	if opts.List {
		for _, f := range setup.Installed(env) {
			state := "not found"
			switch {
			case f.Command != "":
				state = "installed (" + f.Command + ")"
			case f.Config:
				state = "installed (configuration found)"
			}
			fmt.Fprintf(d.Stdout, "%-15s %-15s %s\t%s\n", f.Client.ID, f.Client.Title, state, f.Client.Path(env))
		}
		return nil
	}
	c, _ := setup.Lookup(opts.Client)
	st, srv, acct, err := g.mcpTarget()
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == ExitAuth {
			return usageErrorf("pass --server URL (or set NCMCP_SERVER)", "no server given")
		}
		return err
	}
	command, err := setupCommand(opts.Command)
	if err != nil {
		return err
	}
	en := setup.Entry{Name: opts.Name, Command: command, Server: srv.URL, Endpoint: srv.MCPEndpoint(), Account: g.Account,
		Env: g.entryEnv(), GOOS: env.GOOS}
	path := c.Path(env)
	if opts.File != "" {
		if path, err = filepath.Abs(opts.File); err != nil {
			return failure(err, "")
		}
	}
	if opts.Print {
		snippet, err := c.Snippet(en)
		if err != nil {
			return failure(err, "")
		}
		shown := path
		if env.GOOS == "windows" && runtime.GOOS != "windows" {
			shown = strings.ReplaceAll(path, "/", `\`) // the path as Windows writes it
		}
		fmt.Fprintf(d.Stderr, "%s reads %s; its entry:\n", c.Title, shown)
		if u := c.Unofficial(env); u != "" {
			fmt.Fprintf(d.Stderr, "(%s)\n", u)
		}
		_, err = d.Stdout.Write(snippet)
		return err
	}
	if !opts.NoLogin {
		if acct, err = ensureLogin(ctx, g, st, srv, acct); err != nil {
			return err
		}
	}
	lock := func(path string) (func(), error) { return st.FileLock(ctx, path) }
	o := setup.Options{Own: opts.File == "", Lock: lock}
	if env.LookPath != nil {
		o.Run = func(name string, args ...string) error {
			exe, err := env.LookPath(name)
			if err != nil {
				return err
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			cmd := exec.CommandContext(rctx, exe, args...)
			cmd.Stdout, cmd.Stderr = d.Stderr, d.Stderr
			return cmd.Run()
		}
	}
	res, err := c.Apply(path, en, o)
	if err != nil {
		var fe *setup.FileError
		if errors.As(err, &fe) {
			return failure(fmt.Errorf("%s's configuration: %w", c.Title, err), "nothing was written; check what the file is, or use --print and add the entry yourself")
		}
		return failure(fmt.Errorf("%s's configuration: %w", c.Title, err), "nothing was written; fix the file, or use --print and add the entry yourself")
	}
	if !res.Changed {
		fmt.Fprintf(d.Stderr, "%s's configuration already has %s: %s\n", c.Title, en.Name, path)
	} else {
		verb := "Added"
		if res.Replaced {
			verb = "Updated"
		}
		fmt.Fprintf(d.Stderr, "%s %s in %s's configuration: %s\n", verb, en.Name, c.Title, path)
		if res.Via != "" {
			fmt.Fprintf(d.Stderr, "(through '%s', %s's own command)\n", res.Via, c.Title)
		}
		if res.Target != "" {
			fmt.Fprintf(d.Stderr, "It is a link: %s was changed in place, and the link kept.\n", res.Target)
		}
		if res.Backup != "" {
			fmt.Fprintf(d.Stderr, "The file as it was is in %s.\n", res.Backup)
		}
		if u := c.Unofficial(env); u != "" {
			fmt.Fprintf(d.Stderr, "Note: %s.\n", u)
		}
		fmt.Fprintf(d.Stderr, "Next: %s.\n", c.Note)
	}
	if acct == nil {
		if c.ID == "claude-code" {
			fmt.Fprintf(d.Stderr, "Log in first: 'ncmcp login --server %s' (Claude Code's headers helper does not log in).\n", srv.URL)
		} else {
			fmt.Fprintf(d.Stderr, "Not logged in to %s yet: the proxy opens the browser login when %s first connects ('ncmcp login' does it now).\n", srv.URL, c.Title)
		}
	}
	return nil
}

// setupCommand is the ncmcp executable a client runs: --command, else
// this one, by its absolute path (applications do not share the shell's
// PATH).
func setupCommand(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", failure(fmt.Errorf("find this executable: %w", err), "pass --command with ncmcp's path")
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return exe, nil
}

// ensureLogin makes sure the account can give a token, logging in in the
// browser when it cannot (or there is none yet), so that a client's first
// connection does not wait for a login. It returns the account then.
func ensureLogin(ctx context.Context, g *globalOptions, st *store.Store, srv *store.Server, acct *store.Account) (*store.Account, error) {
	if acct != nil {
		if _, err := g.source(st, srv.URL, acct.Subject).Token(ctx, time.Minute); err == nil {
			return acct, nil
		}
	}
	fmt.Fprintf(g.deps.Stderr, "Logging in to %s first, so that the client connects without waiting for a browser (--no-login skips this).\n", srv.URL)
	noBrowser := envBool(g.deps.Getenv("NCMCP_NO_BROWSER"))
	l, err := sessionLogin(ctx, g, st, srv.MCPEndpoint(), nil, noBrowser)
	if err != nil {
		return nil, sessionError(err, srv.URL)
	}
	_, cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if s := cfg.Servers[l.Server]; s != nil {
		return s.Accounts[l.Subject], nil
	}
	return nil, nil
}
