package mcpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// statelessServer is a hand-written server of the 2026-07-28 protocol as
// the specification's schema and the conformance suite describe it; the
// official Go SDK's server speaks it too (the SDK tests in this package
// run against it), but does not let a test see each request's headers or
// answer input_required at will.
type statelessServer struct {
	t *testing.T
	// firstRefused answers the first request with -32022.
	firstRefused bool
	// call answers tools/call; nil answers a text result.
	call func(m message, params map[string]json.RawMessage) string

	mu   sync.Mutex
	reqs []seenRequest
}

type seenRequest struct {
	method string
	id     string
	header http.Header
	params map[string]json.RawMessage
}

const statelessTools = `{"tools":[
 {"name":"mirror","inputSchema":{"type":"object","properties":{
   "region":{"type":"string","x-mcp-header":"Region"},
   "priority":{"type":"integer","x-mcp-header":"Priority"},
   "verbose":{"type":"boolean","x-mcp-header":"Verbose"},
   "note":{"type":"string","x-mcp-header":"Note"},
   "ratio":{"type":"number"},
   "query":{"type":"string"}}}},
 {"name":"bad_header","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A B"}}}},
 {"name":"bad_type","inputSchema":{"type":"object","properties":{"a":{"type":"number","x-mcp-header":"A"}}}},
 {"name":"twice","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"X"},"b":{"type":"string","x-mcp-header":"x"}}}}
],"resultType":"complete"}`

func (ss *statelessServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		ss.t.Errorf("posted %q", b)
		return
	}
	var params map[string]json.RawMessage
	_ = json.Unmarshal(m.Params, &params)
	ss.mu.Lock()
	first := len(ss.reqs) == 0
	ss.reqs = append(ss.reqs, seenRequest{method: m.Method, id: string(m.ID), header: r.Header.Clone(), params: params})
	ss.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	answer := func(result string) {
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, m.ID, result)
	}
	switch {
	case first && ss.firstRefused:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"],"requested":"x"}}}`, m.ID)
	case m.Method == "server/discover":
		answer(`{"supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"resultType":"complete","ttlMs":0,"cacheScope":"private"}`)
	case m.Method == "tools/list":
		answer(statelessTools)
	case m.Method == "tools/call" && ss.call != nil:
		answer(ss.call(m, params))
	case m.Method == "tools/call":
		answer(`{"content":[{"type":"text","text":"{\"ok\":true}"}],"resultType":"complete"}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"Method not found: %s"}}`, m.ID, m.Method)
	}
}

func (ss *statelessServer) seen() []seenRequest {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return append([]seenRequest(nil), ss.reqs...)
}

