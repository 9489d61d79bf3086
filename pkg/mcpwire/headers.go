package mcpwire

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// Headers that repeat parts of a request's body (MCP 2026-07-28), so that
// servers and gateways can route without reading it.
const (
	HeaderMethod      = "Mcp-Method"
	HeaderName        = "Mcp-Name"
	HeaderParamPrefix = "Mcp-Param-"
)

// MetaProtocolVersion is the key of a request's _meta that names its
// protocol version in the stateless protocol (2026-07-28).
const MetaProtocolVersion = "io.modelcontextprotocol/protocolVersion"

// NameParam is the parameter of a request of method whose value the
// Mcp-Name header repeats: "name" for tools/call and prompts/get, "uri"
// for resources/read, "" for the other methods.
func NameParam(method string) string {
	switch method {
	case "tools/call", "prompts/get":
		return "name"
	case "resources/read":
		return "uri"
	}
	return ""
}

// ParamHeader is a tool argument that a call repeats in the header
// Mcp-Param-<Header>: the property at Path, a chain of "properties" from
// the top of the input schema.
type ParamHeader struct {
	Header string
	Path   []string
}

// ParamHeaders reads the x-mcp-header annotations of a tool's input
// schema, at the top and in nested objects' properties. It fails when
// they break the rules, and a tool whose annotations do must not be
// called: each names a header of token characters, is unique without
// regard to case, and is on a string, integer or boolean property.
func ParamHeaders(schema json.RawMessage) ([]ParamHeader, error) {
	var out []ParamHeader
	seen := map[string]bool{}
	if err := paramHeaders(schema, nil, seen, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func paramHeaders(schema json.RawMessage, path []string, seen map[string]bool, out *[]ParamHeader) error {
	// JSON Schema keywords are case-sensitive, and encoding/json's struct
	// matching is not: they are looked up exactly.
	var top, props map[string]json.RawMessage
	if json.Unmarshal(schema, &top) != nil || json.Unmarshal(top["properties"], &props) != nil {
		return nil
	}
	for name, raw := range props {
		var p map[string]json.RawMessage
		if json.Unmarshal(raw, &p) != nil {
			continue
		}
		at := append(append([]string(nil), path...), name)
		where := strings.Join(at, ".")
		if rawHeader, ok := p["x-mcp-header"]; ok {
			var header, typ string
			if json.Unmarshal(rawHeader, &header) != nil || header == "" {
				return fmt.Errorf("property %q: x-mcp-header is not a header name", where)
			}
			for i := 0; i < len(header); i++ {
				if !isTokenChar(header[i]) {
					return fmt.Errorf("property %q: x-mcp-header %q has a character a header name cannot", where, header)
				}
			}
			key := strings.ToLower(header)
			if seen[key] {
				return fmt.Errorf("x-mcp-header %q is named twice", header)
			}
			seen[key] = true
			if json.Unmarshal(p["type"], &typ) != nil || (typ != "string" && typ != "integer" && typ != "boolean") {
				// The type is the server's: quoted, whatever it holds.
				what := fmt.Sprintf("%q", typ)
				if typ == "" {
					what = "property of no single type"
				}
				return fmt.Errorf("property %q: x-mcp-header is on a %s, not a string, integer or boolean", where, what)
			}
			*out = append(*out, ParamHeader{Header: header, Path: at})
			continue
		}
		if _, ok := p["properties"]; ok {
			if err := paramHeaders(raw, at, seen, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// isTokenChar tells whether c may be in an HTTP header name (RFC 9110
// section 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// HeaderValue is a string as an MCP header carries it: as it is when it
// is printable ASCII without leading or trailing space, else wrapped as
// =?base64?...?= (the UTF-8 bytes in standard base64).
func HeaderValue(v string) string {
	plain := strings.TrimSpace(v) == v
	for i := 0; plain && i < len(v); i++ {
		plain = v[i] >= 0x20 && v[i] <= 0x7e
	}
	if plain {
		return v
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
}

// maxSafeInteger is the largest integer a JSON number carries exactly
// everywhere (2^53 - 1).
const maxSafeInteger = 1<<53 - 1

// argValue is an argument's header value: strings (HeaderValue),
// booleans, and whole numbers in decimal. Null, other numbers, objects
// and arrays have none.
func argValue(raw json.RawMessage) (string, bool) {
	var v any
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return HeaderValue(v), true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		if i, err := v.Int64(); err == nil && i >= -maxSafeInteger && i <= maxSafeInteger {
			return strconv.FormatInt(i, 10), true
		}
		if f, err := v.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) <= maxSafeInteger {
			return strconv.FormatInt(int64(f), 10), true
		}
	}
	return "", false
}

// lookup returns the value at path in a JSON object, read already at its
// top.
func lookup(top map[string]json.RawMessage, path []string) (json.RawMessage, bool) {
	v, ok := top[path[0]]
	for _, key := range path[1:] {
		var m map[string]json.RawMessage
		if !ok || json.Unmarshal(v, &m) != nil {
			return nil, false
		}
		v, ok = m[key]
	}
	return v, ok
}

// SetStandardHeaders sets on h the headers that repeat a request's
// method (Mcp-Method), its name (Mcp-Name: name is the value of the
// parameter NameParam(method), "" for none), and for a tool call the
// arguments args (a JSON object) that params designate (Mcp-Param-*);
// absent and null arguments, and those that are no string, boolean or
// whole number, get none.
func SetStandardHeaders(h http.Header, method, name string, params []ParamHeader, args json.RawMessage) {
	if method == "" {
		return
	}
	h.Set(HeaderMethod, method)
	if name != "" {
		h.Set(HeaderName, HeaderValue(name))
	}
	var top map[string]json.RawMessage
	if method != "tools/call" || len(params) == 0 || json.Unmarshal(args, &top) != nil {
		return
	}
	for _, p := range params {
		if len(p.Path) == 0 {
			continue
		}
		if raw, ok := lookup(top, p.Path); ok {
			if v, ok := argValue(raw); ok {
				h.Set(HeaderParamPrefix+p.Header, v)
			}
		}
	}
}
