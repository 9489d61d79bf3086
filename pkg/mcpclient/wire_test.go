package mcpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The servers in this file are written by hand: they behave in ways the
// official SDK's server never does (streams that end early or never end,
// lists that never end, unknown versions), which a server in the field
// may.

// wireServer answers initialize and notifications/initialized as a
// server would, and hands every other request to handle, with the
// request's id.
type wireServer struct {
	t       *testing.T
	version string
	handle  func(w http.ResponseWriter, r *http.Request, m message)

	mu      sync.Mutex
	methods []string // methods of the POSTs, in order; "GET" and "DELETE" for those
	headers []http.Header
}

func (ws *wireServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m message
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			ws.t.Errorf("the client posted %q, not a JSON-RPC message", b)
		}
	}
	ws.mu.Lock()
	name := m.Method
	if r.Method != http.MethodPost {
		name = r.Method
	} else if name == "" {
		name = "response"
	}
	ws.methods = append(ws.methods, name)
	ws.headers = append(ws.headers, r.Header.Clone())
	ws.mu.Unlock()
	switch {
	case m.Method == "server/discover":
		// A server of the handshake's protocol does not know it, and
		// opens a session for it, as the Python SDK's does.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "probe-1")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"Method not found"}}`, m.ID)
	case m.Method == "initialize":
		v := ws.version
		if v == "" {
			v = ProtocolVersion
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "sess-1")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":%q,"capabilities":{"tools":{}},"serverInfo":{"name":"hand","version":"0"}}}`, m.ID, v)
	case m.Method == "notifications/initialized":
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		ws.handle(w, r, m)
	}
}

func (ws *wireServer) seen() []string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]string(nil), ws.methods...)
}

func startWire(t *testing.T, ws *wireServer) *Session {
	return startWireWith(t, ws, Options{})
}

func startWireWith(t *testing.T, ws *wireServer, o Options) *Session {
	t.Helper()
	ws.t = t
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o.RequestTimeout = 5 * time.Second
	sess, err := Connect(ctx, &http.Client{}, srv.URL+"/mcp", StaticToken("t"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}

func sse(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, e := range events {
		fmt.Fprint(w, e)
		w.(http.Flusher).Flush()
	}
}

// TestHeadersAndClose: requests after initialize carry the session id and
// the negotiated protocol version; Close ends the session (DELETE).
func TestHeadersAndClose(t *testing.T) {
	ws := &wireServer{version: "2025-06-18", handle: func(w http.ResponseWriter, r *http.Request, m message) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"a","inputSchema":{"type":"object","properties":{"x":{}}}}]}}`, m.ID)
	}}
	sess := startWire(t, ws)
	tools, err := sess.Tools(context.Background())
	if err != nil || len(tools) != 1 || !tools[0].Has("x") {
		t.Fatalf("tools %+v, %v", tools, err)
	}
	_ = sess.Close()
	got := ws.seen()
	if strings.Join(got, " ") != "server/discover DELETE initialize notifications/initialized tools/list DELETE" {
		t.Fatalf("requests %q", got)
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if h := ws.headers[1]; h.Get("Mcp-Session-Id") != "probe-1" {
		t.Errorf("the probe's session is not ended: DELETE with session %q", h.Get("Mcp-Session-Id"))
	}
	for i, h := range ws.headers[3:] {
		if h.Get("Mcp-Session-Id") != "sess-1" || h.Get("MCP-Protocol-Version") != "2025-06-18" {
			t.Errorf("%s: session %q, version %q", got[i+3], h.Get("Mcp-Session-Id"), h.Get("MCP-Protocol-Version"))
		}
	}
	if h := ws.headers[2]; h.Get("Mcp-Session-Id") != "" || h.Get("MCP-Protocol-Version") != "" || !strings.Contains(h.Get("Accept"), "text/event-stream") {
		t.Errorf("initialize headers %v", h)
	}
}

// TestUnknownVersion: a server that answers with a protocol version ncmcp
// does not know is refused at once.
func TestUnknownVersion(t *testing.T) {
	ws := &wireServer{version: "1999-01-01", t: t}
	srv := httptest.NewServer(ws)
	defer srv.Close()
	_, err := Connect(context.Background(), &http.Client{}, srv.URL, StaticToken("t"), Options{})
	if err == nil || !strings.Contains(err.Error(), `"1999-01-01"`) {
		t.Fatalf("err %v, want one naming the version", err)
	}
}

// TestResumesStream: a request's stream that ends before its answer, after
// an event with an id, is resumed with Last-Event-ID, and the answer found
// there.
func TestResumesStream(t *testing.T) {
	var resumedWith string
	var callID json.RawMessage
	ws := &wireServer{handle: func(w http.ResponseWriter, r *http.Request, m message) {
		if r.Method == http.MethodGet {
			resumedWith = r.Header.Get("Last-Event-ID")
			sse(w, `id: ev-2`+"\n"+`data: {"jsonrpc":"2.0","id":`+string(callID)+`,"result":{"content":[{"type":"text","text":"{\"ok\":true}"}]}}`+"\n\n")
			return
		}
		callID = m.ID
		sse(w, "id: ev-1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n")
	}}
	sess := startWire(t, ws)
	var out struct{ OK bool }
	if err := sess.Call(context.Background(), "slow", nil, &out); err != nil || !out.OK {
		t.Fatalf("call %+v, %v", out, err)
	}
	if resumedWith != "ev-1" {
		t.Fatalf("resumed with Last-Event-ID %q, want ev-1", resumedWith)
	}
}

// TestResumesAreBounded: a server whose streams always end without the
// answer gets a bounded number of resumptions, then an error.
func TestResumesAreBounded(t *testing.T) {
	ws := &wireServer{handle: func(w http.ResponseWriter, r *http.Request, m message) {
		sse(w, "id: again\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n")
	}}
	sess := startWire(t, ws)
	err := sess.Call(context.Background(), "never", nil, &struct{}{})
	if err == nil || !strings.Contains(err.Error(), "ended without an answer") {
		t.Fatalf("err %v", err)
	}
	gets := 0
	for _, m := range ws.seen() {
		if m == "GET" {
			gets++
		}
	}
	if gets != maxResumes {
		t.Fatalf("%d resumptions, want %d", gets, maxResumes)
	}
}

// TestStreamLeftOpen: a server that keeps the stream open after the answer
// does not hold the call.
func TestStreamLeftOpen(t *testing.T) {
	ws := &wireServer{handle: func(w http.ResponseWriter, r *http.Request, m message) {
		sse(w, fmt.Sprintf("data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"structuredContent\":{\"ok\":true}}}\n\n", m.ID))
		<-r.Context().Done()
	}}
	sess := startWire(t, ws)
	var out struct{ OK bool }
	start := time.Now()
	if err := sess.Call(context.Background(), "t", nil, &out); err != nil || !out.OK {
		t.Fatalf("call %+v, %v", out, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the call took %s: it waited for the stream to end", d)
	}
}

// TestServerAnswers: a ping on a request's stream is answered, an unknown
// request refused with method-not-found, before the call returns.
func TestServerAnswers(t *testing.T) {
	var mu sync.Mutex
	var answers []string
	ws := &wireServer{}
	ws.handle = func(w http.ResponseWriter, r *http.Request, m message) {
		if m.Method == "" {
			b, _ := json.Marshal(m)
			mu.Lock()
			answers = append(answers, string(b))
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
			return
		}
		sse(w, `data: {"jsonrpc":"2.0","id":"p1","method":"ping"}`+"\n\n", `data: {"jsonrpc":"2.0","id":7,"method":"roots/list"}`+"\n\n",
			fmt.Sprintf("data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"structuredContent\":{}}}\n\n", m.ID))
	}
	sess := startWire(t, ws)
	if err := sess.Call(context.Background(), "t", nil, &struct{}{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{`{"jsonrpc":"2.0","id":"p1","result":{}}`, `{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"Method not found"}}`}
	if strings.Join(answers, "\n") != strings.Join(want, "\n") {
		t.Fatalf("answers\n%s\nwant\n%s", strings.Join(answers, "\n"), strings.Join(want, "\n"))
	}
}

// TestEndlessToolList: a tool list whose cursor comes back is an error,
// not a loop.
func TestEndlessToolList(t *testing.T) {
	pages := 0
	ws := &wireServer{handle: func(w http.ResponseWriter, r *http.Request, m message) {
		pages++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"t%d"}],"nextCursor":"c%d"}}`, m.ID, pages, pages%3)
	}}
	sess := startWire(t, ws)
	_, err := sess.Tools(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cursor came back") {
		t.Fatalf("err %v", err)
	}
	if pages > 4 {
		t.Fatalf("%d pages asked for", pages)
	}
}

