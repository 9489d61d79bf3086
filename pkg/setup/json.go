package setup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
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

// jsonFormat is a JSON configuration file (comments and trailing commas
// tolerated, as JSONC) whose entries are members of the object container
// at its top level.
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
	clean, _ := stripJSONC(trimBOM(old))
	if len(bytes.TrimSpace(clean)) == 0 {
		return nil, nil, nil
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
	// An entry of that name keeps the members ncmcp does not write (env,
	// disabled, ...).
	entry := f.entry(en)
	if cur, ok := entries.get(en.Name); ok {
		if kept, err := members(cur.(json.RawMessage)); err == nil {
			for _, m := range entry {
				kept = kept.set(m.k, m.v)
			}
			entry = kept
		}
	}
	entries = entries.set(en.Name, entry)
	top = top.set(f.container, entries)
	raw, err := marshal(top)
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
	// Equal when every member ncmcp writes is there with its value.
	for _, m := range f.entry(en) {
		v, ok := have.get(m.k)
		if !ok {
			return entryDiffers, nil
		}
		want, err := marshal(m.v)
		if err != nil {
			return entryAbsent, err
		}
		var a, b any
		if json.Unmarshal(v.(json.RawMessage), &a) != nil || json.Unmarshal(want, &b) != nil || !reflect.DeepEqual(a, b) {
			return entryDiffers, nil
		}
	}
	return entryEqual, nil
}

func (f jsonFormat) dropsComments(old []byte) bool {
	_, had := stripJSONC(old)
	return had
}

// stripJSONC removes // and /* */ comments and trailing commas outside
// strings, and says whether there were comments.
func stripJSONC(b []byte) ([]byte, bool) {
	out := make([]byte, 0, len(b))
	comments := false
	inString, escaped := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
			out = append(out, c)
		case c == '/' && i+1 < len(b) && b[i+1] == '/':
			comments = true
			for i < len(b) && b[i] != '\n' {
				i++
			}
			if i < len(b) {
				out = append(out, '\n')
			}
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			comments = true
			end := bytes.Index(b[i+2:], []byte("*/"))
			if end < 0 {
				i = len(b)
			} else {
				i += end + 3
			}
			out = append(out, ' ')
		case c == '}' || c == ']':
			// A comma before the closing bracket (and blanks) goes.
			j := len(out) - 1
			for j >= 0 && (out[j] == ' ' || out[j] == '\t' || out[j] == '\n' || out[j] == '\r') {
				j--
			}
			if j >= 0 && out[j] == ',' {
				out = append(out[:j], out[j+1:]...)
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return out, comments
}
