package setup

import (
	"encoding/json"
	"errors"
	"flag"
	"github.com/tailscale/hujson"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var entry = Entry{Name: "nextcloud", Command: "/usr/local/bin/ncmcp", Server: "https://mcp.example.com", Endpoint: "https://mcp.example.com/mcp"}

// osEntries are what 'ncmcp setup' writes on each OS: the command where
// ncmcp is installed there, a config directory and storage that are not
// the defaults (so the entry's environment shows), an account.
var osEntries = map[string]struct {
	env Env
	en  Entry
}{
	"linux": {Env{GOOS: "linux", Home: "/home/alice"},
		Entry{Command: "/usr/local/bin/ncmcp", Env: map[string]string{"NCMCP_CONFIG_DIR": "/home/alice/dotfiles/ncmcp", "NCMCP_STORAGE": "file"}}},
	"darwin": {Env{GOOS: "darwin", Home: "/Users/alice"},
		Entry{Command: "/opt/homebrew/bin/ncmcp", Env: map[string]string{"NCMCP_CACERT": "/Users/alice/corp-ca.pem"}}},
	"windows": {Env{GOOS: "windows", Home: `C:\Users\alice`, AppData: `C:\Users\alice\AppData\Roaming`},
		Entry{Command: `C:\Program Files\ncmcp\ncmcp.exe`, Env: map[string]string{"NCMCP_CONFIG_DIR": `D:\ncmcp config`}}},
}

// TestSnippets holds each client's entry on each OS to a golden file:
// where 'ncmcp setup CLIENT --print' says it goes (and whether that path
// is the client's own), and what a fresh configuration file holds: the
// command, quoted for the shell that runs it, the entry's environment.
func TestSnippets(t *testing.T) {
	for _, c := range Clients() {
		for goos, tc := range osEntries {
			t.Run(c.ID+"-"+goos, func(t *testing.T) {
				en := tc.en
				en.Name, en.Server, en.Endpoint, en.Account, en.GOOS = entry.Name, entry.Server, entry.Endpoint, "alice", goos
				snippet, err := c.Snippet(en)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.ToSlash(c.Path(tc.env))
				if goos == "windows" {
					path = strings.ReplaceAll(path, "/", `\`)
				}
				got := "path: " + path + "\n"
				if u := c.Unofficial(tc.env); u != "" {
					got += "note: " + u + "\n"
				}
				got += string(snippet)
				golden := filepath.Join("testdata", c.ID+"-"+goos+".golden")
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (go test ./pkg/setup -update writes it)", err)
				}
				if got != string(want) {
					t.Errorf("differs from %s:\n%s", golden, got)
				}
			})
		}
	}
}

func TestPaths(t *testing.T) {
	linux := Env{GOOS: "linux", Home: "/home/u"}
	mac := Env{GOOS: "darwin", Home: "/Users/u"}
	win := Env{GOOS: "windows", Home: `C:\Users\u`, AppData: `C:\Users\u\AppData\Roaming`}
	tests := []struct {
		id  string
		env Env
		// want uses / and is compared after filepath.ToSlash.
		want string
	}{
		{"claude-desktop", linux, "/home/u/.config/Claude/claude_desktop_config.json"},
		{"claude-desktop", mac, "/Users/u/Library/Application Support/Claude/claude_desktop_config.json"},
		{"claude-desktop", win, `C:\Users\u\AppData\Roaming/Claude/claude_desktop_config.json`},
		{"claude-code", linux, "/home/u/.claude.json"},
		{"cursor", mac, "/Users/u/.cursor/mcp.json"},
		{"vscode", linux, "/home/u/.config/Code/User/mcp.json"},
		{"vscode", mac, "/Users/u/Library/Application Support/Code/User/mcp.json"},
		{"windsurf", linux, "/home/u/.codeium/windsurf/mcp_config.json"},
		{"gemini", linux, "/home/u/.gemini/settings.json"},
		{"zed", linux, "/home/u/.config/zed/settings.json"},
		{"zed", Env{GOOS: "linux", Home: "/home/u", XDGConfigHome: "/xdg"}, "/xdg/zed/settings.json"},
		{"codex", linux, "/home/u/.codex/config.toml"},
		{"codex", Env{GOOS: "linux", Home: "/home/u", CodexHome: "/opt/codex"}, "/opt/codex/config.toml"},
	}
	for _, tt := range tests {
		c, ok := Lookup(tt.id)
		if !ok {
			t.Fatalf("no client %s", tt.id)
		}
		if got := filepath.ToSlash(c.Path(tt.env)); got != filepath.ToSlash(tt.want) {
			t.Errorf("%s on %s: %s, want %s", tt.id, tt.env.GOOS, got, tt.want)
		}
	}
}

func write(t *testing.T, path, content string) { writeFile(t, path, content, 0o640) }

// TestMergeJSON: other entries, unknown fields, the order of the file,
// its comments and trailing commas are kept; the file as it was is backed
// up; a second run changes nothing.
func TestMergeJSON(t *testing.T) {
	c, _ := Lookup("claude-desktop")
	path := filepath.Join(t.TempDir(), "claude_desktop_config.json")
	original := `{
  // the user's own
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"], "env": {"A": "1"}},
    "nextcloud": {"command": "old", "args": [], "env": {"KEEP": "me"}},
  },
  "zz_unknown": {"nested": [1, 2, 3]}
}
`
	write(t, path, original)
	res, err := c.Apply(path, entry, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.Replaced || res.Backup == "" {
		t.Errorf("result %+v", res)
	}
	if read(t, res.Backup) != original {
		t.Error("the backup is not the file as it was")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640", fi.Mode().Perm())
	}
	got := read(t, path)
	if !strings.Contains(got, "// the user's own\n") || !strings.Contains(got, `"env": {"KEEP": "me"}},`) {
		t.Errorf("the comment or the trailing comma was not kept:\n%s", got)
	}
	std, err := hujson.Standardize([]byte(got))
	if err != nil {
		t.Fatalf("the merged file is not JSONC: %v\n%s", err, got)
	}
	var doc struct {
		Shortcut   string `json:"globalShortcut"`
		MCPServers map[string]struct {
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		} `json:"mcpServers"`
		Unknown map[string][]int `json:"zz_unknown"`
	}
	if err := json.Unmarshal(std, &doc); err != nil {
		t.Fatalf("the merged file is not JSON: %v\n%s", err, got)
	}
	files, nc := doc.MCPServers["files"], doc.MCPServers["nextcloud"]
	if doc.Shortcut != "Ctrl+Space" || len(doc.Unknown["nested"]) != 3 || files.Command != "npx" || files.Env["A"] != "1" {
		t.Errorf("what was there was not kept:\n%s", got)
	}
	if nc.Command != entry.Command || strings.Join(nc.Args, " ") != "proxy --server https://mcp.example.com" || nc.Env["KEEP"] != "me" {
		t.Errorf("the entry %+v: want ncmcp's command and the entry's own env kept", nc)
	}
	if strings.Index(got, "globalShortcut") > strings.Index(got, "mcpServers") || strings.Index(got, "mcpServers") > strings.Index(got, "zz_unknown") ||
		strings.Index(got, `"files"`) > strings.Index(got, `"nextcloud"`) {
		t.Errorf("the order of the file changed:\n%s", got)
	}

	again, err := c.Apply(path, entry, Options{})
	if err != nil || again.Changed {
		t.Errorf("second run: %+v, %v; want no change", again, err)
	}
	if read(t, path) != got {
		t.Error("the second run rewrote the file")
	}
}

func TestMergeCreatesAndRefuses(t *testing.T) {
	c, _ := Lookup("vscode")
	dir := t.TempDir()
	path := filepath.Join(dir, "Code", "User", "mcp.json")
	res, err := c.Apply(path, entry, Options{})
	if err != nil || !res.Created || !res.Changed || res.Backup != "" {
		t.Fatalf("Apply to a new file = %+v, %v", res, err)
	}
	snippet, _ := c.Snippet(entry)
	if read(t, path) != string(snippet) {
		t.Errorf("a new file differs from the snippet")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("a new file has mode %v, want 0600", fi.Mode().Perm())
	}

	for _, bad := range []string{`[1, 2]`, `{"servers": [1]}`, `{"servers": {`} {
		write(t, path, bad)
		if _, err := c.Apply(path, entry, Options{}); err == nil {
			t.Errorf("Apply to %q: no error", bad)
		}
		if read(t, path) != bad {
			t.Errorf("the file %q was changed after an error", bad)
		}
	}
	write(t, path, `[1]`)
	if _, err := c.Apply(path, entry, Options{}); !errors.Is(err, ErrNotAnObject) {
		t.Errorf("a top-level array: %v, want ErrNotAnObject", err)
	}
}

// TestMergeTOML: Codex's config.toml is edited as text: ncmcp's keys in
// the entry's table are set, and every other line (the entry's env
// sub-table, its other keys, comments) stays.
func TestMergeTOML(t *testing.T) {
	c, _ := Lookup("codex")
	path := filepath.Join(t.TempDir(), "config.toml")
	original := `# my codex settings
model = "o3"

[mcp_servers.files]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem"]

[mcp_servers.nextcloud]
command = "old" # was here
startup_timeout_sec = 30
args = [
  "a",
  "b",
]
cwd = "/tmp"

[mcp_servers.nextcloud.env]
X = "1"

# profiles below
[profiles.fast]
model = "o4-mini"
`
	write(t, path, original)
	res, err := c.Apply(path, entry, Options{})
	if err != nil || !res.Changed || !res.Replaced {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	want := `# my codex settings
model = "o3"

[mcp_servers.files]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem"]

[mcp_servers.nextcloud]
command = "/usr/local/bin/ncmcp"
startup_timeout_sec = 30
args = ["proxy", "--server", "https://mcp.example.com"]
cwd = "/tmp"

[mcp_servers.nextcloud.env]
X = "1"

# profiles below
[profiles.fast]
model = "o4-mini"
`
	if got := read(t, path); got != want {
		t.Errorf("merged:\n%s\nwant:\n%s", got, want)
	}
	if again, err := c.Apply(path, entry, Options{}); err != nil || again.Changed {
		t.Errorf("second run: %+v, %v", again, err)
	}

	// Appended to a file without it.
	path2 := filepath.Join(t.TempDir(), "config.toml")
	write(t, path2, "model = \"o3\"")
	if _, err := c.Apply(path2, entry, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path2); got != "model = \"o3\"\n\n[mcp_servers.nextcloud]\ncommand = \"/usr/local/bin/ncmcp\"\nargs = [\"proxy\", \"--server\", \"https://mcp.example.com\"]\nstartup_timeout_sec = 60\n" {
		t.Errorf("appended:\n%s", got)
	}
}

func TestHeadersHelperQuoting(t *testing.T) {
	e := entry
	e.Command = "/Applications/My Tools/ncmcp"
	e.Account = "alice@example.com"
	if got := e.headersHelper(); got != `'/Applications/My Tools/ncmcp' token --headers --account alice@example.com` {
		t.Errorf("headersHelper = %s", got)
	}
}

func TestInstalled(t *testing.T) {
	home := t.TempDir()
	env := Env{GOOS: "linux", Home: home, LookPath: func(name string) (string, error) {
		if name == "codex" {
			return "/usr/bin/codex", nil
		}
		return "", errors.New("not found")
	}}
	if err := os.MkdirAll(filepath.Join(home, ".cursor"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(home, ".claude.json"), "{}")
	found := map[string]Found{}
	for _, f := range Installed(env) {
		found[f.Client.ID] = f
	}
	if !found["cursor"].Config || !found["claude-code"].Config || found["codex"].Command != "/usr/bin/codex" || found["zed"].Config || found["zed"].Command != "" {
		t.Errorf("found %+v", found)
	}
}

// TestJSONCCorpus: JSON with comments and trailing commas, as people keep
// VS Code's and Zed's files: every comment stays, the result parses, and
// the rest reads as before.
func TestJSONCCorpus(t *testing.T) {
	c, _ := Lookup("vscode")
	for name, in := range map[string]string{
		"line comments":       "{\n  // servers I use\n  \"servers\": {\n    // none yet\n  },\n}\n",
		"block comments":      "/* top */ {\"servers\": /* inline */ {\"x\": {\"command\": \"x\"} /* after x */}}",
		"no container":        "{\n  \"inputs\": [], // prompts\n}\n",
		"trailing commas":     "{\"servers\": {\"a\": {\"args\": [1, 2,],},},}",
		"entry with comments": "{\"servers\": {\"nextcloud\": {\n  // keep this\n  \"command\": \"old\", \"env\": {\"A\": \"1\" /* a */},\n}}}",
	} {
		t.Run(name, func(t *testing.T) {
			out, err := c.format.merge([]byte(in), entry)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range regexp.MustCompile(`//[^\n]*|/\*.*?\*/`).FindAllString(in, -1) {
				if !strings.Contains(string(out), m) {
					t.Errorf("comment %q lost:\n%s", m, out)
				}
			}
			if had, err := c.format.has(out, entry); err != nil || had != entryEqual {
				t.Errorf("the result reads %v, %v:\n%s", had, err, out)
			}
		})
	}
}