// TestSessionEnded: a 404 to a request of a known session says the server
// ended it; a server error's JSON-RPC body is its error.
func TestSessionEnded(t *testing.T) {
	status := http.StatusNotFound
	ws := &wireServer{handle: func(w http.ResponseWriter, r *http.Request, m message) {
		if status == http.StatusBadRequest {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Bad Request: no"}}`)
			return
		}
		w.WriteHeader(status)
	}}
	sess := startWire(t, ws)
	_, err := sess.Tools(context.Background())
	var ended *SessionEndedError
	if !errors.As(err, &ended) {
		t.Fatalf("err %v, want a SessionEndedError", err)
	}
	status = http.StatusBadRequest
	_, err = sess.Tools(context.Background())
	var rpc *RPCError
	if !errors.As(err, &rpc) || rpc.Code != -32600 {
		t.Fatalf("err %v, want the body's JSON-RPC error", err)
	}
}

// TestNotJSONRPC: an endpoint that answers initialize with HTML is
// reported with its content type.
func TestNotJSONRPC(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html></html>")
	}))
	defer srv.Close()
	_, err := Connect(context.Background(), &http.Client{}, srv.URL, StaticToken("t"), Options{})
	var he *HTTPError
	if !errors.As(err, &he) || he.ContentType != "text/html" || !strings.Contains(err.Error(), "not JSON-RPC") {
		t.Fatalf("err %v", err)
	}
}

// TestOversizedEvent: an event over the message limit ends the call with
// an error, and gives its memory back.
func TestOversizedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 64 MiB")
	}
	ws := &wireServer{handle: func(w http.ResponseWriter, r *http.Request, m message) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: ")
		chunk := strings.Repeat("x", 1<<20)
		for range maxMessage>>20 + 1 {
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
		}
	}}
	sess := startWire(t, ws)
	err := sess.Call(context.Background(), "big", nil, &struct{}{})
	if err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("err %v", err)
	}
	if sess.mem.Used() != 0 {
		t.Fatalf("%d bytes still taken", sess.mem.Used())
	}
}
