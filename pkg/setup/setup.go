// Package setup writes the entry that connects an MCP client application
// (Claude Desktop, Claude Code, Cursor, VS Code, Windsurf, Gemini CLI,
// Zed, Codex CLI) to a server through ncmcp into that client's
// configuration file: at its documented place on each OS, in its format,
// merged with what is there (other entries and unknown fields kept, a
// backup beside it, nothing written when the entry is already there).
package setup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Env is the part of the machine that says where clients keep their
// configuration.
type Env struct {
	// GOOS is "linux", "darwin" or "windows".
	GOOS string
	// Home is the user's home directory.
	Home string
	// AppData is %APPDATA% on Windows.
	AppData string
	// XDGConfigHome is $XDG_CONFIG_HOME, if set.
	XDGConfigHome string
	// CodexHome is $CODEX_HOME, if set.
	CodexHome string
	// ClaudeConfigDir is $CLAUDE_CONFIG_DIR, if set: where Claude Code
	// keeps .claude.json instead of the home directory.
	ClaudeConfigDir string
	// LookPath finds a command on PATH (nil: none is found).
	LookPath func(string) (string, error)
}

func (e Env) xdgConfig() string {
	if e.XDGConfigHome != "" {
		return e.XDGConfigHome
	}
	return filepath.Join(e.Home, ".config")
}

// appConfig is the directory where desktop applications named dir keep
// their configuration on each OS.
func (e Env) appConfig(dir string) string {
	switch e.GOOS {
	case "darwin":
		return filepath.Join(e.Home, "Library", "Application Support", dir)
	case "windows":
		return filepath.Join(e.AppData, dir)
	}
	return filepath.Join(e.xdgConfig(), dir)
}

// Entry is what a client needs to reach the server through ncmcp.
type Entry struct {
	// Name is the entry's key in the client's configuration.
	Name string
	// Command is the ncmcp executable.
	Command string
	// Server is the server's URL, Endpoint its MCP endpoint.
	Server, Endpoint string
	// Account, when set, selects an account of several.
	Account string
	// Env are the environment variables ncmcp needs where the client runs
	// it (its config directory, storage, CA file, when not the defaults):
	// clients do not pass on the shell's environment. Never a secret.
	Env map[string]string
	// GOOS is the OS the client runs on, for quoting ("windows": cmd.exe).
	GOOS string
}

// envKeys returns the names of the entry's environment, sorted.
func (e Entry) envKeys() []string {
	keys := make([]string, 0, len(e.Env))
	for k := range e.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// proxyArgs are the arguments of the stdio proxy's command line.
func (e Entry) proxyArgs() []string {
	args := []string{"proxy", "--server", e.Server}
	if e.Account != "" {
		args = append(args, "--account", e.Account)
	}
	return args
}

// headersHelper is the command line of 'ncmcp token --headers', with the
// entry's environment, for the shell the client runs it with: sh, or
// cmd.exe on Windows.
func (e Entry) headersHelper() string {
	quote := shellQuote
	if e.GOOS == "windows" {
		quote = cmdQuote
	}
	var parts []string
	for _, k := range e.envKeys() {
		if e.GOOS == "windows" {
			parts = append(parts, `set "`+k+"="+e.Env[k]+`" &&`)
		} else {
			parts = append(parts, k+"="+shellQuote(e.Env[k]))
		}
	}
	parts = append(parts, quote(e.Command), "token", "--headers")
	if e.Account != "" {
		parts = append(parts, "--account", quote(e.Account))
	}
	return strings.Join(parts, " ")
}

// cmdQuote quotes s for cmd.exe when it needs it: in double quotes, which
// Windows paths cannot contain.
func cmdQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t&|<>^()%!,;=\"") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:@+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Client is an MCP client application ncmcp can set up.
type Client struct {
	// ID is the name 'ncmcp setup' takes.
	ID string
	// Title is the application's name.
	Title string
	// Commands are the application's executables, to tell whether it is
	// installed.
	Commands []string
	// path is the configuration file.
	path func(Env) string
	// format writes the entry into the configuration.
	format format
	// Note says what to do after the change.
	Note string
	// unofficial, if set, says why the path on an OS is not the client's
	// documented one ("" where it is).
	unofficial func(Env) string
	// add, if set, adds a new entry with the client's own command (named
	// addName), which knows the file better than ncmcp.
	add     func(run Runner, en Entry) error
	addName string
}

// Runner runs an installed command with arguments (never through a
// shell) and returns its error.
type Runner func(name string, args ...string) error

// claudeAdd adds the entry with 'claude mcp add-json --scope user': Claude
// Code rewrites ~/.claude.json itself, and entries others wrote there get
// lost.
func claudeAdd(run Runner, en Entry) error {
	ent, err := marshal(obj{{"type", "http"}, {"url", en.Endpoint}, {"headersHelper", en.headersHelper()}})
	if err != nil {
		return err
	}
	return run("claude", "mcp", "add-json", "--scope", "user", en.Name, string(ent))
}

