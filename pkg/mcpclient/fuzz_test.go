package mcpclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// fuzzToolServer is a real MCP server of the official SDK with one tool,
// "echo", whose result is the current fuzz input, and a Session to it
// over Streamable HTTP through Connect (with a dummy token, which the
// server does not check).
type fuzzToolServer struct {
	sess *Session

	mu     sync.Mutex
	result *mcp.CallToolResult
	auth   string // the Authorization header of the last HTTP request
}

func newFuzzToolServer(tb testing.TB) *fuzzToolServer {
	s := &fuzzToolServer{}
	server := mcp.NewServer(&mcp.Implementation{Name: "fuzz", Version: "0"}, nil)
	server.AddTool(&mcp.Tool{
		Name:        "echo",
		InputSchema: map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"type": "string"}}},
	}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.result, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auth = r.Header.Get("Authorization")
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	sess, err := Connect(ctx, &http.Client{Timeout: 30 * time.Second}, srv.URL+"/mcp", StaticToken("dummy-token"), Options{Version: "fuzz"})
	if err != nil {
		tb.Fatalf("connect to the fuzz MCP server: %v", err)
	}
	tb.Cleanup(func() { _ = sess.Close() })
	s.sess = sess
	return s
}

func (s *fuzzToolServer) set(res *mcp.CallToolResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.result = res
}

func (s *fuzzToolServer) call(out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.sess.Call(ctx, "echo", map[string]any{"x": "y"}, out)
}

