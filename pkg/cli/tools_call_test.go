package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpServer serves an MCP server of the official SDK, without OAuth, at
// {URL}/mcp, and returns its URL for --server.
func mcpServer(t *testing.T, server *mcp.Server, opts *mcp.StreamableHTTPOptions) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, opts))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// testDeps are the Deps of an in-process ncmcp with its own config
// directory, no keyring and no terminal.
func testDeps(t *testing.T, stdout, stderr *bytes.Buffer) Deps {
	env := map[string]string{"NCMCP_CONFIG_DIR": t.TempDir()}
	return Deps{
		Stdout: stdout, Stderr: stderr, Stdin: strings.NewReader(""),
		Getenv:  func(k string) string { return env[k] },
		Keyring: lockedKeyring{},
		OpenURL: func(u string) error { t.Errorf("opened %s", u); return nil },
	}
}

// runTools runs ncmcp in-process and returns its exit code and output.
func runTools(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Run(ctx, args, testDeps(t, &stdout, &stderr))
	t.Logf("ncmcp %s -> exit %d\nstderr:\n%s", strings.Join(args, " "), code, stderr.String())
	return code, stdout.String(), stderr.String()
}

// everyContent is a result with every kind of content, structured content
// whose integer a float64 cannot hold, isError and _meta, and text with
// characters that the terminal filter drops.
func everyContent() *mcp.CallToolResult {
	size := int64(1234)
	return &mcp.CallToolResult{
		Meta: mcp.Meta{"trace": "abc", "nested": map[string]any{"n": 1}},
		Content: []mcp.Content{
			&mcp.TextContent{Text: "hello \u202eworld\u009b", Annotations: &mcp.Annotations{Audience: []mcp.Role{"user"}, Priority: 0.5}},
			&mcp.ImageContent{Data: []byte("PNGDATA"), MIMEType: "image/png"},
			&mcp.AudioContent{Data: []byte("WAVDATA"), MIMEType: "audio/wav"},
			&mcp.ResourceLink{URI: "file:///notes/1.md", Name: "1.md", Title: "Note 1", Description: "the first", MIMEType: "text/markdown", Size: &size},
			&mcp.ResourceLink{URI: "https://cloud.example/f/2", Name: "2"},
			&mcp.ResourceLink{URI: "https://cloud.example/f/3", Name: "3"},
			&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: "file:///notes/4.md", MIMEType: "text/markdown", Text: "# Four"}, Meta: mcp.Meta{"k": "v"}},
			&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: "file:///5.bin", Blob: []byte{0, 1, 2}}},
		},
		StructuredContent: json.RawMessage(`{"id":9007199254740993,"names":["a","b"]}`),
		IsError:           true,
	}
}

// exactJSON decodes JSON with its numbers as written.
func exactJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	return v
}

// TestToolsCallJSONWholeResult: 'tools call --json' prints the result as
// the server sent it (the SDK's server marshals it with the same
// function), field by field and item by item, whether the server answers
// with JSON or an event stream; a result flagged as an error exits 1.
func TestToolsCallJSONWholeResult(t *testing.T) {
	sent, err := json.Marshal(everyContent())
	if err != nil {
		t.Fatal(err)
	}
	want := exactJSON(t, sent)
	for _, jsonResponse := range []bool{false, true} {
		server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
		server.AddTool(&mcp.Tool{Name: "all", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return everyContent(), nil
		})
		url := mcpServer(t, server, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse})
		code, stdout, _ := runTools(t, "tools", "call", "all", "--json", "--server", url)
		if code != ExitFailure {
			t.Errorf("exit %d for an error result, want %d", code, ExitFailure)
		}
		got := exactJSON(t, []byte(stdout))
		for _, k := range []string{"_meta", "structuredContent", "isError"} {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("JSON response %v: %s = %#v, want %#v", jsonResponse, k, got[k], want[k])
			}
		}
		gc, _ := got["content"].([]any)
		wc := want["content"].([]any)
		if len(gc) != len(wc) {
			t.Errorf("JSON response %v: %d content items, want %d:\n%s", jsonResponse, len(gc), len(wc), stdout)
		}
		for i := range min(len(gc), len(wc)) {
			if !reflect.DeepEqual(gc[i], wc[i]) {
				t.Errorf("JSON response %v: content[%d] = %#v, want %#v", jsonResponse, i, gc[i], wc[i])
			}
		}
		if len(got) != len(want) {
			t.Errorf("JSON response %v: fields %v, want those of %v", jsonResponse, got, want)
		}
	}
}

// TestToolsCallText: without --json, text items print as they are and
// every other item on a line of its own: its type and URI or MIME type.
func TestToolsCallText(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
	server.AddTool(&mcp.Tool{Name: "all", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return everyContent(), nil
	})
	server.AddTool(&mcp.Tool{Name: "structured", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.ImageContent{Data: []byte("x"), MIMEType: "image/gif"}}, StructuredContent: map[string]any{"ok": true}}, nil
	})
	url := mcpServer(t, server, nil)
	code, stdout, stderr := runTools(t, "tools", "call", "all", "--server", url)
	want := "hello world\n[image] image/png\n[audio] audio/wav\n[resource_link] file:///notes/1.md\n[resource_link] https://cloud.example/f/2\n" +
		"[resource_link] https://cloud.example/f/3\n[resource] file:///notes/4.md\n[resource] file:///5.bin\n"
	if code != ExitFailure || stdout != want {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", code, stdout, want)
	}
	if !strings.Contains(stderr, "see its text above") {
		t.Errorf("no hint for the error result:\n%s", stderr)
	}
	code, stdout, _ = runTools(t, "tools", "call", "structured", "--server", url)
	if code != ExitOK || stdout != "[image] image/gif\n{\n  \"ok\": true\n}\n" {
		t.Errorf("exit %d, stdout:\n%s", code, stdout)
	}
}

// TestToolsCallUnknownTool: a tool the server does not offer gets a hint
// to 'ncmcp tools list', whether the server refuses the call (the Go
// SDK's JSON-RPC error) or answers with an error result (FastMCP's
// "Unknown tool"); a tool's own error does not.
func TestToolsCallUnknownTool(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
	server.AddTool(&mcp.Tool{Name: "fails", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "it failed"}}, IsError: true}, nil
	})
	server.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if c, ok := req.(*mcp.CallToolRequest); ok && c.Params.Name == "fastmcp_unknown" {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Unknown tool: fastmcp_unknown"}}, IsError: true}, nil
			}
			return next(ctx, method, req)
		}
	})
	url := mcpServer(t, server, nil)
	for _, tool := range []string{"no_such_tool", "fastmcp_unknown"} {
		code, _, stderr := runTools(t, "tools", "call", tool, "--server", url)
		if code != ExitFailure || !strings.Contains(stderr, "ncmcp: the server has no tool "+tool) ||
			!strings.Contains(stderr, "\nhint: 'ncmcp tools list --server "+url+"' lists the tools the server offers\n") {
			t.Errorf("%s: exit %d, no hint to 'ncmcp tools list':\n%s", tool, code, stderr)
		}
	}
	code, _, stderr := runTools(t, "tools", "call", "fails", "--server", url)
	if code != ExitFailure || strings.Contains(stderr, "tools list") {
		t.Errorf("a listed tool's error: exit %d\n%s", code, stderr)
	}
}
