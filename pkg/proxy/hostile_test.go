package proxy

import (
	"bufio"
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

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
)

// The hostile servers of these tests are hand-written handlers: each
// produces one fault of a server in the wild (a restart loop, a stall, an
// answer that is not JSON, ...), which no well-behaved server does.

// rawHost drives a proxy with raw JSON-RPC lines, as a host would.
type rawHost struct {
	t     *testing.T
	in    *io.PipeWriter
	lines chan map[string]any
	done  chan struct{}
	logs  *logs
	stop  context.CancelFunc
}

func startRaw(t *testing.T, endpoint string, o Options) *rawHost {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := &rawHost{t: t, in: inW, lines: make(chan map[string]any, 64), done: make(chan struct{}), logs: &logs{}}
	o.Endpoint, o.In, o.Out, o.Log = endpoint, inR, outW, h.logs.add
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	p := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() { _ = p.Run(ctx); outW.Close(); close(h.done) }()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("stdout line %q: %v", sc.Text(), err)
			}
			h.lines <- m
		}
		close(h.lines)
	}()
	t.Cleanup(func() { cancel(); inW.Close() })
	return h
}

func (h *rawHost) send(s string) {
	h.t.Helper()
	if _, err := io.WriteString(h.in, s+"\n"); err != nil {
		h.t.Fatal(err)
	}
}

// next waits for the host's next message.
func (h *rawHost) next(within time.Duration) map[string]any {
	h.t.Helper()
	select {
	case m, ok := <-h.lines:
		if !ok {
			h.t.Fatalf("the proxy's stdout closed\n%s", h.logs)
		}
		return m
	case <-time.After(within):
		h.t.Fatalf("nothing reached the host within %s\n%s", within, h.logs)
	}
	return nil
}

func (h *rawHost) initialize() {
	h.t.Helper()
	h.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if m := h.next(5 * time.Second); m["id"] != float64(1) || m["result"] == nil {
		h.t.Fatalf("initialize: %v", m)
	}
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

const initResult = `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"hostile","version":"1"}}}`

// rpc reads a JSON-RPC message of a request.
func rpc(r *http.Request) (method string, id json.RawMessage) {
	var m struct {
		Method string          `json:"method"`
		ID     json.RawMessage `json:"id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&m)
	return m.Method, m.ID
}

// counter counts a server's requests.
type counter struct{ n atomic.Int64 }

func (c *counter) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { c.n.Add(1); h(w, r) }
}

// TestStreamBacksOff: a server that takes initialize but answers the
// standalone stream's GET with 404 for ever (a server mid-restart) gets
// no more than about one request a second; before, the proxy
// re-initialized thousands of times a second.
func TestStreamBacksOff(t *testing.T) {
	var c counter
	srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			http.NotFound(w, r)
			return
		}
		method, id := rpc(r)
		switch method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", fmt.Sprint(time.Now().UnixNano()))
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, initResult, id)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	h := startRaw(t, srv.URL, Options{})
	h.initialize()
	start := c.n.Load()
	time.Sleep(4 * time.Second)
	n := c.n.Load() - start
	// Waits of about 1, 2 and 4 s: three rounds of a GET and a new
	// session (initialize, initialized) at the most, and some jitter.
	if n > 12 {
		t.Errorf("%d requests in 4 s, want at most 12 (back-off)\n%s", n, h.logs)
	}
	if lines := strings.Count(h.logs.String(), "again in"); lines == 0 || lines > 4 {
		t.Errorf("%d back-off log lines in 4 s, want one per step\n%s", lines, h.logs)
	}
}

// TestStopsOnSignal: with stdin still open, a signal (the context's end)
// stops the proxy within 2 s; the request under way is answered with an
// error, and the session is ended with a DELETE.
func TestStopsOnSignal(t *testing.T) {
	var deletes atomic.Int64
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodDelete:
			deletes.Add(1)
			return
		case http.MethodGet:
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		method, id := rpc(r)
		switch method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "s1")
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, initResult, id)
		case "tools/call":
			select { // a slow tool
			case <-r.Context().Done():
			case <-release:
			}
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	h := startRaw(t, srv.URL, Options{})
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow"}}`)
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	h.stop()
	m := h.next(2 * time.Second)
	if m["id"] != float64(2) || m["error"] == nil {
		t.Errorf("the request under way: %v", m)
	}
	select {
	case <-h.done:
	case <-time.After(2*time.Second - time.Since(began)):
		t.Fatalf("the proxy did not stop within 2 s\n%s", h.logs)
	}
	if deletes.Load() != 1 {
		t.Errorf("%d DELETE, want the session ended", deletes.Load())
	}
}

// hostileServer answers initialize and initialized, and tools/call with
// call.
func hostileServer(t *testing.T, call http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.Method == http.MethodDelete {
			return
		}
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(body, &m)
		switch m.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "s1")
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, initResult, m.ID)
		case "tools/call":
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			call(w, r)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestNotJSONAnswerIsAnError: a 200 text/html answer to a request gets
// the host a JSON-RPC error, instead of nothing.
func TestNotJSONAnswerIsAnError(t *testing.T) {
	srv := hostileServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>maintenance</html>")
	})
	h := startRaw(t, srv.URL, Options{})
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}`)
	m := h.next(3 * time.Second)
	e, _ := m["error"].(map[string]any)
	if m["id"] != float64(2) || e == nil || !strings.Contains(fmt.Sprint(e["message"]), "text/html, not JSON") {
		t.Errorf("answer %v", m)
	}
}

// TestInitializeStreamStaysOpen: a server whose initialize answer is an
// SSE stream that stays open after the result (keep-alives only) still
// gets the host's next messages: they go once the result is in.
func TestInitializeStreamStaysOpen(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		method, id := rpc(r)
		switch method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "s1")
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "event: message\ndata: "+initResult+"\n\n", id)
			w.(http.Flusher).Flush()
			for {
				select {
				case <-release:
					return
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
					io.WriteString(w, ": keep-alive\n\n")
					w.(http.Flusher).Flush()
				}
			}
		case "tools/list":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"tools":[]}}`, id)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	defer close(release)
	h := startRaw(t, srv.URL, Options{})
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if m := h.next(3 * time.Second); m["id"] != float64(2) || m["result"] == nil {
		t.Errorf("tools/list after an initialize whose stream stays open: %v", m)
	}
}

