package setup

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// tomlCorpus are Codex configurations as people write them. Each merge
// must parse with go-toml, have ncmcp's entry, and keep everything else as
// it was, or be refused with nothing written.
var tomlCorpus = map[string]struct {
	text   string
	refuse error // nil: merged
	// refuseEnv: refused when ncmcp sets env keys (an inline env table
	// cannot take more keys), merged otherwise.
	refuseEnv bool
}{
	"empty":    {text: ""},
	"comments": {text: "# top\nmodel = \"o3\" # inline\n\n# tail\n"},
	"entry as a table with sub-tables and other keys": {text: `[mcp_servers.nextcloud]
command = "old"
env_vars = ["A"]
startup_timeout_sec = 20
[mcp_servers.nextcloud.env]
TOKEN_FILE = "/x"
[mcp_servers.other]
command = "o"
`},
	"the entry's env as a sub-table": {text: "[mcp_servers.nextcloud]\ncommand = \"old\"\n\n[mcp_servers.nextcloud.env]\nHTTPS_PROXY = \"http://proxy:3128\"\nNCMCP_STORAGE = \"keyring\"\n"},
	"the entry's env inline":         {text: "[mcp_servers.nextcloud]\nenv = { HTTPS_PROXY = \"http://p\" }\n", refuseEnv: true},
	"entry as an inline table":       {text: "[mcp_servers]\nnextcloud = { command = \"old\", args = [] }\n", refuse: ErrEntryNotATable},
	"entry with dotted keys":         {text: "mcp_servers.nextcloud.command = \"old\"\nmcp_servers.nextcloud.args = []\n", refuse: ErrEntryNotATable},
	"a header inside a multi-line string": {text: `notes = """
[mcp_servers.nextcloud]
command = "inside a string"
"""
model = "o3"
`},
	"a header inside a literal multi-line string": {text: "notes = '''\n[mcp_servers.nextcloud]\n'''\n"},
	"a nested array spanning lines":               {text: "matrix = [\n  [1, 2],\n  [3]\n]\n"},
	"the entry's args spanning lines":             {text: "[mcp_servers.nextcloud]\nargs = [\n  \"a\",\n  \"]\",\n]\nkeep = true # kept\n"},
	"a quoted entry name":                         {text: "[mcp_servers.\"nextcloud\"]\ncommand = \"old\"\n"},
	"mcp_servers as an inline table":              {text: "mcp_servers = { other = { command = \"o\" } }\n", refuse: errAny},
	"array of tables":                             {text: "[[profiles]]\nname = \"a\"\n[[profiles]]\nname = \"b\"\n"},
	"CRLF line ends":                              {text: "model = \"o3\"\r\n[mcp_servers.nextcloud]\r\ncommand = \"old\"\r\n"},
}

// errAny marks a corpus file that must be refused, for whatever reason.
var errAny = errors.New("any error")

func TestTOMLCorpus(t *testing.T) {
	c, _ := Lookup("codex")
	plain := entry
	plain.Command = "C:\\Program Files\\ncmcp\\ncmcp.exe\x1b"
	withEnv := plain
	withEnv.Env = map[string]string{"NCMCP_CONFIG_DIR": "/home/u/dotfiles/ncmcp", "NCMCP_STORAGE": "file"}
	for _, en := range []Entry{plain, withEnv} {
		for name, tc := range tomlCorpus {
			t.Run(fmt.Sprintf("%s, %d env", name, len(en.Env)), func(t *testing.T) {
				out, err := c.format.merge([]byte(tc.text), en)
				if tc.refuseEnv && len(en.Env) > 0 {
					if err == nil {
						t.Fatalf("merged, want a refusal:\n%s", out)
					}
					return
				}
				switch {
				case tc.refuse == errAny && err != nil:
					return
				case tc.refuse != nil:
					if !errors.Is(err, tc.refuse) && tc.refuse != errAny {
						t.Fatalf("merge = %v, want %v", err, tc.refuse)
					}
					if err == nil {
						t.Fatalf("merged, want a refusal:\n%s", out)
					}
					return
				case err != nil:
					t.Fatalf("merge: %v", err)
				}
				checkTOMLMerge(t, tc.text, out, en)
			})
		}
	}
}

