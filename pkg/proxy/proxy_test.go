package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// upstream is an MCP server of the official Go SDK over Streamable HTTP,
// which a test can restart (a new server that knows no session).
type upstream struct {
	t       *testing.T
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	server  atomic.Pointer[mcp.Server]

	mu      sync.Mutex
	methods []string // HTTP methods of the requests, in order
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{t: t}
	u.restart()
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.methods = append(u.methods, r.Method)
		u.mu.Unlock()
		(*u.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// restart replaces the server by a new one: the sessions are gone.
func (u *upstream) restart() {
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	schema := json.RawMessage(`{"type":"object"}`)
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: schema}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(req.Params.Arguments, &args)
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2, Message: "half way"})
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: args.Text}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "ask", InputSchema: schema}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "Your name?",
			RequestedSchema: &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{"name": {Type: "string"}}}})
		if err != nil {
			return nil, err
		}
		name, _ := res.Content["name"].(string)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: res.Action + " " + name}}}, nil
	})
	h := http.Handler(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	u.handler.Store(&h)
	u.server.Store(s)
}

func (u *upstream) count(method string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, m := range u.methods {
		if m == method {
			n++
		}
	}
	return n
}

// host is the Go SDK's client, talking to the proxy over pipes as an MCP
// client talks to a stdio server.
type host struct {
	cs       *mcp.ClientSession
	progress chan string
	changed  chan struct{}
	done     chan error
	logs     *logs
}

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) add(s string) { l.mu.Lock(); l.lines = append(l.lines, s); l.mu.Unlock() }
func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func connect(t *testing.T, u *upstream, max int) *host {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := &host{progress: make(chan string, 4), changed: make(chan struct{}, 4), done: make(chan error, 1), logs: &logs{}}
	p := New(Options{Endpoint: u.srv.URL, HTTP: http.DefaultClient, In: inR, Out: outW, Log: h.logs.add, MaxMessage: max})
	go func() {
		err := p.Run(context.Background())
		outW.Close()
		h.done <- err
	}()
	c := mcp.NewClient(&mcp.Implementation{Name: "host", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "alice"}}, nil
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			h.progress <- req.Params.Message
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { h.changed <- struct{}{} },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v\n%s", err, h.logs)
	}
	h.cs = cs
	t.Cleanup(func() { _ = cs.Close() })
	return h
}

func call(t *testing.T, h *host, name string, args map[string]any, meta mcp.Meta) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	params := &mcp.CallToolParams{Name: name, Arguments: args}
	if meta != nil {
		params.Meta = meta
	}
	res, err := h.cs.CallTool(ctx, params)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, h.logs)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: %d contents", name, len(res.Content))
	}
	return res.Content[0].(*mcp.TextContent).Text
}