// TestCancelledAbortsTheUpstreamRequest: the host's
// notifications/cancelled closes the upstream request's connection, and
// the host gets no answer for it.
func TestCancelledAbortsTheUpstreamRequest(t *testing.T) {
	aborted, started := make(chan struct{}), make(chan struct{})
	srv := hostileServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, id := rpc(r)
		if string(id) == "3" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":3,"result":{"content":[]}}`)
			return
		}
		close(started)
		<-r.Context().Done() // a tool that never ends, until its connection does
		close(aborted)
	})
	h := startRaw(t, srv.URL, Options{})
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"forever"}}`)
	<-started
	h.send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2,"reason":"the user stopped it"}}`)
	select {
	case <-aborted:
	case <-time.After(2 * time.Second):
		t.Fatalf("the upstream request stayed open after the host cancelled it\n%s", h.logs)
	}
	h.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"quick"}}`)
	if m := h.next(3 * time.Second); m["id"] != float64(3) {
		t.Errorf("after the cancellation the host got %v, want only the answer to 3", m)
	}
}

// TestIdleAnswerEnds: an answer from which no byte comes gets the host an
// error after the idle timeout, instead of nothing for ever.
func TestIdleAnswerEnds(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := hostileServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select { // then silence
		case <-release:
		case <-r.Context().Done():
		}
	})
	h := startRaw(t, srv.URL, Options{IdleTimeout: 300 * time.Millisecond})
	h.initialize()
	began := time.Now()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"stalls"}}`)
	m := h.next(3 * time.Second)
	if m["id"] != float64(2) || m["error"] == nil {
		t.Errorf("answer %v", m)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the error came after %s, want about the idle timeout", took)
	}
}

// TestRedirectKeepsTheSessionHome: the standalone stream's GET redirected
// to another origin carries no Mcp-Session-Id (nor the token).
func TestRedirectKeepsTheSessionHome(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Mcp-Session-Id")+"|"+r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			http.Redirect(w, r, other.URL+"/elsewhere", http.StatusTemporaryRedirect)
			return
		}
		method, id := rpc(r)
		if method == "initialize" {
			w.Header().Set("Mcp-Session-Id", "secret-session")
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, initResult, id)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	// With the authorization ncmcp puts in front: the token goes to the
	// server's origin only.
	h := startRaw(t, srv.URL, Options{Authorize: authorize(t, srv.URL, mcpclient.StaticToken("secret-token"))})
	h.initialize()
	deadline := time.Now().Add(3 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("the redirected GET never arrived")
	}
	for _, s := range seen {
		if s != "|" {
			t.Errorf("the other origin got %q (session|authorization)", s)
		}
	}
}

// TestBadEventIDIsNotSentBack: an SSE id with a carriage return inside
// (which a Last-Event-ID header cannot carry) is not kept.
func TestBadEventIDIsNotSentBack(t *testing.T) {
	p := New(Options{HTTP: http.DefaultClient})
	last, _ := p.readEvents(strings.NewReader("id: good\ndata: {}\n\nid: a\rb\ndata: {}\n\n"), func([]byte) {})
	if last != "good" {
		t.Errorf("last event id %q, want the last valid one", last)
	}
}

// TestNotAnMCPServer: a URL where a plain file server answers gets the
// host's initialize an error that says so and names the URL.
func TestNotAnMCPServer(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusNotFound, http.StatusNotImplemented} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			io.WriteString(w, "<html>a file server</html>")
		}))
		h := startRaw(t, srv.URL, Options{})
		h.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
		m := h.next(3 * time.Second)
		e, _ := m["error"].(map[string]any)
		if e == nil || !strings.Contains(fmt.Sprint(e["message"]), srv.URL+" is not an MCP server") {
			t.Errorf("HTTP %d: %v", status, m)
		}
		srv.Close()
	}
}
