package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
)

// refreshingCreds give the token "t"; the first Token call after
// refreshNext is set renews it at the IdP first, with the request's
// context, as session.Credentials does. Renew gives up with a numbered
// reason.
type refreshingCreds struct {
	idp         string
	refreshNext atomic.Bool
	renewals    atomic.Int64
}

func (c *refreshingCreds) Token(ctx context.Context) (string, error) {
	if c.refreshNext.CompareAndSwap(true, false) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.idp, strings.NewReader("grant_type=refresh_token"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
	}
	return "t", nil
}

func (c *refreshingCreds) Renew(context.Context, string, mcpclient.Refusal) (string, error) {
	return "", fmt.Errorf("renewal %d failed", c.renewals.Add(1))
}

// authorize is the authorization the proxy gets in ncmcp.
func authorize(t *testing.T, endpoint string, creds mcpclient.Credentials) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		at, err := mcpclient.NewAuthTransport(next, endpoint, creds)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
}

// TestOrderAroundARefresh: of host messages A then B, B is not sent
// while A's token is refreshed on the way. The IdP holds the refresh
// until the server saw B, or for a second: when the refresh request
// itself released B, the server saw B first.
func TestOrderAroundARefresh(t *testing.T) {
	sawB := make(chan struct{})
	var overtaken atomic.Bool
	idp := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		select {
		case <-sawB:
			overtaken.Store(true)
		case <-time.After(time.Second):
		}
	}))
	defer idp.Close()
	var mu sync.Mutex
	var order []string
	srv := hostileServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, id := rpc(r)
		mu.Lock()
		order = append(order, string(id))
		mu.Unlock()
		if string(id) == `"B"` {
			close(sawB)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[]}}`, id)
	})
	creds := &refreshingCreds{idp: idp.URL}
	h := startRaw(t, srv.URL, Options{Authorize: authorize(t, srv.URL, creds)})
	h.initialize()
	// Once a first call is answered, the initialized notification is sent
	// too: the refresh falls on A.
	h.send(`{"jsonrpc":"2.0","id":"first","method":"tools/call","params":{"name":"a"}}`)
	if m := h.next(5 * time.Second); m["result"] == nil {
		t.Fatalf("answer %v", m)
	}
	creds.refreshNext.Store(true)
	h.send(`{"jsonrpc":"2.0","id":"A","method":"tools/call","params":{"name":"a"}}`)
	h.send(`{"jsonrpc":"2.0","id":"B","method":"tools/call","params":{"name":"b"}}`)
	for range 2 {
		if m := h.next(5 * time.Second); m["result"] == nil {
			t.Fatalf("answer %v", m)
		}
	}
	// B goes once A is written; A and B then travel on connections of
	// their own, so the order in which the server's handlers run is not
	// the point: B must not have gone while A waited for its token.
	if overtaken.Load() {
		mu.Lock()
		defer mu.Unlock()
		t.Errorf("B reached the server while A's token was being refreshed (the server saw %v)", order)
	}
}

// TestMemoryBudget: 60 requests whose answers are SSE data lines just
// under the size limit that never end stay within the budget of all
// messages in flight: those that find no room get an error at once, the
// others at the idle timeout. Before, each held up to three copies of
// its line and none was answered.
func TestMemoryBudget(t *testing.T) {
	const n, maxMessage = 60, 1 << 20
	// Just under the size limit, then nothing: each answer holds what it
	// got until the idle timeout. One payload for all: the test's own
	// allocations must not count.
	payload := []byte("event: message\ndata: " + strings.Repeat("x", maxMessage*9/10))
	srv := hostileServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(payload)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	h := startRaw(t, srv.URL, Options{MaxMessage: maxMessage, MaxConcurrent: n, IdleTimeout: 2 * time.Second})
	h.initialize()
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	for i := range n {
		h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"flood"}}`, 100+i))
	}
	answered, tooLarge := map[float64]bool{}, 0
	for range n {
		m := h.next(10 * time.Second)
		e, _ := m["error"].(map[string]any)
		switch {
		case e != nil && e["code"] == float64(CodeTooLarge):
			tooLarge++
		case e != nil && e["code"] == float64(CodeUnreachable) && strings.Contains(fmt.Sprint(e["message"]), "no byte"):
		default:
			t.Fatalf("answer %v, want an error: no room, or idle", m)
		}
		answered[m["id"].(float64)] = true
	}
	close(stop)
	<-sampled
	if tooLarge < n/2 {
		t.Errorf("%d of %d answers found no room, want most: the budget holds about 4", tooLarge, n)
	}
	if len(answered) != n {
		t.Errorf("%d distinct requests answered, want %d", len(answered), n)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	budget := int64(4 * maxMessage)
	t.Logf("heap grew by %.1f MiB at most, budget %d MiB", float64(grew)/(1<<20), budget>>20)
	// The budget, and per connection the buffers of the proxy's reader,
	// the HTTP transport and this test's server: without the budget, each
	// of the 60 held over 1 MiB (93 MiB in all, measured).
	if bound := budget + n*448<<10; grew > bound {
		t.Errorf("the heap grew by %d MiB, over %d MiB: %d MiB of budget, and buffers", grew>>20, bound>>20, budget>>20)
	}
}