// Unofficial says why the configuration path on this OS is not one the
// client documents, or "".
func (c *Client) Unofficial(e Env) string {
	if c.unofficial == nil {
		return ""
	}
	return c.unofficial(e)
}

// Path returns the client's configuration file.
func (c *Client) Path(e Env) string { return c.path(e) }

// Clients returns the clients ncmcp can set up, in the order 'ncmcp
// setup --list' shows them.
func Clients() []*Client { return clients }

// Lookup returns the client with the given ID.
func Lookup(id string) (*Client, bool) {
	for _, c := range clients {
		if c.ID == id {
			return c, true
		}
	}
	return nil, false
}

// IDs returns the clients' IDs.
func IDs() []string {
	var out []string
	for _, c := range clients {
		out = append(out, c.ID)
	}
	return out
}

// Found says whether and where a client was found installed.
type Found struct {
	Client *Client
	// Config is set when its configuration directory exists.
	Config bool
	// Command is the executable found on PATH, if any.
	Command string
}

// Installed reports, for each client, what shows it is installed.
func Installed(e Env) []Found {
	var out []Found
	for _, c := range clients {
		f := Found{Client: c}
		if fi, err := os.Stat(filepath.Dir(c.Path(e))); err == nil && fi.IsDir() && filepath.Dir(c.Path(e)) != e.Home {
			f.Config = true
		}
		if _, err := os.Stat(c.Path(e)); err == nil {
			f.Config = true
		}
		for _, cmd := range c.Commands {
			if e.LookPath == nil {
				break
			}
			if p, err := e.LookPath(cmd); err == nil {
				f.Command = p
				break
			}
		}
		out = append(out, f)
	}
	return out
}

// Snippet returns the entry as the client's configuration file holds it,
// for --print.
func (c *Client) Snippet(en Entry) ([]byte, error) {
	return c.format.merge(nil, en)
}

// Result is what Apply did.
type Result struct {
	Path string
	// Target is the file written when Path is a symbolic link to it (the
	// link is kept).
	Target string
	// Via names the client's own command that added the entry, when it
	// did ("" when ncmcp edited the file).
	Via string
	// Changed is false when the entry was there already, as it would be
	// written.
	Changed bool
	// Created is set when the file did not exist.
	Created bool
	// Backup is the copy of the file as it was, when it was changed: a
	// new file, earlier backups are kept.
	Backup string
	// Replaced is set when an entry of that name was there and differed.
	Replaced bool
}

// BackupSuffix is added to a configuration file's name for its first
// backup; later ones are numbered after it.
const BackupSuffix = ".ncmcp-backup"

// ErrNotAnObject reports a configuration file whose top level is not an
// object (or table): it is not touched.
var ErrNotAnObject = errors.New("the file's top level is not an object")

