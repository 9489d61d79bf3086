package setup

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"github.com/tailscale/hujson"
)

// FuzzMergeJSON: whatever a client's JSON (or JSONC) file holds, a merge
// either refuses, or gives a file that parses, has ncmcp's entry, and
// reads as before everywhere else.
func FuzzMergeJSON(f *testing.F) {
	for _, s := range []string{"", "{}", `{"mcpServers":{}}`, "{\n // c\n \"mcpServers\": {\"nextcloud\": {\"env\": {\"A\": 1}},},\n}",
		`{"mcpServers": []}`, `{"mcpServers": {"nextcloud": 3}}`, `{"a": /* x */ [1,2,],}`, `{"mcpServers":{"nextcloud":{"command":"x"}},"mcpServers":{}}`} {
		f.Add(s)
	}
	c, _ := Lookup("cursor")
	f.Fuzz(func(t *testing.T, in string) {
		out, err := c.format.merge([]byte(in), entry)
		if err != nil {
			return
		}
		std, err := hujson.Standardize(append([]byte(nil), out...))
		if err != nil {
			t.Fatalf("the result does not parse: %v\n%s", err, out)
		}
		var doc map[string]any
		if err := json.Unmarshal(std, &doc); err != nil {
			t.Fatalf("the result is not an object: %v\n%s", err, out)
		}
		servers, _ := doc["mcpServers"].(map[string]any)
		e, _ := servers[entry.Name].(map[string]any)
		if e["command"] != entry.Command || !reflect.DeepEqual(e["args"], []any{"proxy", "--server", entry.Server}) {
			t.Fatalf("the entry reads %v:\n%s", e, out)
		}
		var old map[string]any
		if stdIn, err := hujson.Standardize([]byte(in)); err == nil && len(stdIn) > 0 {
			_ = json.Unmarshal(stdIn, &old)
		}
		if old == nil {
			old = map[string]any{}
		}
		strip := func(d map[string]any) {
			s, ok := d["mcpServers"].(map[string]any)
			if !ok {
				delete(d, "mcpServers")
				return
			}
			if e, ok := s[entry.Name].(map[string]any); ok {
				delete(e, "command")
				delete(e, "args")
				if len(e) == 0 {
					delete(s, entry.Name)
				}
			} else {
				delete(s, entry.Name)
			}
			if len(s) == 0 {
				delete(d, "mcpServers")
			}
		}
		strip(old)
		strip(doc)
		if !reflect.DeepEqual(old, doc) {
			t.Fatalf("the rest changed:\nbefore %v\nafter  %v\n%s", old, doc, out)
		}
	})
}

// FuzzMergeTOML: whatever Codex's file holds, a merge either refuses, or
// gives a file that parses, has ncmcp's entry, and reads as before
// everywhere else.
func FuzzMergeTOML(f *testing.F) {
	for _, tc := range tomlCorpus {
		f.Add(tc.text)
	}
	c, _ := Lookup("codex")
	withEnv := entry
	withEnv.Env = map[string]string{"NCMCP_CONFIG_DIR": "/home/u/.ncmcp", "NCMCP_CACERT": "/etc/ca.pem"}
	f.Fuzz(func(t *testing.T, in string) {
		for _, en := range []Entry{entry, withEnv} {
			out, err := c.format.merge([]byte(in), en)
			if err != nil {
				continue
			}
			var old map[string]any
			if toml.Unmarshal([]byte(in), &old) != nil {
				t.Fatalf("merged a file that does not parse:\n%q", in)
			}
			checkTOMLMerge(t, in, out, en)
		}
	})
}
