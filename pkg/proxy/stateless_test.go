package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// seenPost is a POST as a server received it.
type seenPost struct {
	method string // the body's
	header http.Header
	body   map[string]json.RawMessage
}

// recorder records the requests that reach a handler.
type recorder struct {
	mu    sync.Mutex
	posts []seenPost
	other []string // the HTTP methods of requests other than POST
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			r.mu.Lock()
			r.other = append(r.other, req.Method)
			r.mu.Unlock()
			h.ServeHTTP(w, req)
			return
		}
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(strings.NewReader(string(b)))
		var body map[string]json.RawMessage
		_ = json.Unmarshal(b, &body)
		var method string
		_ = json.Unmarshal(body["method"], &method)
		r.mu.Lock()
		r.posts = append(r.posts, seenPost{method: method, header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

func (r *recorder) seen() ([]seenPost, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenPost(nil), r.posts...), append([]string(nil), r.other...)
}

// TestStatelessHostWithTheGoSDK: the official Go SDK's client as the host,
// its stateless server (2026-07-28) behind the proxy. The host finds the
// server with server/discover and never initializes; every POST carries
// the version of the request's _meta and no session id, and the headers
// the host cannot add through stdio, which the SDK's server checks
// (Mcp-Param-* against the arguments, -32020 when they differ); a call
// that needs input (input_required) is answered by the host through the
// proxy; no stream is opened with GET and no session ended with DELETE.
func TestStatelessHostWithTheGoSDK(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "stateless", Version: "1"}, nil)
	schema := json.RawMessage(`{"type":"object","properties":{
	  "region":{"type":"string","x-mcp-header":"Region"},
	  "count":{"type":"integer","x-mcp-header":"Count"},
	  "where":{"type":"object","properties":{"zone":{"type":"string","x-mcp-header":"Zone"}}},
	  "text":{"type":"string"}}}`)
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: schema}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args struct {
			Region string `json:"region"`
			Count  int    `json:"count"`
			Where  struct {
				Zone string `json:"zone"`
			} `json:"where"`
		}
		_ = json.Unmarshal(req.Params.Arguments, &args)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s %d %s", args.Region, args.Count, args.Where.Zone)}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "ask", InputSchema: json.RawMessage(`{"type":"object"}`)}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if len(req.Params.InputResponses) == 0 {
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"name": &mcp.ElicitParams{Message: "Your name?",
				RequestedSchema: &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{"name": {Type: "string"}}}}}}, nil
		}
		res, _ := req.Params.InputResponses["name"].(*mcp.ElicitResult)
		if res == nil {
			return nil, fmt.Errorf("no answer")
		}
		name, _ := res.Content["name"].(string)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: res.Action + " " + name}}}, nil
	})
	rec := &recorder{}
	srv := httptest.NewServer(rec.wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Stateless: true})))
	t.Cleanup(srv.Close)

	h := connect(t, &upstream{srv: srv}, 0)
	if v := h.cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("negotiated %q, want the stateless 2026-07-28", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tools, err := h.cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 2 {
		t.Fatalf("tools/list: %v, %v\n%s", tools, err, h.logs)
	}
	args := map[string]any{"region": "Zürich ", "count": 42, "where": map[string]any{"zone": "b"}, "text": "x"}
	if got := call(t, h, "echo", args, nil); got != "Zürich  42 b" {
		t.Errorf("echo = %q", got)
	}
	if got := call(t, h, "ask", nil, nil); got != "accept alice" {
		t.Errorf("input_required round trip = %q", got)
	}
	// A notification on the host's subscriptions/listen stream, which
	// stays open as long as the host wants it.
	s.AddTool(&mcp.Tool{Name: "late", InputSchema: json.RawMessage(`{"type":"object"}`)}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	})
	select {
	case <-h.changed:
	case <-time.After(5 * time.Second):
		t.Errorf("tools/list_changed did not reach the host\n%s", h.logs)
	}
	_ = h.cs.Close()
	select {
	case <-h.done:
	case <-time.After(Linger + 5*time.Second):
		t.Fatal("the proxy did not end")
	}

	posts, other := rec.seen()
	if len(other) != 0 {
		t.Errorf("requests other than POST: %v (no GET stream, no session to DELETE)", other)
	}
	var calls []http.Header
	for _, p := range posts {
		if p.method == "initialize" {
			t.Error("an initialize reached the server")
		}
		if p.method == "tools/call" {
			calls = append(calls, p.header)
		}
		if v := p.header.Get("Mcp-Protocol-Version"); v != "2026-07-28" {
			t.Errorf("%s: MCP-Protocol-Version %q", p.method, v)
		}
		if p.header.Get("Mcp-Session-Id") != "" {
			t.Errorf("%s: a session id", p.method)
		}
		if v := p.header.Get("Mcp-Method"); v != p.method {
			t.Errorf("%s: Mcp-Method %q", p.method, v)
		}
	}
	if len(calls) != 3 {
		t.Fatalf("%d tool calls reached the server, want 3 (echo, ask and its retry)", len(calls))
	}
	hdr := calls[0]
	want := map[string]string{"Mcp-Name": "echo", "Mcp-Param-Region": "=?base64?WsO8cmljaCA=?=", "Mcp-Param-Count": "42", "Mcp-Param-Zone": "b"}
	for k, v := range want {
		if got := hdr.Get(k); got != v {
			t.Errorf("tools/call %s: %q, want %q", k, got, v)
		}
	}
}

// statelessServer is a hand-written server of the 2026-07-28 protocol:
// each request's headers are recorded; it refuses a version it does not
// speak (-32022), lists the conformance suite's tools with x-mcp-header
// annotations (valid and invalid), answers input_required for one, and
// for a host of the handshake (2025-11-25) begins a session.
type statelessServer struct {
	rec recorder
}

const customHeaderTools = `{"tools":[
 {"name":"test_custom_headers","inputSchema":{"type":"object","properties":{
   "region":{"type":"string","x-mcp-header":"Region"},"priority":{"type":"integer","x-mcp-header":"Priority"},
   "verbose":{"type":"boolean","x-mcp-header":"Verbose"},"debug":{"type":"boolean","x-mcp-header":"Debug"},
   "empty_val":{"type":"string","x-mcp-header":"EmptyVal"},"method_val":{"type":"string","x-mcp-header":"Method"},
   "non_ascii_val":{"type":"string","x-mcp-header":"NonAscii"},"whitespace_val":{"type":"string","x-mcp-header":"Whitespace"},
   "control_char_val":{"type":"string","x-mcp-header":"ControlChar"},"tab_val":{"type":"string","x-mcp-header":"Tab"},
   "float_val":{"type":"number"},"query":{"type":"string"}}}},
 {"name":"invalid_number_header","inputSchema":{"type":"object","properties":{"a":{"type":"number","x-mcp-header":"A"}}}},
 {"name":"invalid_space_in_name","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"My Region"}}}},
 {"name":"invalid_duplicate_diff_case","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"MyField"},"b":{"type":"string","x-mcp-header":"myfield"}}}},
 {"name":"plain","description":"<b>&","inputSchema":{"type":"object"}}
],"resultType":"complete","ttlMs":300000}`

func (ss *statelessServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	posts, _ := ss.rec.seen()
	p := posts[len(posts)-1]
	id := p.body["id"]
	if id == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	var params struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(p.body["params"], &params)
	result := `{"resultType":"complete"}`
	switch version := p.header.Get("Mcp-Protocol-Version"); {
	case p.method == "initialize":
		w.Header().Set("Mcp-Session-Id", "s-1")
		result = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"hand","version":"1"}}`
	case version != "2026-07-28" && version != "2025-11-25":
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"],"requested":%q}}}`, id, version)
		return
	case p.method == "tools/list":
		result = customHeaderTools
	case p.method == "tools/call" && params.Name == "needs_input":
		result = `{"resultType":"input_required","inputRequests":{"confirm":{"method":"elicitation/create","params":{"message":"Sure?","requestedSchema":{"type":"object","properties":{}}}}},"requestState":"opaque\u00e9"}`
	case p.method == "tools/call":
		result = `{"content":[{"type":"text","text":"done"}],"resultType":"complete"}`
	}
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, id, result)
}

// ask sends a request of the host and returns the answer.
func ask(h *rawHost, line string) map[string]json.RawMessage {
	h.t.Helper()
	h.send(line)
	b, _ := json.Marshal(h.next(5 * time.Second))
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return m
}