// Apply writes the entry into the client's configuration file at path,
// merging it with what is there: under o.Lock, through a link only as o
// says, never into a file of another user, the file as it was kept in a
// new backup beside it, the new one written atomically with the old
// one's mode.
func (c *Client) Apply(path string, en Entry, o Options) (*Result, error) {
	if o.Lock != nil {
		unlock, err := o.Lock(path)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	real, fi, err := resolve(path, o.Own)
	if err != nil {
		return nil, err
	}
	res := &Result{Path: path, Created: fi == nil}
	if real != path {
		res.Target = real
	}
	var old []byte
	if fi != nil {
		if old, err = os.ReadFile(real); err != nil {
			return nil, err
		}
	}
	merged, err := c.format.merge(old, en)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !res.Created {
		had, err := c.format.has(old, en)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if had == entryEqual {
			return res, nil
		}
		res.Replaced = had == entryDiffers
	}
	// A client that edits its own file adds a new entry with its own
	// command, when it is installed: what it writes is checked. (Not
	// through a dotfiles link, which the client might replace.)
	if c.add != nil && o.Own && o.Run != nil && !res.Replaced && res.Target == "" {
		if err := c.add(o.Run, en); err == nil {
			if now, err := os.ReadFile(real); err == nil {
				if had, err := c.format.has(now, en); err == nil && had == entryEqual {
					res.Changed, res.Via = true, c.addName
					return res, nil
				}
			}
		}
	}
	res.Changed = true
	mode := os.FileMode(0o600)
	if fi != nil {
		mode = fi.Mode().Perm()
		if res.Backup, err = backup(real, old, mode); err != nil {
			return nil, fmt.Errorf("back up %s: %w", real, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		return nil, err
	}
	if err := writeAtomic(real, merged, mode); err != nil {
		return nil, err
	}
	return res, nil
}

// presence says whether a file has the entry.
type presence int

const (
	entryAbsent presence = iota
	entryEqual
	entryDiffers
)

// format is a kind of configuration file.
type format interface {
	// merge returns the file (nil: none yet) with the entry set.
	merge(old []byte, en Entry) ([]byte, error)
	// has tells whether the file has the entry already.
	has(old []byte, en Entry) (presence, error)
}

// stdio is the entry of clients that run a stdio server: the proxy, with
// the entry's environment.
func stdio(en Entry, extra ...kv) obj {
	args := make([]any, 0, 4)
	for _, a := range en.proxyArgs() {
		args = append(args, a)
	}
	o := obj{}
	o = append(o, extra...)
	o = append(o, kv{"command", en.Command}, kv{"args", args})
	if len(en.Env) > 0 {
		env := obj{}
		for _, k := range en.envKeys() {
			env = append(env, kv{k, en.Env[k]})
		}
		o = append(o, kv{"env", env})
	}
	return o
}

var clients = []*Client{
	{ID: "claude-desktop", Title: "Claude Desktop", Commands: []string{"claude-desktop"},
		path:   func(e Env) string { return filepath.Join(e.appConfig("Claude"), "claude_desktop_config.json") },
		format: jsonFormat{container: "mcpServers", entry: func(en Entry) obj { return stdio(en) }},
		Note:   "restart Claude Desktop",
		unofficial: func(e Env) string {
			if e.GOOS == "linux" {
				return "Claude Desktop has no official Linux build: this is the path the community builds use"
			}
			return ""
		}},
	{ID: "claude-code", Title: "Claude Code", Commands: []string{"claude"},
		path: func(e Env) string {
			if e.ClaudeConfigDir != "" {
				return filepath.Join(e.ClaudeConfigDir, ".claude.json")
			}
			return filepath.Join(e.Home, ".claude.json")
		},
		add: claudeAdd, addName: "claude mcp add-json",
		format: jsonFormat{container: "mcpServers", entry: func(en Entry) obj {
			return obj{{"type", "http"}, {"url", en.Endpoint}, {"headersHelper", en.headersHelper()}}
		}},
		Note: "start a new Claude Code session; '/mcp' shows the server"},
	{ID: "cursor", Title: "Cursor", Commands: []string{"cursor"},
		path:   func(e Env) string { return filepath.Join(e.Home, ".cursor", "mcp.json") },
		format: jsonFormat{container: "mcpServers", entry: func(en Entry) obj { return stdio(en) }},
		Note:   "Cursor picks it up in Settings, MCP"},
	{ID: "vscode", Title: "VS Code", Commands: []string{"code"},
		path:   func(e Env) string { return filepath.Join(e.appConfig("Code"), "User", "mcp.json") },
		format: jsonFormat{container: "servers", entry: func(en Entry) obj { return stdio(en, kv{"type", "stdio"}) }},
		Note:   "start the server from the MCP: List Servers command"},
	{ID: "windsurf", Title: "Windsurf", Commands: []string{"windsurf"},
		path:   func(e Env) string { return filepath.Join(e.Home, ".codeium", "windsurf", "mcp_config.json") },
		format: jsonFormat{container: "mcpServers", entry: func(en Entry) obj { return stdio(en) }},
		Note:   "refresh the MCP servers in Windsurf's Cascade panel"},
	{ID: "gemini", Title: "Gemini CLI", Commands: []string{"gemini"},
		path:   func(e Env) string { return filepath.Join(e.Home, ".gemini", "settings.json") },
		format: jsonFormat{container: "mcpServers", entry: func(en Entry) obj { return stdio(en) }},
		Note:   "start gemini again; '/mcp' shows the server"},
	{ID: "zed", Title: "Zed", Commands: []string{"zed", "zeditor"},
		path: func(e Env) string {
			switch e.GOOS {
			case "windows":
				return filepath.Join(e.AppData, "Zed", "settings.json")
			case "darwin":
				// Zed on macOS reads ~/.config/zed, whatever XDG_CONFIG_HOME says.
				return filepath.Join(e.Home, ".config", "zed", "settings.json")
			}
			return filepath.Join(e.xdgConfig(), "zed", "settings.json")
		},
		format: jsonFormat{container: "context_servers", entry: func(en Entry) obj { return stdio(en) }},
		Note:   "Zed reloads its settings by itself"},
	{ID: "codex", Title: "Codex CLI", Commands: []string{"codex"},
		path: func(e Env) string {
			if e.CodexHome != "" {
				return filepath.Join(e.CodexHome, "config.toml")
			}
			return filepath.Join(e.Home, ".codex", "config.toml")
		},
		format: tomlFormat{table: "mcp_servers", keys: codexKeys},
		Note:   "start codex again"},
}

// sortedIDs is for messages.
func sortedIDs() string {
	ids := IDs()
	slices.Sort(ids)
	return strings.Join(ids, ", ")
}

// UnknownClientError reports a client ncmcp cannot set up.
type UnknownClientError struct{ ID string }

func (e *UnknownClientError) Error() string {
	return fmt.Sprintf("unknown client %q (ncmcp sets up %s)", e.ID, sortedIDs())
}

// trimBOM drops a UTF-8 byte order mark.
func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }
