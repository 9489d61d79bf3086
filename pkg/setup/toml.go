package setup

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// tomlFormat is a TOML configuration file whose entries are tables
// [table.NAME] (Codex CLI's [mcp_servers.NAME]). The file is edited as
// text, and only in the entry's table: ncmcp's keys are set there, every
// other key, sub-table and comment stays, and the rest of the file is left
// as it is. The file must parse before (github.com/pelletier/go-toml/v2)
// and the result must parse with the entry set and everything else as it
// was, or nothing is written. An entry defined as an inline table or with
// dotted keys is refused.
type tomlFormat struct {
	table string
	// keys are the keys ncmcp sets in the entry, in order.
	keys func(Entry) []tomlKV
}

// tomlKV is a key of the entry and its value written as TOML.
type tomlKV struct {
	// path is the key, dotted ("env", "NAME") below the entry's table.
	path  []string
	value string
	// want is the value as go-toml reads it back, to check the result.
	want any
	// ifAbsent keeps a value the entry has already.
	ifAbsent bool
}

// key is the dotted key as written.
func (kv tomlKV) key() string {
	parts := make([]string, len(kv.path))
	for i, p := range kv.path {
		parts[i] = tomlKey(p)
	}
	return strings.Join(parts, ".")
}

// name is the key as scanTOML reads it.
func (kv tomlKV) name() string { return strings.Join(kv.path, "\x00") }

// lookup returns the value at the key's path in a table.
func (kv tomlKV) lookup(t map[string]any) (any, bool) {
	var v any = t
	for _, p := range kv.path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// remove deletes the value at the key's path, and tables it leaves empty.
func (kv tomlKV) remove(t map[string]any) {
	var walk func(m map[string]any, path []string)
	walk = func(m map[string]any, path []string) {
		if len(path) == 1 {
			delete(m, path[0])
			return
		}
		if sub, ok := m[path[0]].(map[string]any); ok {
			walk(sub, path[1:])
			if len(sub) == 0 {
				delete(m, path[0])
			}
		}
	}
	walk(t, kv.path)
}

// codexStartupTimeout is the startup_timeout_sec ncmcp gives Codex's entry
// when it has none: Codex waits 10 s by default, and a first connection may
// wait for a login.
const codexStartupTimeout = 60

// codexKeys are the keys of Codex's stdio entry: the proxy, its
// environment (Codex passes the proxy only a short allowlist of the
// shell's), and a startup timeout unless the entry has one.
func codexKeys(en Entry) []tomlKV {
	args := make([]string, 0, 4)
	want := make([]any, 0, 4)
	for _, a := range en.proxyArgs() {
		args = append(args, tomlString(a))
		want = append(want, a)
	}
	kvs := []tomlKV{
		{path: []string{"command"}, value: tomlString(en.Command), want: en.Command},
		{path: []string{"args"}, value: "[" + strings.Join(args, ", ") + "]", want: want},
		{path: []string{"startup_timeout_sec"}, value: fmt.Sprint(codexStartupTimeout), want: int64(codexStartupTimeout), ifAbsent: true},
	}
	for _, k := range en.envKeys() {
		kvs = append(kvs, tomlKV{path: []string{"env", k}, value: tomlString(en.Env[k]), want: en.Env[k]})
	}
	return kvs
}

// tomlString writes s as a TOML basic string: control characters as TOML
// escapes (Go's \x and \a escapes are not TOML).
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlKey writes a bare key when it can, else a quoted one.
func tomlKey(k string) string {
	if k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0 {
		return k
	}
	return tomlString(k)
}

// section renders a new entry table.
func (f tomlFormat) section(en Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s.%s]\n", f.table, tomlKey(en.Name))
	for _, kv := range f.keys(en) {
		fmt.Fprintf(&b, "%s = %s\n", kv.key(), kv.value)
	}
	return b.String()
}

// tomlLine is one line of a TOML file, as far as the edit needs to know.
type tomlLine struct {
	text string
	// header is the dotted name of a table header line ("\x00"-joined),
	// set only for header lines.
	header string
	// key is the first key of a key/value line that starts here, in its
	// dotted parts ("\x00"-joined); end is the index of the line its value
	// ends on.
	key string
	end int
}

// scanTOML reads a file's lines: which are table headers, and where each
// key/value starts and ends. Strings (multi-line ones too), comments,
// arrays and inline tables spanning lines are taken into account, so that
// a "[x]" inside them is no header.
func scanTOML(text string) []tomlLine {
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	out := make([]tomlLine, len(lines))
	var (
		ml    string // the open multi-line string's quotes
		depth int    // open arrays and inline tables of a value
		start = -1   // the line the value being read started on
	)
	for i, l := range lines {
		out[i].text = l
		trim := strings.TrimSpace(l)
		if ml == "" && depth == 0 {
			start = -1
			switch {
			case strings.HasPrefix(trim, "["):
				out[i].header = headerName(trim)
				continue
			case trim == "" || strings.HasPrefix(trim, "#"):
				continue
			default:
				out[i].key = keyName(trim)
				start = i
			}
		}
		ml, depth = scanValue(l, ml, depth)
		if start >= 0 && ml == "" && depth == 0 {
			out[start].end = i
		}
	}
	return out
}