// fuzzWire is what a string becomes after a JSON round trip (invalid UTF-8
// is replaced), as the text content does on its way to the client.
func fuzzWire(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// fuzzToolResultSeeds are tool results as Nextcloud MCP servers send them,
// and odd ones.
var fuzzToolResultSeeds = []struct {
	text, structured  string
	isError, withText bool
}{
	{`{"id":42,"title":"Shopping","content":"milk"}`, ``, false, true},
	{`{"notes":[{"id":1},{"id":2}]}`, `{"notes":[{"id":1},{"id":2}]}`, false, true},
	{`ignored`, `{"results":[],"total":0}`, false, true},
	{``, `{"ok":true}`, false, false},
	{`[1,2,3]`, ``, false, true},
	{`"just a string"`, ``, false, true},
	{`null`, ``, false, true},
	{`Note 42 not found`, ``, true, true},
	{`   `, ``, true, true},
	{``, ``, true, false},
	{``, ``, false, false},
	{`not json {`, ``, false, true},
	{`{"a":1}`, `[1,2]`, false, true},
	{`{"a":1}`, `null`, false, true},
	{`{"a":1}`, `"s"`, false, true},
	{`{"a":"\ud800"}`, `{"big":12345678901234567890,"f":1e400}`, false, true},
	{"{\"a\":\"\xff\"}", "{\"b\":\"\xfe\"}", false, true},
	{`{"a":1}{"b":2}`, `{"a":1} `, false, true},
	{`{"a":"\ud800\udc00\ud800x"}`, `not json`, false, true},
}

// fuzzCheckToolResult has the server answer with the given result and
// checks what Session.Call makes of it.
func fuzzCheckToolResult(t *testing.T, ts *fuzzToolServer, text string, structured []byte, isError, withText bool) {
	t.Helper()
	res := &mcp.CallToolResult{IsError: isError, Content: []mcp.Content{}}
	if withText {
		res.Content = append(res.Content, &mcp.TextContent{Text: text})
	}
	// Structured content is JSON on the wire: a valid value is sent as it
	// is, anything else as a JSON string.
	var sc any
	switch {
	case len(structured) == 0:
	case json.Valid(structured):
		res.StructuredContent = json.RawMessage(structured)
		if json.Unmarshal(structured, &sc) != nil {
			// Valid JSON that Go cannot hold (a number beyond float64,
			// as 1e400): the SDK fails to read the whole result, so no
			// decoding can succeed.
			ts.set(res)
			var out map[string]any
			if err := ts.call(&out); err == nil {
				t.Fatalf("structured content %q decoded to %v", structured, out)
			}
			return
		}
	default:
		res.StructuredContent = string(structured)
		sc = fuzzWire(string(structured))
	}
	ts.set(res)

	var out map[string]any
	err := ts.call(&out)
	ts.mu.Lock()
	auth := ts.auth
	ts.mu.Unlock()
	if auth != "Bearer dummy-token" {
		t.Fatalf("Authorization %q", auth)
	}

	wireText := fuzzWire(text)
	var te *ToolError
	if isError {
		if !errors.As(err, &te) {
			t.Fatalf("an IsError result gave %T %v, want a *ToolError", err, err)
		}
		want := "no message"
		if withText && strings.TrimSpace(wireText) != "" {
			want = strings.TrimSpace(wireText)
		}
		if te.Tool != "echo" || te.Message != want {
			t.Fatalf("ToolError %+v, want message %q", te, want)
		}
		return
	}
	if errors.As(err, &te) {
		t.Fatalf("a successful result gave the ToolError %v", err)
	}
	// Call decodes the structured content when there is some, else the
	// text; either way the decoded JSON is exactly that JSON document.
	var src []byte
	switch {
	case sc != nil:
		src, _ = json.Marshal(sc)
	case withText && wireText != "":
		src = []byte(wireText)
	default:
		if err == nil {
			t.Fatalf("a result without content decoded to %v", out)
		}
		return
	}
	var want map[string]any
	wantErr := json.Unmarshal(src, &want)
	if err == nil {
		if !json.Valid(src) {
			t.Fatalf("Call decoded %q, which is not JSON, into %v", src, out)
		}
		if wantErr != nil || !reflect.DeepEqual(out, want) {
			t.Fatalf("Call decoded %q into %v, want %v (%v)", src, out, want, wantErr)
		}
	} else if wantErr == nil {
		t.Fatalf("Call failed on %q, a JSON object or null: %v", src, err)
	}
}

// FuzzToolResult has the SDK server answer a tool call with fuzzed text
// and structured content, over Streamable HTTP, and checks how
// Session.Call decodes it.
func FuzzToolResult(f *testing.F) {
	for _, s := range fuzzToolResultSeeds {
		f.Add(s.text, []byte(s.structured), s.isError, s.withText)
	}
	ts := newFuzzToolServer(f)
	f.Fuzz(func(t *testing.T, text string, structured []byte, isError, withText bool) {
		fuzzCheckToolResult(t, ts, text, structured, isError, withText)
	})
}

// TestToolResultOverHTTP replays the seeds of
// FuzzToolResult over Streamable HTTP, through Connect with a bearer token.
func TestToolResultOverHTTP(t *testing.T) {
	ts := newFuzzToolServer(t)
	for _, s := range fuzzToolResultSeeds {
		fuzzCheckToolResult(t, ts, s.text, []byte(s.structured), s.isError, s.withText)
	}
}

// FuzzSchemaProperties reads the argument names of fuzzed input schemas,
// as Tools reads them from a tool list.
func FuzzSchemaProperties(f *testing.F) {
	for _, s := range []string{
		`{"type":"object","properties":{"title":{"type":"string"},"content":{"type":"string"},"category":{"type":"string"}},"required":["title"]}`,
		`{"type":"object"}`,
		`{"type":"object","properties":{}}`,
		`{"type":"object","properties":null}`,
		`{"type":"object","properties":[]}`,
		`{"type":"object","properties":{"a":true,"b":false,"":{}}}`,
		`{"$defs":{"x":{"properties":{"hidden":{}}}},"properties":{"shown":{}}}`,
		`[]`, `null`, `"string"`, `42`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var schema any
		_ = json.Unmarshal(b, &schema) // not JSON: no properties
		got := schemaProperties(b)
		if !sort.StringsAreSorted(got) {
			t.Fatalf("schemaProperties(%s) = %q, not sorted", b, got)
		}
		// JSON Schema keywords are case-sensitive: only "properties" counts.
		var want []string
		if m, ok := schema.(map[string]any); ok {
			if p, ok := m["properties"].(map[string]any); ok {
				for k := range p {
					want = append(want, k)
				}
			}
		}
		sort.Strings(want)
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
			// Found by this fuzzer's property ({"Properties":...}, kept in
			// testdata), fixed in 1e3fc59.
			t.Fatalf("schemaProperties(%s) = %q, want %q", b, got, want)
		}
		for _, n := range got {
			if !(Tool{Name: "t", Args: got}).Has(n) {
				t.Fatalf("Tool.Has(%q) is false for %q", n, got)
			}
		}
	})
}
