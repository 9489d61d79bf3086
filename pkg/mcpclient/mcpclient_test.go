package mcpclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestBearerStaysOnItsOrigin: an MCP endpoint that redirects to another
// origin (307, as a hostile or misconfigured server may) must not get the
// token sent there, whichever client follows the redirect.
func TestBearerStaysOnItsOrigin(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer other.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/mcp", http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Connect(ctx, &http.Client{}, redirecting.URL+"/mcp", "SECRET-TOKEN", Options{})
	if err == nil {
		t.Fatal("connected through a redirect to a server that refuses")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) == 0 {
		t.Fatal("the redirect was not followed: the test proves nothing")
	}
	for _, h := range leaked {
		if strings.Contains(h, "SECRET-TOKEN") {
			t.Fatalf("the token reached another origin: %q", h)
		}
	}
}

// TestStalledStreamIsBounded: an endpoint that answers with an event stream
// and then sends only keep-alives must not hold a request for ever.
func TestStalledStreamIsBounded(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	defer close(stop)
	start := time.Now()
	_, err := Connect(context.Background(), &http.Client{}, srv.URL+"/mcp", "t", Options{RequestTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("connected to a stalled stream")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the request's deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
}

// TestInsufficientScope: a 403 insufficient_scope names the scopes to log
// in with.
func TestInsufficientScope(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	var mu sync.Mutex
	deny := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := deny
		mu.Unlock()
		if d {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="notes.read notes.write", error_description="needs notes"`)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := Connect(ctx, &http.Client{}, srv.URL+"/mcp", "t", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	mu.Lock()
	deny = true
	mu.Unlock()
	_, err = sess.Tools(ctx)
	var se *InsufficientScopeError
	if !errors.As(err, &se) || strings.Join(se.Scopes, " ") != "notes.read notes.write" {
		t.Fatalf("err = %v, want an InsufficientScopeError naming notes.read notes.write", err)
	}
}

// TestElicitationAnswered: a server's form elicitation during a tool call
// reaches OnElicit, and its answer (defaults plus changes) reaches the
// server; without OnElicit the capability is not declared.
func TestElicitationAnswered(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
	got := make(chan *mcp.ElicitResult, 1)
	server.AddTool(&mcp.Tool{Name: "start", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		caps := req.Session.InitializeParams().Capabilities
		if caps == nil || caps.Elicitation == nil {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: `{"elicited":false}`}}}, nil
		}
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Mode: "form", Message: "Open https://cloud.example/x then confirm",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{
				"acknowledged": map[string]any{"type": "boolean", "default": false},
				"note":         map[string]any{"type": "string"},
			}}})
		if err != nil {
			return nil, err
		}
		got <- res
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: `{"elicited":true}`}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seen Elicitation
	sess, err := Connect(ctx, &http.Client{}, srv.URL, "t", Options{OnElicit: func(_ context.Context, e Elicitation) (ElicitAction, map[string]any) {
		seen = e
		return ElicitAccept, map[string]any{"note": "ok"}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var out struct{ Elicited bool }
	if err := sess.Call(ctx, "start", nil, &out); err != nil || !out.Elicited {
		t.Fatalf("call = %+v, %v", out, err)
	}
	r := <-got
	if seen.Mode != "form" || !strings.Contains(seen.Message, "https://cloud.example/x") || r.Action != "accept" ||
		r.Content["acknowledged"] != false || r.Content["note"] != "ok" {
		t.Fatalf("elicitation %+v answered %+v", seen, r)
	}
	plain, err := Connect(ctx, &http.Client{}, srv.URL, "t", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Call(ctx, "start", nil, &out); err != nil || out.Elicited {
		t.Fatalf("without OnElicit: %+v, %v", out, err)
	}
}