// checkTOMLMerge holds a merge to its promise: it parses, has ncmcp's
// entry, and the rest reads as before.
func checkTOMLMerge(t *testing.T, before string, out []byte, en Entry) {
	t.Helper()
	var old, doc map[string]any
	if err := toml.Unmarshal([]byte(before), &old); err != nil {
		t.Fatalf("corpus file does not parse: %v", err)
	}
	if err := toml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("the result does not parse: %v\n%s", err, out)
	}
	servers, _ := doc["mcp_servers"].(map[string]any)
	e, _ := servers[en.Name].(map[string]any)
	if e["command"] != en.Command || !reflect.DeepEqual(e["args"], []any{"proxy", "--server", en.Server}) {
		t.Fatalf("the entry reads %v:\n%s", e, out)
	}
	c, _ := Lookup("codex")
	keys := c.format.(tomlFormat).keys(en)
	oldServers, _ := old["mcp_servers"].(map[string]any)
	if oe, ok := oldServers[en.Name].(map[string]any); ok {
		for _, kv := range keys {
			if v, had := kv.lookup(oe); kv.ifAbsent && had {
				if now, _ := kv.lookup(e); !reflect.DeepEqual(now, v) {
					t.Errorf("%s was %v, now %v: the entry's own value must stay", kv.key(), v, now)
				}
			}
		}
	}
	for _, d := range []map[string]any{old, doc} {
		if s, ok := d["mcp_servers"].(map[string]any); ok {
			if e, ok := s[en.Name].(map[string]any); ok {
				for _, kv := range keys {
					kv.remove(e)
				}
				if len(e) == 0 {
					delete(s, en.Name)
				}
			}
			if len(s) == 0 {
				delete(d, "mcp_servers")
			}
		}
	}
	if old == nil {
		old = map[string]any{}
	}
	if !reflect.DeepEqual(old, doc) {
		t.Errorf("the rest changed:\nbefore %v\nafter  %v\n%s", old, doc, out)
	}
	if !strings.Contains(before, "#") {
		return
	}
	// Comments stay, but those inside a value ncmcp replaces (its own
	// keys in the entry's table).
	lines := scanTOML(before)
	replaced := map[int]bool{}
	table := ""
	for i, l := range lines {
		if l.header != "" {
			table = l.header
			continue
		}
		for _, kv := range keys {
			if table == "mcp_servers\x00"+en.Name && l.key == kv.name() && !kv.ifAbsent {
				for j := i; j <= l.end; j++ {
					replaced[j] = true
				}
			}
		}
	}
	for i, l := range lines {
		if j := strings.Index(l.text, "#"); j >= 0 && !replaced[i] && !strings.Contains(string(out), strings.TrimSpace(l.text[j:])) {
			t.Errorf("comment %q lost:\n%s", l.text[j:], out)
		}
	}
}

func TestTOMLString(t *testing.T) {
	for in, want := range map[string]string{
		`C:\Program Files\ncmcp.exe`: `"C:\\Program Files\\ncmcp.exe"`,
		"a\x1bb\x07\x7f":             `"a\u001Bb\u0007\u007F"`,
		`say "hi"`:                   `"say \"hi\""`,
		"é ü":                        `"é ü"`,
	} {
		if got := tomlString(in); got != want {
			t.Errorf("tomlString(%q) = %s, want %s", in, got, want)
		}
		var v struct{ K string }
		if err := toml.Unmarshal([]byte("K = "+tomlString(in)), &v); err != nil || v.K != in {
			t.Errorf("%q does not read back: %q, %v", in, v.K, err)
		}
	}
}
