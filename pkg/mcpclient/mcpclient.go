// Package mcpclient calls an MCP server's tools over Streamable HTTP
// (github.com/modelcontextprotocol/go-sdk) with an OAuth bearer token.
package mcpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// UnauthorizedError reports that the MCP endpoint refused the token (HTTP
// 401, RFC 6750 section 3): only a new login helps.
type UnauthorizedError struct {
	// Challenge is the WWW-Authenticate header, if any.
	Challenge string
}

func (e *UnauthorizedError) Error() string {
	msg := "the MCP server refused the access token (HTTP 401)"
	if strings.Contains(e.Challenge, `error="invalid_token"`) {
		msg += ": invalid_token"
	}
	return msg
}

// ToolError is an error result of a tool call: the server's answer, not a
// transport failure.
type ToolError struct {
	Tool    string
	Message string
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("the server's tool %s answered with an error: %s", e.Tool, e.Message)
}

// Tool is a tool the server offers.
type Tool struct {
	Name string
	// Args are the argument names its input schema declares.
	Args []string
}

// Has reports whether the tool declares the argument.
func (t Tool) Has(arg string) bool {
	for _, a := range t.Args {
		if a == arg {
			return true
		}
	}
	return false
}

// Session is a connection to one MCP endpoint.
type Session struct {
	cs   *mcp.ClientSession
	auth *bearer
}

// bearer adds the token to every request and remembers a 401.
type bearer struct {
	next  http.RoundTripper
	token string

	mu           sync.Mutex
	unauthorized *UnauthorizedError
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		b.mu.Lock()
		b.unauthorized = &UnauthorizedError{Challenge: resp.Header.Get("WWW-Authenticate")}
		b.mu.Unlock()
	}
	return resp, err
}

// wrap turns an SDK error after a 401 into an *UnauthorizedError.
func (b *bearer) wrap(err error) error {
	if err == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unauthorized != nil {
		return b.unauthorized
	}
	return err
}

// Connect opens an MCP session at endpoint ({server}/mcp) authenticated with
// token. hc supplies timeouts, proxy and tracing; its transport is reused.
func Connect(ctx context.Context, hc *http.Client, endpoint, token, version string) (*Session, error) {
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	b := &bearer{next: next, token: token}
	c := *hc
	c.Transport = b
	// The SDK's stream reads are long-lived; requests are bounded by ctx.
	c.Timeout = 0
	client := mcp.NewClient(&mcp.Implementation{Name: "ncmcp", Version: version}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &c, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, b.wrap(err))
	}
	return &Session{cs: cs, auth: b}, nil
}

// Close ends the session.
func (s *Session) Close() error { return s.cs.Close() }

// Tools lists the server's tools (all pages).
func (s *Session) Tools(ctx context.Context) ([]Tool, error) {
	var out []Tool
	params := &mcp.ListToolsParams{}
	for {
		res, err := s.cs.ListTools(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("list the server's tools: %w", s.auth.wrap(err))
		}
		for _, t := range res.Tools {
			out = append(out, Tool{Name: t.Name, Args: schemaProperties(t.InputSchema)})
		}
		if res.NextCursor == "" {
			return out, nil
		}
		params.Cursor = res.NextCursor
	}
}

// schemaProperties returns the property names of a JSON Schema object.
func schemaProperties(schema any) []string {
	b, err := json.Marshal(schema)
	if err != nil {
		return nil
	}
	// JSON Schema keywords are case-sensitive; encoding/json's struct
	// matching is not, so the keyword is looked up exactly.
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return nil
	}
	var props map[string]json.RawMessage
	if json.Unmarshal(top["properties"], &props) != nil {
		return nil
	}
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Call calls a tool and decodes its result into out: the structured content
// when there is one, else the first text content as JSON. A result flagged
// as an error becomes a *ToolError.
func (s *Session) Call(ctx context.Context, tool string, args map[string]any, out any) error {
	if args == nil {
		args = map[string]any{}
	}
	res, err := s.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return fmt.Errorf("call %s: %w", tool, s.auth.wrap(err))
	}
	text := ""
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			text = t.Text
			break
		}
	}
	if res.IsError {
		msg := strings.TrimSpace(text)
		if msg == "" {
			msg = "no message"
		}
		return &ToolError{Tool: tool, Message: msg}
	}
	var raw []byte
	if res.StructuredContent != nil {
		raw, err = json.Marshal(res.StructuredContent)
		if err != nil {
			return fmt.Errorf("call %s: %w", tool, err)
		}
	} else if text != "" {
		raw = []byte(text)
	} else {
		return fmt.Errorf("call %s: the result has no content", tool)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("call %s: the result is not the expected JSON: %w", tool, err)
	}
	return nil
}
