package mcpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// wholeResult is a tool result with every kind of content, structured
// content whose integer a float64 cannot hold, isError and _meta.
func wholeResult() *mcp.CallToolResult {
	size := int64(1234)
	return &mcp.CallToolResult{
		Meta: mcp.Meta{"trace": "abc", "nested": map[string]any{"n": 1}},
		Content: []mcp.Content{
			&mcp.TextContent{Text: "hello", Annotations: &mcp.Annotations{Audience: []mcp.Role{"user"}, Priority: 0.5}},
			&mcp.ImageContent{Data: []byte("PNGDATA"), MIMEType: "image/png"},
			&mcp.AudioContent{Data: []byte("WAVDATA"), MIMEType: "audio/wav"},
			&mcp.ResourceLink{URI: "file:///notes/1.md", Name: "1.md", Title: "Note 1", MIMEType: "text/markdown", Size: &size},
			&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: "file:///notes/2.md", MIMEType: "text/markdown", Text: "# Two"}},
		},
		StructuredContent: json.RawMessage(`{"id":9007199254740993,"names":["a","b"]}`),
		IsError:           true,
	}
}

// decodeExact decodes JSON with its numbers as written.
func decodeExact(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

// TestCallRawWholeResult: CallRaw returns the result as the server sent
// it, whether the server answers with JSON or an event stream: every
// content item, the structured content to the last digit, isError, _meta.
func TestCallRawWholeResult(t *testing.T) {
	for _, jsonResponse := range []bool{false, true} {
		server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
		server.AddTool(&mcp.Tool{Name: "all", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return wholeResult(), nil
		})
		srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sess, err := Connect(ctx, &http.Client{}, srv.URL, StaticToken("t"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sess.CallRaw(ctx, "all", nil)
		sess.Close()
		if err != nil {
			t.Fatal(err)
		}
		sent, err := json.Marshal(wholeResult())
		if err != nil {
			t.Fatal(err)
		}
		got, want := decodeExact(t, res.Raw).(map[string]any), decodeExact(t, sent).(map[string]any)
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("JSON response %v: %s = %v, want %v", jsonResponse, k, got[k], want[k])
			}
		}
		if len(got) != len(want) {
			t.Errorf("JSON response %v: fields %v, want %v", jsonResponse, got, want)
		}
		wantContent := []Content{{Type: "text", Text: "hello"}, {Type: "image", MIMEType: "image/png"}, {Type: "audio", MIMEType: "audio/wav"},
			{Type: "resource_link", URI: "file:///notes/1.md", MIMEType: "text/markdown"}, {Type: "resource", URI: "file:///notes/2.md", MIMEType: "text/markdown"}}
		if !reflect.DeepEqual(res.Content, wantContent) || !res.IsError || res.UnknownTool || len(res.Text) != 1 {
			t.Errorf("JSON response %v: %+v", jsonResponse, res)
		}
	}
}

// TestUnknownTool: a call of a tool the server's list does not name is
// told apart, whether the server refuses it (a JSON-RPC error, as the Go
// and TypeScript SDKs do) or answers with an error result (as FastMCP
// does); a listed tool's errors are its own.
func TestUnknownTool(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
	server.AddTool(&mcp.Tool{Name: "fails", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "no"}}, IsError: true}, nil
	})
	server.AddTool(&mcp.Tool{Name: "refuses", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "bad arguments"}
	})
	server.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if c, ok := req.(*mcp.CallToolRequest); ok && c.Params.Name == "fastmcp_unknown" {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Unknown tool: fastmcp_unknown"}}, IsError: true}, nil
			}
			return next(ctx, method, req)
		}
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := Connect(ctx, &http.Client{}, srv.URL, StaticToken("t"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	_, err = sess.CallRaw(ctx, "no_such_tool", nil)
	var ue *UnknownToolError
	if !errors.As(err, &ue) || ue.Tool != "no_such_tool" {
		t.Errorf("a refused unknown tool: %v, want an UnknownToolError", err)
	}
	res, err := sess.CallRaw(ctx, "fastmcp_unknown", nil)
	if err != nil || !res.IsError || !res.UnknownTool {
		t.Errorf("an unknown tool's error result: %+v, %v", res, err)
	}
	_, err = sess.CallRaw(ctx, "refuses", nil)
	if err == nil || errors.As(err, &ue) {
		t.Errorf("a listed tool's JSON-RPC error: %v", err)
	}
	res, err = sess.CallRaw(ctx, "fails", nil)
	if err != nil || !res.IsError || res.UnknownTool {
		t.Errorf("a listed tool's error result: %+v, %v", res, err)
	}
}