// TestConcurrencyCap: with MaxConcurrent 4, no more than 4 requests are
// under way at the server; the others wait and go in the host's order,
// one as each slot frees; a waiting request the host cancels is never
// sent.
func TestConcurrencyCap(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan string, 64)
	var now, most atomic.Int64
	srv := hostileServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, id := rpc(r)
		c := now.Add(1)
		for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
		}
		arrived <- string(id)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		now.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[]}}`, id)
	})
	h := startRaw(t, srv.URL, Options{MaxConcurrent: 4})
	h.initialize()
	for i := 10; i < 22; i++ {
		h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"slow"}}`, i))
	}
	next := func() string {
		t.Helper()
		select {
		case id := <-arrived:
			return id
		case <-time.After(5 * time.Second):
			t.Fatalf("no request reached the server\n%s", h.logs)
		}
		return ""
	}
	var first []string
	for range 4 {
		first = append(first, next())
	}
	slices.Sort(first)
	if !slices.Equal(first, []string{"10", "11", "12", "13"}) {
		t.Errorf("the first requests at the server: %v", first)
	}
	// 20 waits for its turn: cancelled, it never goes.
	h.send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":20}}`)
	// The proxy answers a line that is not JSON as it reads it: once the
	// answer is in, the cancellation before it was applied.
	h.send(`not JSON`)
	if m := h.next(5 * time.Second); m["error"] == nil || m["error"].(map[string]any)["code"] != float64(CodeParseError) {
		t.Fatalf("answer %v, want a parse error", m)
	}
	// One answer at a time: each frees one slot, for the next in order.
	for _, want := range []string{"14", "15", "16", "17", "18", "19", "21"} {
		release <- struct{}{}
		if got := next(); got != want {
			t.Fatalf("request %s reached the server, want %s", got, want)
		}
	}
	close(release)
	got := map[float64]bool{}
	for range 11 {
		m := h.next(5 * time.Second)
		if m["result"] == nil {
			t.Fatalf("answer %v", m)
		}
		got[m["id"].(float64)] = true
	}
	if got[20] {
		t.Error("the cancelled request was answered")
	}
	if most.Load() != 4 {
		t.Errorf("%d requests at once at the server, want at most (and up to) 4", most.Load())
	}
}

// TestOtherForbiddenIsTheServers: a 403 without an insufficient_scope
// challenge is the server's answer, not a refusal of the token: its
// JSON-RPC error reaches the host as it is.
func TestOtherForbiddenIsTheServers(t *testing.T) {
	srv := hostileServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, id := rpc(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32003,"message":"the folder is not shared with you"}}`, id)
	})
	h := startRaw(t, srv.URL, Options{})
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}`)
	m := h.next(3 * time.Second)
	e, _ := m["error"].(map[string]any)
	if e == nil || e["code"] != float64(-32003) || e["message"] != "the folder is not shared with you" {
		t.Errorf("answer %v, want the server's own error", m)
	}
}

// TestRefusalExplainedPerRequest: each refused request is explained by
// its own refusal, once. Request 2's renewal fails; request 3 is
// redirected to another origin, which refuses it (no token goes there,
// so none is renewed): its reason is its own HTTP 401, not request 2's.
func TestRefusalExplainedPerRequest(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer other.Close()
	srv := hostileServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, id := rpc(r)
		if string(id) == "3" {
			http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
	creds := &refreshingCreds{}
	var explained atomic.Int64
	h := startRaw(t, srv.URL, Options{Authorize: authorize(t, srv.URL, creds), Explain: func(err error) error {
		explained.Add(1)
		return err
	}})
	h.initialize()
	for _, c := range []struct{ id, want string }{{"2", "renewal 1 failed"}, {"3", "refused the access token (HTTP 401)"}} {
		h.send(`{"jsonrpc":"2.0","id":` + c.id + `,"method":"tools/call","params":{"name":"x"}}`)
		m := h.next(3 * time.Second)
		e, _ := m["error"].(map[string]any)
		if e == nil || e["code"] != float64(CodeUnauthorized) || !strings.HasSuffix(fmt.Sprint(e["message"]), c.want) {
			t.Errorf("request %s: %v, want a refusal ending %q", c.id, m, c.want)
		}
	}
	if explained.Load() != 2 {
		t.Errorf("Explain called %d times for 2 refusals", explained.Load())
	}
}

// TestAnswerNotHeldBack: with the one slot held by a tool call whose
// server waits for the host's answer to its elicitation, a ping the host
// sends meanwhile waits for its turn, but the answer sent after it is not
// held back with it. Before, the answer waited behind the ping, which
// waited for the call, which waited for the answer: for ever.
func TestAnswerNotHeldBack(t *testing.T) {
	u := newUpstream(t)
	h := startRaw(t, u.srv.URL, Options{MaxConcurrent: 1})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"elicitation":{}},"clientInfo":{"name":"raw","version":"1"}}}`)
	if m := h.next(5 * time.Second); m["id"] != float64(1) || m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ask","arguments":{}}}`)
	m := h.next(5 * time.Second)
	if m["method"] != "elicitation/create" || m["id"] == nil {
		t.Fatalf("the server's message %v, want its elicitation", m)
	}
	id, _ := json.Marshal(m["id"])
	h.send(`{"jsonrpc":"2.0","id":3,"method":"ping"}`)
	h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"action":"accept","content":{"name":"alice"}}}`, id))
	got := map[float64]map[string]any{}
	for range 2 {
		m := h.next(5 * time.Second)
		id, _ := m["id"].(float64)
		got[id] = m
	}
	if r, _ := got[2]["result"].(map[string]any); r == nil || !strings.Contains(fmt.Sprint(r["content"]), "accept alice") {
		t.Errorf("the call's answer %v, want the elicitation's result", got[2])
	}
	if got[3]["result"] == nil {
		t.Errorf("the ping's answer %v", got[3])
	}
}