// stateless is a request of a 2026-07-28 host with its _meta.
func stateless(id int, method, params string, version string) string {
	meta := fmt.Sprintf(`"_meta":{"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`, version)
	if params == "" {
		params = "{" + meta + "}"
	} else {
		params = "{" + meta + "," + params + "}"
	}
	var b bytes.Buffer
	_ = json.Compact(&b, []byte(params)) // one line
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, b.String())
}

func toolNames(t *testing.T, answer map[string]json.RawMessage) []string {
	t.Helper()
	var r struct {
		Tools []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(answer["result"], &r); err != nil {
		t.Fatalf("tools/list answer %s", answer["result"])
	}
	var names []string
	for _, tool := range r.Tools {
		names = append(names, tool.Name)
		if tool.Name == "plain" && tool.Description != "<b>&" {
			t.Errorf("description %q changed on the way", tool.Description)
		}
	}
	return names
}

func rpcError(answer map[string]json.RawMessage) (code int, message string, data json.RawMessage) {
	var e struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(answer["error"], &e)
	return e.Code, e.Message, e.Data
}

// TestStatelessHeaders: what a 2026-07-28 host cannot say in headers
// through stdio, the proxy derives from each message: the version of its
// _meta, Mcp-Method, Mcp-Name, and the designated arguments as the
// conformance suite's http-custom-headers scenario checks them. A server
// that refuses the version is heard (-32022 with its data); tools whose
// annotations are invalid are left out of the list and their calls
// refused without reaching the server; input_required results reach the
// host as they are.
func TestStatelessHeaders(t *testing.T) {
	ss := &statelessServer{}
	srv := httptest.NewServer(ss.rec.wrap(ss))
	t.Cleanup(srv.Close)
	h := startRaw(t, srv.URL, Options{})

	refused := ask(h, stateless(1, "server/discover", "", "2099-01-01"))
	if code, _, data := rpcError(refused); code != -32022 || !strings.Contains(string(data), `"supported":["2026-07-28"]`) {
		t.Errorf("a refused version reached the host as %s", refused["error"])
	}
	if m := ask(h, stateless(2, "server/discover", "", "2026-07-28")); m["result"] == nil {
		t.Errorf("server/discover: %v", m)
	}
	if got := strings.Join(toolNames(t, ask(h, stateless(3, "tools/list", "", "2026-07-28"))), " "); got != "test_custom_headers plain" {
		t.Errorf("tools listed to the host: %q, want the valid ones only", got)
	}
	ask(h, stateless(4, "tools/call", `"name":"test_custom_headers","arguments":{"region":"us-west1","priority":42,"verbose":false,"debug":true,
	  "empty_val":"","method_val":"test-method","float_val":3.14159,"non_ascii_val":"Hello, 世界","whitespace_val":" padded ",
	  "control_char_val":"line1\nline2","tab_val":"\tindented","query":"SELECT * FROM users"}`, "2026-07-28"))
	ask(h, stateless(5, "tools/call", `"name":"test_custom_headers","arguments":{"region":"us-east1","priority":1,"verbose":null,"query":"SELECT 1"}`, "2026-07-28"))
	invalid := ask(h, stateless(6, "tools/call", `"name":"invalid_number_header","arguments":{"a":1.5}`, "2026-07-28"))
	if code, msg, _ := rpcError(invalid); code != CodeInvalidTool || !strings.Contains(msg, "x-mcp-header") || !strings.Contains(msg, "invalid") {
		t.Errorf("the call of a tool with invalid annotations was answered %s", invalid["error"])
	}
	needsInput := ask(h, stateless(7, "tools/call", `"name":"needs_input","arguments":{}`, "2026-07-28"))
	var r struct {
		ResultType    string                     `json:"resultType"`
		InputRequests map[string]json.RawMessage `json:"inputRequests"`
		RequestState  string                     `json:"requestState"`
	}
	if _ = json.Unmarshal(needsInput["result"], &r); r.ResultType != "input_required" || r.InputRequests["confirm"] == nil || r.RequestState != "opaque\u00e9" {
		t.Errorf("input_required reached the host as %s", needsInput["result"])
	}
	ask(h, stateless(8, "resources/read", `"uri":"file:///path/to/file%20name.txt"`, "2026-07-28"))
	h.send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}`)
	h.in.Close()
	<-h.done

	posts, other := ss.rec.seen()
	if len(other) != 0 {
		t.Errorf("requests other than POST: %v", other)
	}
	var methods []string
	for _, p := range posts {
		methods = append(methods, p.method)
		if p.header.Get("Mcp-Session-Id") != "" {
			t.Errorf("%s: a session id", p.method)
		}
		if p.header.Get("Mcp-Method") != p.method {
			t.Errorf("%s: Mcp-Method %q", p.method, p.header.Get("Mcp-Method"))
		}
		var params struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		}
		_ = json.Unmarshal(p.body["params"], &params)
		var version string
		_ = json.Unmarshal(params.Meta["io.modelcontextprotocol/protocolVersion"], &version)
		if version == "" {
			version = "2026-07-28" // the notification: the version of the host's requests
		}
		if got := p.header.Get("Mcp-Protocol-Version"); got != version {
			t.Errorf("%s: MCP-Protocol-Version %q, want %q", p.method, got, version)
		}
	}
	if got := strings.Join(methods, " "); got != "server/discover server/discover tools/list tools/call tools/call tools/call resources/read notifications/cancelled" {
		t.Fatalf("the server received %q (the invalid tool's call must not reach it)", got)
	}
	first, null := posts[3].header, posts[4].header
	want := map[string]string{
		"Mcp-Name": "test_custom_headers", "Mcp-Param-Region": "us-west1", "Mcp-Param-Priority": "42",
		"Mcp-Param-Verbose": "false", "Mcp-Param-Debug": "true", "Mcp-Param-EmptyVal": "", "Mcp-Param-Method": "test-method",
		"Mcp-Param-NonAscii": "=?base64?SGVsbG8sIOS4lueVjA==?=", "Mcp-Param-Whitespace": "=?base64?IHBhZGRlZCA=?=",
		"Mcp-Param-ControlChar": "=?base64?bGluZTEKbGluZTI=?=", "Mcp-Param-Tab": "=?base64?CWluZGVudGVk?=",
	}
	for k, v := range want {
		if got, ok := first[http.CanonicalHeaderKey(k)]; !ok || got[0] != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if first.Get("Mcp-Method") != "tools/call" {
		t.Errorf("Mcp-Method %q", first.Get("Mcp-Method"))
	}
	for _, k := range []string{"Mcp-Param-Floatval", "Mcp-Param-Query", "Mcp-Param-Float_val"} {
		if _, ok := first[k]; ok {
			t.Errorf("%s sent for an argument without x-mcp-header", k)
		}
	}
	if _, ok := null["Mcp-Param-Verbose"]; ok || null.Get("Mcp-Param-Region") != "us-east1" {
		t.Errorf("the call with a null argument: %v", null)
	}
	if got := posts[6].header.Get("Mcp-Name"); got != "file:///path/to/file%20name.txt" {
		t.Errorf("resources/read: Mcp-Name %q", got)
	}
}

// TestHandshakeHostHeaders: a host of the handshake (2025-11-25) gets its
// session as before, and the same derived headers, which servers of that
// version ignore; its tool list is passed on whole, x-mcp-header being no
// rule of its version.
func TestHandshakeHostHeaders(t *testing.T) {
	ss := &statelessServer{}
	srv := httptest.NewServer(ss.rec.wrap(ss))
	t.Cleanup(srv.Close)
	h := startRaw(t, srv.URL, Options{})
	ask(h, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if got := len(toolNames(t, ask(h, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))); got != 5 {
		t.Errorf("%d tools listed to the host, want all 5", got)
	}
	if m := ask(h, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"invalid_number_header","arguments":{"a":1}}}`); m["result"] == nil {
		t.Errorf("a tool call was not forwarded: %v", m)
	}
	ask(h, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"test_custom_headers","arguments":{"region":"eu"}}}`)
	h.in.Close()
	<-h.done
	posts, _ := ss.rec.seen()
	var methods []string
	for _, p := range posts[1:] {
		methods = append(methods, p.method)
		if p.header.Get("Mcp-Session-Id") != "s-1" || p.header.Get("Mcp-Protocol-Version") != "2025-11-25" || p.header.Get("Mcp-Method") != p.method {
			t.Errorf("%s: headers %v", p.method, p.header)
		}
	}
	if got := strings.Join(methods, " "); got != "notifications/initialized tools/list tools/call tools/call" {
		t.Fatalf("the server received %q", got)
	}
	if c := posts[4].header; c.Get("Mcp-Name") != "test_custom_headers" || c.Get("Mcp-Param-Region") != "eu" {
		t.Errorf("tools/call headers %v", c)
	}
}
