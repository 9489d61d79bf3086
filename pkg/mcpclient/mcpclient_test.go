package mcpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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
	_, err := Connect(ctx, &http.Client{}, redirecting.URL+"/mcp", StaticToken("SECRET-TOKEN"), Options{})
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
	_, err := Connect(context.Background(), &http.Client{}, srv.URL+"/mcp", StaticToken("t"), Options{RequestTimeout: 300 * time.Millisecond})
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
	sess, err := Connect(ctx, &http.Client{}, srv.URL+"/mcp", StaticToken("t"), Options{})
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
	sess, err := Connect(ctx, &http.Client{}, srv.URL, StaticToken("t"), Options{OnElicit: func(_ context.Context, e Elicitation) (ElicitAction, map[string]any) {
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
	plain, err := Connect(ctx, &http.Client{}, srv.URL, StaticToken("t"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Call(ctx, "start", nil, &out); err != nil || out.Elicited {
		t.Fatalf("without OnElicit: %+v, %v", out, err)
	}
}

// renewingCredentials hands out tokens t0, t1, ... and records the
// refusals it was asked to renew for; renewErr makes it give up.
type renewingCredentials struct {
	mu       sync.Mutex
	n        int
	refusals []Refusal
	renewErr error
}

func (c *renewingCredentials) Token(context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "t" + string(rune('0'+c.n)), nil
}

func (c *renewingCredentials) Renew(_ context.Context, tok string, r Refusal) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refusals = append(c.refusals, r)
	if c.renewErr != nil {
		return "", c.renewErr
	}
	c.n++
	return "t" + string(rune('0'+c.n)), nil
}

// guardedServer is an MCP server (the official SDK's) with one tool that
// accepts only the tokens good says are good for the request's method.
func guardedServer(t *testing.T, good func(token, method string) (status int, challenge string)) *httptest.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
	server.AddTool(&mcp.Tool{Name: "write", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "written"}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &msg)
		if status, ch := good(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), msg.Method); status != 0 {
			w.Header().Set("WWW-Authenticate", ch)
			w.WriteHeader(status)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRenewal: a refused token is renewed through the credentials and the
// request sent again; a 403 insufficient_scope hands its challenge on (for
// a step-up); a request refused after two renewals gives up instead of
// looping, and so do credentials that refuse to renew.
func TestRenewal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// t0 is expired; t1 may read; t2 may also write.
	srv := guardedServer(t, func(tok, method string) (int, string) {
		switch {
		case tok == "t0":
			return http.StatusUnauthorized, `Bearer error="invalid_token"`
		case tok == "t1" && method == "tools/call":
			return http.StatusForbidden, `Bearer error="insufficient_scope", scope="mcp:read mcp:write"`
		}
		return 0, ""
	})
	creds := &renewingCredentials{}
	sess, err := Connect(ctx, &http.Client{}, srv.URL+"/mcp", creds, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.CallRaw(ctx, "write", nil)
	if err != nil || len(res.Text) != 1 || res.Text[0] != "written" {
		t.Fatalf("call: %+v, %v", res, err)
	}
	if len(creds.refusals) != 2 || creds.refusals[0].Status != 401 || creds.refusals[1].Status != 403 ||
		strings.Join(creds.refusals[1].Challenge.Scopes(), " ") != "mcp:read mcp:write" {
		t.Fatalf("refusals %+v", creds.refusals)
	}

	// A server that refuses every token: two renewals for the request,
	// then the refusal's error.
	never := guardedServer(t, func(string, string) (int, string) {
		return http.StatusForbidden, `Bearer error="insufficient_scope", scope="mcp:admin"`
	})
	creds = &renewingCredentials{}
	_, err = Connect(ctx, &http.Client{}, never.URL+"/mcp", creds, Options{})
	var se *InsufficientScopeError
	if !errors.As(err, &se) || len(creds.refusals) != 2 {
		t.Fatalf("err = %v after %d renewals", err, len(creds.refusals))
	}
	// Credentials that give up: their error is the session's.
	gone := errors.New("log in again")
	creds = &renewingCredentials{renewErr: gone}
	_, err = Connect(ctx, &http.Client{}, never.URL+"/mcp", creds, Options{})
	if !errors.Is(err, gone) {
		t.Fatalf("err = %v, want the credentials' error", err)
	}
}