func TestForwardsBothWays(t *testing.T) {
	u := newUpstream(t)
	h := connect(t, u, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tools, err := h.cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 2 {
		t.Fatalf("tools/list: %v, %v", tools, err)
	}
	if got := call(t, h, "echo", map[string]any{"text": "hello"}, nil); got != "hello" {
		t.Errorf("echo = %q", got)
	}
	// A notification inside a request's stream.
	if got := call(t, h, "echo", map[string]any{"text": "p"}, mcp.Meta{"progressToken": "tok-1"}); got != "p" {
		t.Errorf("echo with progress = %q", got)
	}
	select {
	case m := <-h.progress:
		if m != "half way" {
			t.Errorf("progress message %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Error("no progress notification reached the host")
	}
	// A request of the server's, answered by the host.
	if got := call(t, h, "ask", nil, nil); got != "accept alice" {
		t.Errorf("elicitation round trip = %q", got)
	}
	// A notification outside any request: the standalone stream.
	u.server.Load().AddTool(&mcp.Tool{Name: "late", InputSchema: json.RawMessage(`{"type":"object"}`)}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	})
	select {
	case <-h.changed:
	case <-time.After(5 * time.Second):
		t.Errorf("tools/list_changed did not reach the host on the standalone stream\n%s", h.logs)
	}
	if u.count(http.MethodGet) == 0 {
		t.Error("no standalone stream was opened")
	}
}

func TestServerRestartIsInvisible(t *testing.T) {
	u := newUpstream(t)
	h := connect(t, u, 0)
	if got := call(t, h, "echo", map[string]any{"text": "before"}, nil); got != "before" {
		t.Fatalf("echo = %q", got)
	}
	u.restart()
	if got := call(t, h, "echo", map[string]any{"text": "after"}, nil); got != "after" {
		t.Errorf("echo after the restart = %q", got)
	}
	if !strings.Contains(h.logs.String(), "began a new one") {
		t.Errorf("the new session was not logged:\n%s", h.logs)
	}
}

func TestStdinClosedEndsTheSession(t *testing.T) {
	u := newUpstream(t)
	h := connect(t, u, 0)
	call(t, h, "echo", map[string]any{"text": "x"}, nil)
	_ = h.cs.Close()
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run = %v, want nil when stdin closes", err)
		}
	case <-time.After(Linger + 5*time.Second):
		t.Fatal("the proxy did not end when stdin closed")
	}
	if u.count(http.MethodDelete) != 1 {
		t.Errorf("%d DELETE requests, want the session ended once", u.count(http.MethodDelete))
	}
}

// TestRawProtocol drives the proxy with raw lines: what no SDK client
// sends (a line that is not JSON, one over the limit) gets a JSON-RPC
// error, stdout has one message per line, and nothing else.
func TestRawProtocol(t *testing.T) {
	u := newUpstream(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := New(Options{Endpoint: u.srv.URL, HTTP: http.DefaultClient, In: inR, Out: outW, MaxMessage: 4096})
	go func() { _ = p.Run(context.Background()); outW.Close() }()
	lines := bufio.NewScanner(outR)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() map[string]any {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("no line from the proxy: %v", lines.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("stdout line %q is not one JSON message: %v", lines.Text(), err)
		}
		return m
	}
	send := func(s string) {
		if _, err := io.WriteString(inW, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if m := next(); m["id"] != float64(1) || m["result"] == nil {
		t.Fatalf("initialize answer %v", m)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`not json`)
	if m := next(); m["error"].(map[string]any)["code"] != float64(CodeParseError) {
		t.Errorf("answer to a line that is not JSON: %v", m)
	}
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 5000) + `"}}}`)
	if m := next(); m["error"].(map[string]any)["code"] != float64(CodeTooLarge) {
		t.Errorf("answer to a message over the limit: %v", m)
	}
	send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"still here"}}}`)
	if m := next(); m["id"] != float64(3) || !strings.Contains(lines.Text(), "still here") {
		t.Errorf("the proxy did not carry on: %v", m)
	}
	inW.Close()
}

// jsonSchema is the little of JSON Schema the elicitation needs.
type jsonSchema struct {
	Type       string                 `json:"type"`
	Properties map[string]*jsonSchema `json:"properties,omitempty"`
}

// TestPipelinedHost: a host that writes initialize and the next messages
// at once (a script piping them in) gets every answer: nothing goes to the
// server before the session that initialize begins is known.
func TestPipelinedHost(t *testing.T) {
	u := newUpstream(t)
	outR, outW := io.Pipe()
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"pipe","version":"1"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
{"jsonrpc":"2.0","id":2,"method":"tools/list"}
`)
	p := New(Options{Endpoint: u.srv.URL, HTTP: http.DefaultClient, In: in, Out: outW})
	go func() { _ = p.Run(context.Background()); outW.Close() }()
	got := map[float64]bool{}
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if m["error"] != nil {
			t.Errorf("error answer: %s", sc.Text())
		}
		if id, ok := m["id"].(float64); ok && m["result"] != nil {
			got[id] = true
		}
	}
	if !got[1] || !got[2] {
		t.Errorf("answers %v, want results for 1 and 2", got)
	}
}
