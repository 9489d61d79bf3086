package mcpwire

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"us-west1": "us-west1", "": "", "a b": "a b", " padded": "=?base64?IHBhZGRlZA==?=",
		"line1\nline2": "=?base64?bGluZTEKbGluZTI=?=", "Hello, 世界": "=?base64?SGVsbG8sIOS4lueVjA==?=",
		"\tindented": "=?base64?CWluZGVudGVk?=", "us-west1 ": "=?base64?dXMtd2VzdDEg?=",
	} {
		if got := HeaderValue(in); got != want {
			t.Errorf("HeaderValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParamHeaders: the annotations of the conformance suite's invalid
// tools are refused, each for its reason; valid ones are found at the top
// and in nested objects.
func TestParamHeaders(t *testing.T) {
	prop := func(typ, header string) string {
		h, _ := json.Marshal(header)
		return `{"type":"` + typ + `","x-mcp-header":` + string(h) + `}`
	}
	for name, schema := range map[string]string{
		"empty":          `{"properties":{"a":` + prop("string", "") + `}}`,
		"object":         `{"properties":{"a":` + prop("object", "A") + `}}`,
		"array":          `{"properties":{"a":` + prop("array", "A") + `}}`,
		"null":           `{"properties":{"a":` + prop("null", "A") + `}}`,
		"number":         `{"properties":{"a":` + prop("number", "A") + `}}`,
		"no type":        `{"properties":{"a":{"x-mcp-header":"A"}}}`,
		"not a string":   `{"properties":{"a":{"type":"string","x-mcp-header":1}}}`,
		"same case":      `{"properties":{"a":` + prop("string", "Region") + `,"b":` + prop("string", "Region") + `}}`,
		"other case":     `{"properties":{"a":` + prop("string", "MyField") + `,"b":` + prop("string", "myfield") + `}}`,
		"nested twice":   `{"properties":{"a":` + prop("string", "X") + `,"o":{"type":"object","properties":{"b":` + prop("string", "x") + `}}}}`,
		"space":          `{"properties":{"a":` + prop("string", "My Region") + `}}`,
		"colon":          `{"properties":{"a":` + prop("string", "Region:Primary") + `}}`,
		"non-ASCII":      `{"properties":{"a":` + prop("string", "Région") + `}}`,
		"control":        `{"properties":{"a":` + prop("string", "Region\t1") + `}}`,
		"nested invalid": `{"properties":{"o":{"type":"object","properties":{"b":` + prop("number", "B") + `}}}}`,
	} {
		if _, err := ParamHeaders(json.RawMessage(schema)); err == nil {
			t.Errorf("%s: %s accepted", name, schema)
		}
	}
	got, err := ParamHeaders(json.RawMessage(`{"type":"object","properties":{
	  "region":` + prop("string", "Region") + `,"n":` + prop("integer", "N") + `,"query":{"type":"string"},
	  "o":{"type":"object","properties":{"flag":` + prop("boolean", "Flag") + `}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, p := range got {
		paths[p.Header] = strings.Join(p.Path, ".")
	}
	if len(paths) != 3 || paths["Region"] != "region" || paths["N"] != "n" || paths["Flag"] != "o.flag" {
		t.Errorf("designations %v", paths)
	}
	for _, schema := range []string{``, `{}`, `{"type":"object"}`, `[]`, `{"properties":[]}`, `{"properties":{"a":1}}`} {
		if got, err := ParamHeaders(json.RawMessage(schema)); err != nil || len(got) != 0 {
			t.Errorf("%q: %v, %v", schema, got, err)
		}
	}
}

// TestSetStandardHeaders: the values as the conformance suite's
// http-custom-headers scenario checks them.
func TestSetStandardHeaders(t *testing.T) {
	designated := []ParamHeader{
		{"Region", []string{"region"}}, {"Priority", []string{"priority"}}, {"Verbose", []string{"verbose"}},
		{"Debug", []string{"debug"}}, {"EmptyVal", []string{"empty_val"}}, {"Method", []string{"method_val"}},
		{"NonAscii", []string{"non_ascii_val"}}, {"CrLf", []string{"crlf_val"}}, {"Float", []string{"float_val"}},
		{"Big", []string{"big"}}, {"Whole", []string{"whole"}}, {"Obj", []string{"obj"}}, {"Absent", []string{"absent"}},
		{"Deep", []string{"o", "deep"}}, {"Null", []string{"null_val"}},
	}
	args := `{"region":"us-west1","priority":42,"verbose":false,"debug":true,"empty_val":"","method_val":"test-method",
	  "non_ascii_val":"Hello, 世界","crlf_val":"line1\r\nline2","float_val":3.14159,"big":9007199254740993,"whole":7.0,
	  "obj":{"a":1},"o":{"deep":"d"},"null_val":null,"query":"SELECT * FROM users"}`
	h := http.Header{}
	SetStandardHeaders(h, "tools/call", "test_custom_headers", designated, json.RawMessage(args))
	want := map[string]string{
		"Mcp-Method": "tools/call", "Mcp-Name": "test_custom_headers",
		"Mcp-Param-Region": "us-west1", "Mcp-Param-Priority": "42", "Mcp-Param-Verbose": "false",
		"Mcp-Param-Debug": "true", "Mcp-Param-Emptyval": "", "Mcp-Param-Method": "test-method",
		"Mcp-Param-Nonascii": "=?base64?SGVsbG8sIOS4lueVjA==?=", "Mcp-Param-Crlf": "=?base64?bGluZTENCmxpbmUy?=",
		"Mcp-Param-Whole": "7", "Mcp-Param-Deep": "d",
	}
	for k, v := range want {
		if got, ok := h[http.CanonicalHeaderKey(k)]; !ok || got[0] != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("headers %v, want only %v", h, want)
	}
	h = http.Header{}
	SetStandardHeaders(h, "resources/read", "file:///a b", designated, json.RawMessage(args))
	if len(h) != 2 || h.Get("Mcp-Method") != "resources/read" || h.Get("Mcp-Name") != "file:///a b" {
		t.Errorf("resources/read: %v", h)
	}
	h = http.Header{}
	SetStandardHeaders(h, "notifications/cancelled", "", nil, nil)
	if len(h) != 1 || h.Get("Mcp-Method") != "notifications/cancelled" {
		t.Errorf("notification: %v", h)
	}
	if NameParam("tools/call") != "name" || NameParam("prompts/get") != "name" || NameParam("resources/read") != "uri" || NameParam("tools/list") != "" {
		t.Error("NameParam")
	}
}

// TestParamHeadersTypeQuoted: the server's type is quoted in the error,
// whatever it holds.
func TestParamHeadersTypeQuoted(t *testing.T) {
	_, err := ParamHeaders(json.RawMessage(`{"properties":{"a":{"type":"num\u001bber\nx","x-mcp-header":"A"}}}`))
	if err == nil || !strings.Contains(err.Error(), `on a "num\x1bber\nx",`) {
		t.Errorf("err %v, want the type quoted", err)
	}
}
