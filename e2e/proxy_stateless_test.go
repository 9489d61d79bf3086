package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ncmcp/ncmcp/pkg/devserver"
)

// TestProxyStatelessWithTheGoSDK: 'ncmcp proxy' between the official Go
// SDK's client and its server, both of the stateless protocol
// (2026-07-28), behind the dev server's authorization: the host never
// initializes, and each POST reaches the server with the access token,
// the version of the request's _meta, no session id, and the headers
// that the host cannot add through stdio and that the SDK's server checks
// against the body (Mcp-Method, Mcp-Name, Mcp-Param-*).
func TestProxyStatelessWithTheGoSDK(t *testing.T) {
	t.Parallel()
	dev := startDev(t, devserver.Options{AutoApprove: true, Generation: 2})
	s := mcp.NewServer(&mcp.Implementation{Name: "stateless", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "where", InputSchema: json.RawMessage(`{"type":"object","properties":{
	  "region":{"type":"string","x-mcp-header":"Region"},"verbose":{"type":"boolean","x-mcp-header":"Verbose"}}}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct {
				Region  string `json:"region"`
				Verbose bool   `json:"verbose"`
			}
			_ = json.Unmarshal(req.Params.Arguments, &args)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s %v", args.Region, args.Verbose)}}}, nil
		})
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
	type seen struct {
		httpMethod, method string
		header             http.Header
	}
	var mu sync.Mutex
	var requests []seen
	// The MCP endpoint's requests with a token go to the SDK's server;
	// the rest (the challenge, the authorization) to the dev server.
	h := newHostile(t, dev, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/mcp" || r.Header.Get("Authorization") == "" {
			return false
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		var m struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		requests = append(requests, seen{r.Method, m.Method, r.Header.Clone()})
		mu.Unlock()
		sdk.ServeHTTP(w, r)
		return true
	})
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	e.mustRun("login", "--server", h.URL, "--client-id", devserver.PublicClientID)
	mu.Lock()
	requests = nil
	mu.Unlock()
	host, err := proxyHost(t, e, "--server", h.URL, "--no-login")
	if err != nil {
		t.Fatal(err)
	}
	if v := host.cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("the host negotiated %q through the proxy, want 2026-07-28\nproxy stderr:\n%s", v, host.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if tools, err := host.cs.ListTools(ctx, nil); err != nil || len(tools.Tools) != 1 {
		t.Fatalf("tools/list: %v, %v\nproxy stderr:\n%s", tools, err, host.stderr)
	}
	res, err := host.cs.CallTool(ctx, &mcp.CallToolParams{Name: "where", Arguments: map[string]any{"region": "eu west", "verbose": true}})
	if err != nil || res.IsError || text(res) != "eu west true" {
		t.Fatalf("tools/call: %v, %v\nproxy stderr:\n%s", res, err, host.stderr)
	}
	_ = host.cs.Close()

	mu.Lock()
	defer mu.Unlock()
	var methods []string
	for _, r := range requests {
		methods = append(methods, r.method)
		if r.httpMethod != http.MethodPost {
			t.Errorf("a %s request: the stateless protocol has no stream to open nor session to end", r.httpMethod)
			continue
		}
		if !strings.HasPrefix(r.header.Get("Authorization"), "Bearer ") {
			t.Errorf("%s: no access token", r.method)
		}
		if v := r.header.Get("Mcp-Protocol-Version"); v != "2026-07-28" {
			t.Errorf("%s: MCP-Protocol-Version %q", r.method, v)
		}
		if r.header.Get("Mcp-Session-Id") != "" || r.header.Get("Mcp-Method") != r.method {
			t.Errorf("%s: session id %q, Mcp-Method %q", r.method, r.header.Get("Mcp-Session-Id"), r.header.Get("Mcp-Method"))
		}
		if r.method == "tools/call" && (r.header.Get("Mcp-Name") != "where" || r.header.Get("Mcp-Param-Region") != "eu west" || r.header.Get("Mcp-Param-Verbose") != "true") {
			t.Errorf("tools/call headers %v", r.header)
		}
	}
	if got := strings.Join(methods, " "); got != "server/discover tools/list tools/call" {
		t.Errorf("the server received %q, want no initialize", got)
	}
}
