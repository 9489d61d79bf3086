package setup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/tailscale/hujson"
)

// kv is one member of an object whose order matters.
type kv struct {
	k string
	v any
}

// obj is a JSON object that keeps its members' order.
type obj []kv

// MarshalJSON writes the members in order.
func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshal(m.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal encodes without escaping <, > and & (paths and URLs stay
// readable).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// jsonFormat is a JSON configuration file whose entries are members of
// the object container at its top level. Files with comments and trailing
// commas (JSONC, as VS Code's and Zed's) are edited with
// github.com/tailscale/hujson, which patches the syntax tree: comments,
// layout and every other member stay as they were.
type jsonFormat struct {
	container string
	entry     func(Entry) obj
}

// members reads an object, keeping the order of its members.
func members(b []byte) (obj, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, ErrNotAnObject
	}
	var out obj
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = out.set(k, raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("text after the top-level object")
	}
	return out, nil
}

// set replaces the member k, or appends it.
func (o obj) set(k string, v any) obj {
	for i := range o {
		if o[i].k == k {
			o[i].v = v
			return o
		}
	}
	return append(o, kv{k, v})
}

func (o obj) get(k string) (any, bool) {
	for _, m := range o {
		if m.k == k {
			return m.v, true
		}
	}
	return nil, false
}

// parse reads a configuration file: its top-level members and those of
// the container (nil when absent).
func (f jsonFormat) parse(old []byte) (top, entries obj, err error) {
	old = trimBOM(old)
	if len(bytes.TrimSpace(old)) == 0 {
		return nil, nil, nil
	}
	// Standardize works in place: on a copy.
	clean, err := hujson.Standardize(bytes.Clone(old))
	if err != nil {
		return nil, nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if top, err = members(clean); err != nil {
		if err == ErrNotAnObject {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if raw, ok := top.get(f.container); ok {
		if entries, err = members(raw.(json.RawMessage)); err != nil {
			return nil, nil, fmt.Errorf("%q is not an object: %w", f.container, err)
		}
	}
	return top, entries, nil
}

func (f jsonFormat) merge(old []byte, en Entry) ([]byte, error) {
	top, entries, err := f.parse(old)
	if err != nil {
		return nil, err
	}
	entry := f.entry(en)
	if top == nil {
		// A new file: the entry alone, indented.
		return indented(obj{{f.container, obj{{en.Name, entry}}}})
	}
	// Patch the file's syntax tree (RFC 6902): add the container or the
	// entry where missing, else set only the members ncmcp writes, so that
	// the entry's own members (env, disabled, ...) and every comment stay.
	base := "/" + pointerToken(f.container)
	var ops []patchOp
	switch _, has := top.get(f.container); {
	case !has:
		ops = append(ops, patchOp{Op: "add", Path: base, Value: obj{{en.Name, entry}}})
	default:
		cur, ok := entries.get(en.Name)
		if _, isObj := cur.(json.RawMessage); ok && isObj {
			if _, err := members(cur.(json.RawMessage)); err != nil {
				ok = false // not an object: replaced whole
			}
		}
		if !ok {
			ops = append(ops, patchOp{Op: "add", Path: base + "/" + pointerToken(en.Name), Value: entry})
			break
		}
		have, _ := members(cur.(json.RawMessage))
		at := base + "/" + pointerToken(en.Name) + "/"
		for _, m := range entry {
			// An object ncmcp writes (env) is merged with the entry's
			// own: its other members stay.
			if sub, isObj := m.v.(obj); isObj {
				if raw, ok := have.get(m.k); ok {
					if _, err := members(raw.(json.RawMessage)); err == nil {
						for _, sm := range sub {
							ops = append(ops, patchOp{Op: "add", Path: at + pointerToken(m.k) + "/" + pointerToken(sm.k), Value: sm.v})
						}
						continue
					}
				}
			}
			ops = append(ops, patchOp{Op: "add", Path: at + pointerToken(m.k), Value: m.v})
		}
	}
	patch, err := marshal(ops)
	if err != nil {
		return nil, err
	}
	v, err := hujson.Parse(trimBOM(old))
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	unit, pretty := indentUnit(&v)
	existed := make([]bool, len(ops))
	for i, op := range ops {
		existed[i] = v.Find(op.Path) != nil
	}
	if err := v.Patch(patch); err != nil {
		return nil, fmt.Errorf("set the entry: %w", err)
	}
	if pretty {
		for i, op := range ops {
			if err := layout(&v, op, existed[i], unit); err != nil {
				return nil, err
			}
		}
	}
	out := v.Pack()
	// Never write what does not read back with the entry in it.
	if had, err := f.has(out, en); err != nil || had != entryEqual {
		return nil, fmt.Errorf("the merged file does not read back with the entry (%v): nothing written", err)
	}
	return out, nil
}

// patchOp is one operation of a JSON Patch (RFC 6902).
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// pointerToken escapes a member name for a JSON Pointer (RFC 6901).
func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// indented renders v as indented JSON with a final newline.
func indented(v any) ([]byte, error) {
	raw, err := marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func (f jsonFormat) has(old []byte, en Entry) (presence, error) {
	_, entries, err := f.parse(old)
	if err != nil {
		return entryAbsent, err
	}
	cur, ok := entries.get(en.Name)
	if !ok {
		return entryAbsent, nil
	}
	have, err := members(cur.(json.RawMessage))
	if err != nil {
		return entryDiffers, nil
	}
	// Equal when every member ncmcp writes is there with its value (of an
	// object, its members).
	if !contains(have, f.entry(en)) {
		return entryDiffers, nil
	}
	return entryEqual, nil
}

// contains reports whether the object have has every member of want with
// its value; of an object value, every member of it.
func contains(have obj, want obj) bool {
	for _, m := range want {
		v, ok := have.get(m.k)
		if !ok {
			return false
		}
		raw, _ := v.(json.RawMessage)
		if sub, isObj := m.v.(obj); isObj {
			inner, err := members(raw)
			if err != nil || !contains(inner, sub) {
				return false
			}
			continue
		}
		want, err := marshal(m.v)
		if err != nil {
			return false
		}
		var a, b any
		if json.Unmarshal(raw, &a) != nil || json.Unmarshal(want, &b) != nil || !reflect.DeepEqual(a, b) {
			return false
		}
	}
	return true
}

// indentUnit returns the file's indentation step (as its top-level
// members are indented), and whether the file is laid out on lines at all
// (an empty object counts as such; a minified file does not).
func indentUnit(v *hujson.Value) (string, bool) {
	o, ok := v.Value.(*hujson.Object)
	if !ok || len(o.Members) == 0 {
		return "  ", true
	}
	before := string(o.Members[0].Name.BeforeExtra)
	i := strings.LastIndexByte(before, '\n')
	if i < 0 {
		return "", false
	}
	unit := before[i+1:]
	if unit == "" || strings.Trim(unit, " \t") != "" {
		unit = "  "
	}
	return unit, true
}

// layout gives a member that a patch operation set the file's layout: a
// new member goes on a line of its own, indented as deep as it is, and
// the value ncmcp wrote is indented to match; what surrounds it stays.
func layout(root *hujson.Value, op patchOp, existed bool, unit string) error {
	depth := strings.Count(op.Path, "/")
	parentPath, name := op.Path[:strings.LastIndexByte(op.Path, '/')], op.Path[strings.LastIndexByte(op.Path, '/')+1:]
	parent := root.Find(parentPath)
	if parent == nil {
		return nil
	}
	o, ok := parent.Value.(*hujson.Object)
	if !ok {
		return nil
	}
	name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
	for i := range o.Members {
		m := &o.Members[i]
		lit, ok := m.Name.Value.(hujson.Literal)
		if !ok || lit.String() != name {
			continue
		}
		compact, err := marshal(op.Value)
		if err != nil {
			return err
		}
		raw, err := json.MarshalIndent(json.RawMessage(compact), strings.Repeat(unit, depth), unit)
		if err != nil {
			return err
		}
		val, err := hujson.Parse(raw)
		if err != nil {
			return err
		}
		val.BeforeExtra, val.AfterExtra = m.Value.BeforeExtra, m.Value.AfterExtra
		if !existed {
			// Comments that came to stand before it (a trailing comment of
			// the member before) stay.
			before := strings.TrimRight(string(m.Name.BeforeExtra), " \t\r\n")
			m.Name.BeforeExtra = hujson.Extra(before + "\n" + strings.Repeat(unit, depth))
			val.BeforeExtra = hujson.Extra(" ")
			if i == len(o.Members)-1 && !strings.Contains(string(val.AfterExtra), "\n") && o.AfterExtra == nil {
				// The closing brace of the object on a line of its own.
				val.AfterExtra = hujson.Extra("\n" + strings.Repeat(unit, depth-1))
			}
		}
		m.Value = val
	}
	return nil
}
