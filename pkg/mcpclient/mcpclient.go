// Package mcpclient calls an MCP server's tools over Streamable HTTP
// (github.com/modelcontextprotocol/go-sdk) with an OAuth bearer token, and
// answers the server's elicitation requests through a callback.
package mcpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ncmcp/ncmcp/pkg/wwwauth"
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

// InsufficientScopeError reports that the MCP endpoint refused the token
// for a missing scope (HTTP 403 insufficient_scope, RFC 6750 section 3.1).
type InsufficientScopeError struct {
	// Scopes are the scopes the server named in its challenge, if any.
	Scopes      []string
	Description string
}

func (e *InsufficientScopeError) Error() string {
	msg := "the MCP server refused the access token for a missing scope (HTTP 403 insufficient_scope)"
	if len(e.Scopes) > 0 {
		msg += ": it asks for " + strings.Join(e.Scopes, " ")
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
	cs      *mcp.ClientSession
	auth    *bearer
	timeout time.Duration
}

// bounded bounds one request by the session's request timeout.
func (s *Session) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// bearer adds the token to the requests for the endpoint's origin, and
// remembers a 401 or a 403 insufficient_scope.
type bearer struct {
	next  http.RoundTripper
	token string
	// origin is the endpoint's scheme://host[:port]: the token goes only
	// there, never to where a redirect points.
	origin string

	mu     sync.Mutex
	denied error // *UnauthorizedError or *InsufficientScopeError
}

func originOf(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if originOf(r.URL) == b.origin {
		r.Header.Set("Authorization", "Bearer "+b.token)
	} else {
		r.Header.Del("Authorization")
	}
	resp, err := b.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		b.setDenied(&UnauthorizedError{Challenge: resp.Header.Get("WWW-Authenticate")})
	case http.StatusForbidden:
		if c, ok := wwwauth.ParseBearer(resp.Header.Values("WWW-Authenticate")); ok && c.Error == "insufficient_scope" {
			b.setDenied(&InsufficientScopeError{Scopes: c.Scopes(), Description: c.ErrorDescription})
		}
	}
	return resp, err
}

func (b *bearer) setDenied(err error) {
	b.mu.Lock()
	b.denied = err
	b.mu.Unlock()
}

// wrap turns an SDK error after a 401 or 403 into the refusal's error.
func (b *bearer) wrap(err error) error {
	if err == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.denied != nil {
		return b.denied
	}
	return err
}

// Elicitation is a server's request for input from the user (MCP
// elicitation/create), in form or url mode.
type Elicitation struct {
	// Mode is "form" or "url".
	Mode    string
	Message string
	// URL is the page to open, in url mode.
	URL string
	// Defaults are the form's fields with their default values (nil when
	// a field has none), in form mode.
	Defaults map[string]any
}

// ElicitAction is the answer to an elicitation: accept, decline or cancel.
type ElicitAction string

// Answers to an elicitation.
const (
	ElicitAccept  ElicitAction = "accept"
	ElicitDecline ElicitAction = "decline"
	ElicitCancel  ElicitAction = "cancel"
)

// Options configure Connect.
type Options struct {
	// Version is ncmcp's version, sent as clientInfo.
	Version string
	// OnElicit answers the server's elicitation requests; with it, the
	// session declares the elicitation capability (form and url mode).
	// The content of an accepted form is its defaults, as changed by the
	// returned map.
	OnElicit func(ctx context.Context, e Elicitation) (ElicitAction, map[string]any)
	// RequestTimeout bounds each request (connecting, listing tools, a
	// tool call); default DefaultRequestTimeout. A server that answers
	// with an event stream and then only keep-alives would otherwise hold
	// a request for ever.
	RequestTimeout time.Duration
}

// DefaultRequestTimeout is the default of Options.RequestTimeout.
const DefaultRequestTimeout = 60 * time.Second

// Connect opens an MCP session at endpoint ({server}/mcp) authenticated with
// token. hc supplies timeouts, proxy and tracing; its transport is reused.
// The token is sent to the endpoint's origin only.
func Connect(ctx context.Context, hc *http.Client, endpoint, token string, o Options) (*Session, error) {
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	eu, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	b := &bearer{next: next, token: token, origin: originOf(eu)}
	timeout := o.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := *hc
	c.Transport = b
	// The SDK's stream reads are long-lived; requests are bounded by ctx.
	c.Timeout = 0
	var copts *mcp.ClientOptions
	if o.OnElicit != nil {
		copts = &mcp.ClientOptions{
			Capabilities: &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{
				Form: &mcp.FormElicitationCapabilities{}, URL: &mcp.URLElicitationCapabilities{},
			}},
			ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				e := toElicitation(req.Params)
				action, content := o.OnElicit(ctx, e)
				res := &mcp.ElicitResult{Action: string(action)}
				if action == ElicitAccept && e.Mode == "form" {
					res.Content = map[string]any{}
					for k, v := range e.Defaults {
						if v != nil {
							res.Content[k] = v
						}
					}
					for k, v := range content {
						res.Content[k] = v
					}
				}
				return res, nil
			},
		}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "ncmcp", Version: o.Version}, copts)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &c, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, b.wrap(err))
	}
	return &Session{cs: cs, auth: b, timeout: timeout}, nil
}

// toElicitation reads the request's mode, message, URL and the defaults of
// its form fields.
func toElicitation(p *mcp.ElicitParams) Elicitation {
	e := Elicitation{Mode: p.Mode, Message: p.Message, URL: p.URL}
	if e.Mode == "" {
		e.Mode = "form"
		if p.URL != "" {
			e.Mode = "url"
		}
	}
	if e.Mode != "form" {
		return e
	}
	e.Defaults = map[string]any{}
	b, err := json.Marshal(p.RequestedSchema)
	if err != nil {
		return e
	}
	var schema struct {
		Properties map[string]struct {
			Default any `json:"default"`
		} `json:"properties"`
	}
	if json.Unmarshal(b, &schema) == nil {
		for name, prop := range schema.Properties {
			e.Defaults[name] = prop.Default
		}
	}
	return e
}

// Close ends the session.
func (s *Session) Close() error { return s.cs.Close() }

// Tools lists the server's tools (all pages).
func (s *Session) Tools(ctx context.Context) ([]Tool, error) {
	var out []Tool
	params := &mcp.ListToolsParams{}
	for {
		rctx, cancel := s.bounded(ctx)
		res, err := s.cs.ListTools(rctx, params)
		cancel()
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
	rctx, cancel := s.bounded(ctx)
	defer cancel()
	res, err := s.cs.CallTool(rctx, &mcp.CallToolParams{Name: tool, Arguments: args})
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