// scanValue follows strings and brackets through one line, from the state
// the previous line left (an open multi-line string, open brackets).
func scanValue(l, ml string, depth int) (string, int) {
	for i := 0; i < len(l); i++ {
		if ml != "" {
			if ml == `"""` && l[i] == '\\' {
				i++
				continue
			}
			if strings.HasPrefix(l[i:], ml) {
				i += 2
				for i+1 < len(l) && l[i+1] == ml[0] { // up to two quotes more belong to the string
					i++
				}
				ml = ""
			}
			continue
		}
		switch c := l[i]; {
		case c == '#':
			return ml, depth
		case strings.HasPrefix(l[i:], `"""`) || strings.HasPrefix(l[i:], `'''`):
			ml = l[i : i+3]
			i += 2
		case c == '"':
			for i++; i < len(l) && l[i] != '"'; i++ {
				if l[i] == '\\' {
					i++
				}
			}
		case c == '\'':
			for i++; i < len(l) && l[i] != '\''; i++ {
			}
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return ml, depth
}

// headerName reads the name of a header line, "[a.b]" or "[[a.b]]".
func headerName(trim string) string {
	name, _, _ := cutUnquoted(strings.TrimLeft(trim, "["), ']')
	return dottedName(name)
}

// keyName reads the key of a key/value line.
func keyName(trim string) string {
	key, _, _ := cutUnquoted(trim, '=')
	return dottedName(key)
}

// cutUnquoted cuts s at the first sep outside quotes.
func cutUnquoted(s string, sep byte) (string, string, bool) {
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// dottedName splits a dotted key at the dots outside quotes, unquotes the
// parts, and joins them with "\x00".
func dottedName(s string) string {
	var parts []string
	for {
		part, rest, more := cutUnquoted(s, '.')
		part = strings.TrimSpace(part)
		if len(part) >= 2 && (part[0] == '"' || part[0] == '\'') && part[len(part)-1] == part[0] {
			var v struct{ K string }
			if err := toml.Unmarshal([]byte("K = "+part), &v); err == nil {
				part = v.K
			} else {
				part = part[1 : len(part)-1]
			}
		}
		parts = append(parts, part)
		if !more {
			return strings.Join(parts, "\x00")
		}
		s = rest
	}
}

// ErrEntryNotATable reports an entry defined as an inline table or with
// dotted keys, which ncmcp does not rewrite.
var ErrEntryNotATable = errors.New("the entry is defined as an inline table or with dotted keys, which ncmcp does not rewrite: make it a table of its own, or add ncmcp's entry yourself (--print shows it)")

// entryOf returns the entry's table in a parsed file.
func (f tomlFormat) entryOf(doc map[string]any, name string) (map[string]any, bool) {
	t, _ := doc[f.table].(map[string]any)
	e, ok := t[name]
	if !ok {
		return nil, false
	}
	m, _ := e.(map[string]any)
	return m, true
}

func parseTOML(b []byte) (map[string]any, error) {
	doc := map[string]any{}
	if err := toml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not valid TOML: %w", err)
	}
	return doc, nil
}

func (f tomlFormat) merge(old []byte, en Entry) ([]byte, error) {
	old = trimBOM(old)
	doc, err := parseTOML(old)
	if err != nil {
		return nil, err
	}
	text := string(old)
	lines := scanTOML(text)
	key := f.table + "\x00" + en.Name
	head := -1
	for i, l := range lines {
		if l.header == key {
			head = i
			break
		}
	}
	_, defined := f.entryOf(doc, en.Name)
	var out string
	switch {
	case head < 0 && defined:
		return nil, ErrEntryNotATable
	case head < 0:
		var b strings.Builder
		b.WriteString(text)
		if text != "" {
			if !strings.HasSuffix(text, "\n") {
				b.WriteByte('\n')
			}
			b.WriteByte('\n')
		}
		b.WriteString(f.section(en))
		out = b.String()
	default:
		// Keys the entry has in a sub-table ([NAME.env]) count as there.
		has := map[string]bool{}
		if cur, ok := f.entryOf(doc, en.Name); ok {
			for _, kv := range f.keys(en) {
				_, has[kv.name()] = kv.lookup(cur)
			}
		}
		out = f.setKeys(lines, head, en, has)
	}
	if err := f.check(doc, []byte(out), en); err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// setKeys sets ncmcp's keys in the entry's table, whose header is line
// head. Keys below a sub-table that has a header of its own ([NAME.env])
// are set there; the others in the entry's table, dotted where they are
// below it (env.KEY). A key that is there is replaced where it stands
// (its value may span lines), a missing one goes after the table's last
// key. has says which keys the entry has already, wherever.
func (f tomlFormat) setKeys(lines []tomlLine, head int, en Entry, has map[string]bool) string {
	text := make([]string, len(lines))
	for i, l := range lines {
		text[i] = l.text
	}
	// The sub-tables of the entry with headers, by their first key.
	prefix := lines[head].header + "\x00"
	sub := map[string]int{}
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l.header, prefix); ok && !strings.Contains(rest, "\x00") {
			sub[rest] = i
		}
	}
	byTable := map[int][]tomlKV{}
	for _, kv := range f.keys(en) {
		if h, ok := sub[kv.path[0]]; ok && len(kv.path) > 1 {
			rel := kv
			rel.path = kv.path[1:]
			byTable[h] = append(byTable[h], rel)
			continue
		}
		byTable[head] = append(byTable[head], kv)
	}
	for h, kvs := range byTable {
		// Only the entry's own keys are kept when there (ifAbsent).
		setInTable(lines, text, h, kvs, func(kv tomlKV) bool { return h == head && has[kv.name()] })
	}
	return strings.Join(text, "")
}

// setInTable sets kvs in the table whose header is line head, changing
// text (the file's lines).
func setInTable(lines []tomlLine, text []string, head int, kvs []tomlKV, had func(tomlKV) bool) {
	end := len(lines) // the table's own lines end at the next header
	for i := head + 1; i < len(lines); i++ {
		if lines[i].header != "" {
			end = i
			break
		}
	}
	replaced := map[string]bool{}
	lastKey := head
	for i := head + 1; i < end; i++ {
		if lines[i].key == "" {
			continue
		}
		lastKey = max(lastKey, lines[i].end)
		for _, kv := range kvs {
			if lines[i].key != kv.name() {
				continue
			}
			replaced[kv.name()] = true
			if kv.ifAbsent {
				continue
			}
			text[i] = kv.key() + " = " + kv.value + "\n"
			for j := i + 1; j <= lines[i].end; j++ {
				text[j] = ""
			}
		}
	}
	var add strings.Builder
	for _, kv := range kvs {
		if !replaced[kv.name()] && !(kv.ifAbsent && had(kv)) {
			fmt.Fprintf(&add, "%s = %s\n", kv.key(), kv.value)
		}
	}
	if add.Len() > 0 {
		if !strings.HasSuffix(text[lastKey], "\n") {
			text[lastKey] += "\n"
		}
		text[lastKey] += add.String()
	}
}

// check holds an edited file to what the edit must do: it parses, the
// entry has ncmcp's keys with their values, and everything else reads as
// it did before.
func (f tomlFormat) check(before map[string]any, after []byte, en Entry) error {
	doc, err := parseTOML(after)
	if err != nil {
		return fmt.Errorf("the edited file would not be valid TOML (%v): nothing written", err)
	}
	got, ok := f.entryOf(doc, en.Name)
	if !ok {
		return errors.New("the edited file would lack the entry: nothing written")
	}
	for _, kv := range f.keys(en) {
		if v, _ := kv.lookup(got); !kv.ifAbsent && !reflect.DeepEqual(v, kv.want) {
			return fmt.Errorf("the edited file would read %s = %v: nothing written", kv.key(), v)
		}
	}
	strip := func(doc map[string]any) {
		if e, ok := f.entryOf(doc, en.Name); ok && e != nil {
			for _, kv := range f.keys(en) {
				kv.remove(e)
			}
			if len(e) == 0 {
				delete(doc[f.table].(map[string]any), en.Name)
			}
		}
		if t, ok := doc[f.table].(map[string]any); ok && len(t) == 0 {
			delete(doc, f.table)
		}
	}
	strip(before)
	strip(doc)
	if !reflect.DeepEqual(before, doc) {
		return errors.New("the edit would change more of the file than the entry: nothing written")
	}
	return nil
}

func (f tomlFormat) has(old []byte, en Entry) (presence, error) {
	doc, err := parseTOML(trimBOM(old))
	if err != nil {
		return entryAbsent, err
	}
	got, ok := f.entryOf(doc, en.Name)
	if !ok {
		return entryAbsent, nil
	}
	for _, kv := range f.keys(en) {
		v, ok := kv.lookup(got)
		if !ok || (!kv.ifAbsent && !reflect.DeepEqual(v, kv.want)) {
			return entryDiffers, nil
		}
	}
	return entryEqual, nil
}