func connectStateless(t *testing.T, ss *statelessServer, o Options) *Session {
	t.Helper()
	ss.t = t
	srv := httptest.NewServer(ss)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 5 * time.Second
	}
	sess, err := Connect(ctx, &http.Client{}, srv.URL+"/mcp", StaticToken("t"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}

// TestStatelessRequests: against a 2026-07-28 server there is no
// handshake; every request carries the version in its header and its
// _meta, the client's capabilities and info, Mcp-Method, and for a tool
// call Mcp-Name and the arguments its schema designates (encoded where a
// header cannot carry them, none for null or undesignated ones). Tools
// whose designations break the rules are left out and not called.
func TestStatelessRequests(t *testing.T) {
	ss := &statelessServer{}
	sess := connectStateless(t, ss, Options{Version: "1.2.3"})
	ctx := context.Background()
	tools, err := sess.Tools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools) != 1 || tools[0].Name != "mirror" {
		t.Fatalf("tools %+v, want only mirror", tools)
	}
	args := map[string]any{"region": "Zürich ", "priority": float64(42), "verbose": nil, "note": "plain", "ratio": 0.5, "query": "SELECT"}
	if err := sess.Call(ctx, "mirror", args, &struct{}{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Call(ctx, "bad_header", nil, &struct{}{}); err == nil || !strings.Contains(err.Error(), "cannot be called") {
		t.Fatalf("calling a tool with a broken header designation: %v", err)
	}
	reqs := ss.seen()
	var methods []string
	for _, r := range reqs {
		methods = append(methods, r.method)
		if v := r.header.Get("MCP-Protocol-Version"); v != StatelessVersion {
			t.Errorf("%s: MCP-Protocol-Version %q", r.method, v)
		}
		var meta map[string]json.RawMessage
		_ = json.Unmarshal(r.params["_meta"], &meta)
		if string(meta[metaProtocolVersion]) != `"`+StatelessVersion+`"` || meta[metaClientCapabilities] == nil ||
			!strings.Contains(string(meta[metaClientInfo]), `"1.2.3"`) {
			t.Errorf("%s: _meta %v", r.method, meta)
		}
		if r.header.Get("Mcp-Method") != r.method {
			t.Errorf("%s: Mcp-Method %q", r.method, r.header.Get("Mcp-Method"))
		}
		if r.header.Get("Mcp-Session-Id") != "" {
			t.Errorf("%s: a session id", r.method)
		}
	}
	if strings.Join(methods, " ") != "server/discover tools/list tools/call" {
		t.Fatalf("requests %q", methods)
	}
	h := reqs[2].header
	want := map[string]string{"Mcp-Name": "mirror", "Mcp-Param-Region": "=?base64?WsO8cmljaCA=?=", "Mcp-Param-Priority": "42", "Mcp-Param-Note": "plain"}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
	for _, k := range []string{"Mcp-Param-Verbose", "Mcp-Param-Ratio", "Mcp-Param-Query"} {
		if _, ok := h[k]; ok {
			t.Errorf("%s sent: %q", k, h.Get(k))
		}
	}
}

// TestStatelessVersionRetry: a server that refuses the version asked
// for, naming the versions it speaks, is asked again with one of them.
func TestStatelessVersionRetry(t *testing.T) {
	ss := &statelessServer{firstRefused: true}
	sess := connectStateless(t, ss, Options{})
	if _, err := sess.Tools(context.Background()); err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, r := range ss.seen() {
		methods = append(methods, r.method)
	}
	if strings.Join(methods, " ") != "server/discover server/discover tools/list" {
		t.Fatalf("requests %q", methods)
	}
}

// TestInputRequired: a result that asks for input is answered through
// OnElicit and the request sent again under a new id, with the answers
// and the server's request state exactly as sent, or none when it sent
// none; another request carries neither. Rounds are bounded.
func TestInputRequired(t *testing.T) {
	const state = `"{\"nonce\":\"a\u00e9\",\"n\":1}"`
	ss := &statelessServer{}
	ss.call = func(m message, params map[string]json.RawMessage) string {
		var name string
		_ = json.Unmarshal(params["name"], &name)
		ask := `{"resultType":"input_required","inputRequests":{"confirm":{"method":"elicitation/create","params":{"message":"Sure?","requestedSchema":{"type":"object","properties":{"confirmed":{"type":"boolean"}}}}}}`
		switch {
		case name == "forever":
			return ask + `,"requestState":"x"}`
		case params["inputResponses"] != nil:
			return `{"content":[{"type":"text","text":"{\"ok\":true}"}]}`
		case name == "with_state":
			return ask + `,"requestState":` + state + `}`
		case name == "no_state":
			return ask + `}`
		}
		return `{"content":[{"type":"text","text":"{\"ok\":true}"}],"resultType":"complete"}`
	}
	asked := 0
	sess := connectStateless(t, ss, Options{OnElicit: func(_ context.Context, e Elicitation) (ElicitAction, map[string]any) {
		asked++
		return ElicitAccept, map[string]any{"confirmed": true}
	}})
	ctx := context.Background()
	// The tools are not listed: their schemas designate no headers.
	for _, tool := range []string{"with_state", "other", "no_state"} {
		sess.mu.Lock()
		sess.paramHeaders[tool] = nil
		sess.mu.Unlock()
		var out struct{ OK bool }
		if err := sess.Call(ctx, tool, nil, &out); err != nil || !out.OK {
			t.Fatalf("%s: %+v, %v", tool, out, err)
		}
	}
	if asked != 2 {
		t.Fatalf("asked %d times, want 2", asked)
	}
	var calls []seenRequest
	for _, r := range ss.seen() {
		if r.method == "tools/call" {
			calls = append(calls, r)
		}
	}
	if len(calls) != 5 {
		t.Fatalf("%d calls, want 5", len(calls))
	}
	first, retry := calls[0], calls[1]
	if first.id == retry.id {
		t.Errorf("the retry kept the id %s", first.id)
	}
	if string(retry.params["requestState"]) != state {
		t.Errorf("request state %s, want %s exactly", retry.params["requestState"], state)
	}
	if !strings.Contains(string(retry.params["inputResponses"]), `"confirm":{"action":"accept","content":{"confirmed":true}}`) {
		t.Errorf("input responses %s", retry.params["inputResponses"])
	}
	if calls[2].params["requestState"] != nil || calls[2].params["inputResponses"] != nil {
		t.Errorf("another request carried the state: %v", calls[2].params)
	}
	if calls[4].params["requestState"] != nil || calls[4].params["inputResponses"] == nil {
		t.Errorf("the retry of a request without state: %v", calls[4].params)
	}
	sess.mu.Lock()
	sess.paramHeaders["forever"] = nil
	sess.mu.Unlock()
	if err := sess.Call(ctx, "forever", nil, &struct{}{}); err == nil || !strings.Contains(err.Error(), "asked for input") {
		t.Fatalf("a server that always asks: %v", err)
	}
}

// TestStatelessStreamNotResumed: a stream of the stateless protocol that
// ends before its answer, after an event with an id, is not resumed: the
// protocol has no GET.
func TestStatelessStreamNotResumed(t *testing.T) {
	ss := &statelessServer{t: t}
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet:
			gets.Add(1)
			w.WriteHeader(http.StatusMethodNotAllowed)
		case r.Header.Get("Mcp-Method") == "tools/call":
			sse(w, "id: ev-1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n")
		default:
			ss.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := Connect(ctx, &http.Client{}, srv.URL, StaticToken("t"), Options{RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	err = sess.Call(ctx, "mirror", nil, &struct{}{})
	if err == nil || !strings.Contains(err.Error(), "ended without an answer") {
		t.Fatalf("err %v, want the stream's end", err)
	}
	if n := gets.Load(); n != 0 {
		t.Errorf("%d GETs in the stateless protocol", n)
	}
}

// TestStatelessUnknownToolListedOnce: the call of a tool the session has
// not seen lists the tools first; that list also tells that the server
// lacks it, without listing the tools again.
func TestStatelessUnknownToolListedOnce(t *testing.T) {
	ss := &statelessServer{call: func(message, map[string]json.RawMessage) string {
		return `{"content":[{"type":"text","text":"no such tool"}],"isError":true,"resultType":"complete"}`
	}}
	sess := connectStateless(t, ss, Options{})
	res, err := sess.CallRaw(context.Background(), "nonesuch", nil)
	if err != nil || !res.IsError || !res.UnknownTool {
		t.Fatalf("result %+v, %v, want an error result of an unknown tool", res, err)
	}
	lists := 0
	for _, r := range ss.seen() {
		if r.method == "tools/list" {
			lists++
		}
	}
	if lists != 1 {
		t.Errorf("the tools listed %d times, want once", lists)
	}
}
