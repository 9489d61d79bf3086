package devserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// object is a JSON object that keeps the order of its keys, as the Python
// servers' answers do (a Go map would sort them).
type object []field

// field is one member of an object.
type field struct {
	key   string
	value any
}

// MarshalJSON implements json.Marshaler.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshalJSON(f.key)
		if err != nil {
			return nil, err
		}
		v, err := marshalJSON(f.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalJSON is json.Marshal without Go's escaping of <, > and &, which
// Python's json module does not do.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// pythonJSON renders v as Python's json.dumps(v, indent=2) does: two-space
// indentation, ", " and ": " separators, non-ASCII characters escaped as
// \uXXXX. FastMCP puts a tool's structured result into its text content
// this way.
func pythonJSON(v any) (string, error) {
	compact, err := marshalJSON(v)
	if err != nil {
		return "", err
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, compact, "", "  "); err != nil {
		return "", err
	}
	return asciiEscape(indented.String()), nil
}

// asciiEscape replaces every non-ASCII character of a JSON text (they can
// only occur inside strings) with its \uXXXX escape, using surrogate pairs
// beyond the Basic Multilingual Plane, as Python's ensure_ascii does.
func asciiEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}
