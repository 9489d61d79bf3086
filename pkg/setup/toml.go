package setup

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// tomlFormat is a TOML configuration file whose entries are tables
// [table.NAME] (Codex CLI's [mcp_servers.NAME]). The file is edited as
// text: the entry's table (and its sub-tables) is replaced or appended,
// and every other line stays as it is, comments included.
type tomlFormat struct{ table string }

// section renders the entry's table.
func (f tomlFormat) section(en Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s.%s]\n", f.table, tomlKey(en.Name))
	fmt.Fprintf(&b, "command = %s\n", strconv.Quote(en.Command))
	quoted := make([]string, 0, 4)
	for _, a := range en.proxyArgs() {
		quoted = append(quoted, strconv.Quote(a))
	}
	fmt.Fprintf(&b, "args = [%s]\n", strings.Join(quoted, ", "))
	return b.String()
}

// tomlKey writes a bare key when it can, else a quoted one.
func tomlKey(k string) string {
	if k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0 {
		return k
	}
	return strconv.Quote(k)
}

// header reads a table header line ("[a.b]" or "[[a.b]]"); ok is false
// for other lines.
func header(line string) (name string, ok bool) {
	s := strings.TrimSpace(line)
	if i := strings.Index(s, "#"); i >= 0 && !strings.Contains(s[:i], `"`) {
		s = strings.TrimSpace(s[:i])
	}
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return "", false
	}
	s = strings.Trim(s, "[]")
	var parts []string
	for _, p := range splitKey(s) {
		p = strings.TrimSpace(p)
		if uq, err := strconv.Unquote(p); err == nil {
			p = uq
		} else if strings.HasPrefix(p, "'") && strings.HasSuffix(p, "'") && len(p) >= 2 {
			p = p[1 : len(p)-1]
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "\x00"), true
}

// splitKey splits a dotted key at the dots outside quotes.
func splitKey(s string) []string {
	var out []string
	var cur strings.Builder
	quote := rune(0)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '.':
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	return append(out, cur.String())
}

// split cuts the file around the entry's table and its sub-tables: the
// text before, the table itself (empty when absent), and the text after.
func (f tomlFormat) split(old []byte, name string) (before, cur, after string) {
	key := f.table + "\x00" + name
	lines := strings.SplitAfter(string(old), "\n")
	start, end := -1, len(lines)
	for i, l := range lines {
		h, ok := header(l)
		if !ok {
			continue
		}
		inEntry := h == key || strings.HasPrefix(h, key+"\x00")
		if start < 0 && inEntry {
			start = i
			continue
		}
		if start >= 0 && !inEntry {
			end = i
			break
		}
	}
	if start < 0 {
		return string(old), "", ""
	}
	return strings.Join(lines[:start], ""), strings.Join(lines[start:end], ""), strings.Join(lines[end:], "")
}

func (f tomlFormat) merge(old []byte, en Entry) ([]byte, error) {
	old = trimBOM(old)
	before, cur, after := f.split(old, en.Name)
	sec := f.section(en)
	if cur != "" {
		// Blank lines and comments that followed the table stay where
		// they were: they belong to what comes next.
		trail := trailing(cur)
		return []byte(before + sec + trail + after), nil
	}
	var b bytes.Buffer
	b.WriteString(before)
	if len(before) > 0 {
		if !strings.HasSuffix(before, "\n") {
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	b.WriteString(sec)
	return b.Bytes(), nil
}

// trailing returns the blank and comment lines that end a table.
func trailing(table string) string {
	lines := strings.SplitAfter(table, "\n")
	i := len(lines)
	for i > 1 {
		s := strings.TrimSpace(lines[i-1])
		if s != "" && !strings.HasPrefix(s, "#") {
			break
		}
		i--
	}
	return strings.Join(lines[i:], "")
}

func (f tomlFormat) has(old []byte, en Entry) (presence, error) {
	_, cur, _ := f.split(trimBOM(old), en.Name)
	switch {
	case cur == "":
		return entryAbsent, nil
	case strings.TrimRight(strings.TrimSuffix(cur, trailing(cur)), "\n") == strings.TrimRight(f.section(en), "\n"):
		return entryEqual, nil
	}
	return entryDiffers, nil
}

func (f tomlFormat) dropsComments([]byte) bool { return false }
