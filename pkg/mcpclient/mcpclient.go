// Package mcpclient calls an MCP server's tools over Streamable HTTP
// (github.com/modelcontextprotocol/go-sdk) with an OAuth bearer token, and
// answers the server's elicitation requests through a callback.
package mcpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
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
	Name        string
	Title       string
	Description string
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
	// closeAll ends the elicitations in hand.
	closeAll context.CancelFunc
}

// bounded bounds one request by the session's request timeout.
func (s *Session) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// Credentials give a session its bearer token, and a new one when the
// server refuses it.
type Credentials interface {
	// Token returns the token to send; empty sends none.
	Token(ctx context.Context) (string, error)
	// Renew is called when the server refused token (empty: none was sent)
	// with a 401, or a 403 insufficient_scope. It returns the token to send
	// the request once more with, or the error to give up with. Calls are
	// serialized.
	Renew(ctx context.Context, token string, r Refusal) (string, error)
}

// Refusal is the server's refusal of a token.
type Refusal struct {
	// Status is 401 or 403.
	Status int
	// Challenge is the WWW-Authenticate Bearer challenge, if any.
	Challenge wwwauth.Challenge
	// Header is the WWW-Authenticate header as sent.
	Header string
}

// Err returns the error of the refusal: *UnauthorizedError or
// *InsufficientScopeError.
func (r Refusal) Err() error {
	if r.Status == http.StatusForbidden {
		return &InsufficientScopeError{Scopes: r.Challenge.Scopes(), Description: r.Challenge.ErrorDescription}
	}
	return &UnauthorizedError{Challenge: r.Header}
}

// StaticToken is Credentials of one token that is never renewed.
type StaticToken string

// Token returns the token.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// Renew gives up with the refusal's error.
func (t StaticToken) Renew(_ context.Context, _ string, r Refusal) (string, error) {
	return "", r.Err()
}

// bearer adds the token to the requests for the endpoint's origin; when the
// server refuses it (401, 403 insufficient_scope) it asks the credentials
// for another and sends the request again, at most maxRenewals times. It
// remembers the last refusal it gave up on.
type bearer struct {
	next  http.RoundTripper
	creds Credentials
	// origin is the endpoint's scheme://host[:port]: the token goes only
	// there, never to where a redirect points.
	origin string

	renewMu sync.Mutex
	mu      sync.Mutex
	denied  error // the refusal's error, or Renew's
}

func originOf(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	if originOf(req.URL) != b.origin {
		r := req.Clone(req.Context())
		r.Header.Del("Authorization")
		return b.next.RoundTrip(r)
	}
	tok, err := b.creds.Token(req.Context())
	if err != nil {
		b.setDenied(req.Context(), err)
		return nil, err
	}
	resp, err := b.send(req, tok)
	if err != nil {
		return resp, err
	}
	for range maxRenewals {
		refusal, refused := refusalOf(resp)
		if !refused {
			return resp, nil
		}
		if req.Body != nil && req.GetBody == nil {
			b.setDenied(req.Context(), refusal.Err()) // cannot send it again
			return resp, nil
		}
		b.renewMu.Lock()
		next, rerr := b.creds.Renew(req.Context(), tok, refusal)
		b.renewMu.Unlock()
		if rerr != nil {
			b.setDenied(req.Context(), rerr)
			return resp, nil
		}
		resp.Body.Close()
		r := req.Clone(req.Context())
		if req.GetBody != nil {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		tok = next
		if resp, err = b.send(r, tok); err != nil {
			return resp, err
		}
	}
	if refusal, refused := refusalOf(resp); refused {
		b.setDenied(req.Context(), refusal.Err())
	}
	return resp, nil
}

// AuthTransport is an http.RoundTripper that sends the credentials' token
// to the endpoint's origin only, never where a redirect points, and when
// the server refuses it (401, 403 insufficient_scope) asks the credentials
// for another and sends the request again, at most twice.
type AuthTransport struct{ b *bearer }

// NewAuthTransport returns the AuthTransport of endpoint over next
// (http.DefaultTransport when nil).
func NewAuthTransport(next http.RoundTripper, endpoint string, creds Credentials) (*AuthTransport, error) {
	if next == nil {
		next = http.DefaultTransport
	}
	eu, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if creds == nil {
		creds = StaticToken("")
	}
	return &AuthTransport{b: &bearer{next: next, creds: creds, origin: originOf(eu)}}, nil
}

// RoundTrip sends the request with the token.
func (t *AuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.b.RoundTrip(req)
}

// denialKey is the context key of a request's denial (WithDenial).
type denialKey struct{}

// denial is where an AuthTransport records why it gave up on one request.
type denial struct {
	mu  sync.Mutex
	err error
}

// WithDenial returns a context for requests whose refusal must be
// explained on its own, and a function that returns why the
// AuthTransport gave up on a refusal of a request made with it: the
// refusal's error, or the credentials' failure to renew; nil when it did
// not give up. Requests made with other contexts cannot change it.
func WithDenial(ctx context.Context) (context.Context, func() error) {
	d := &denial{}
	return context.WithValue(ctx, denialKey{}, d), func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.err
	}
}

// Refused tells whether the answer is a refusal of the token: a 401, or a
// 403 with an insufficient_scope challenge (RFC 6750 section 3.1). Other
// answers, other 403s included, are the server's own.
func Refused(resp *http.Response) bool {
	_, refused := refusalOf(resp)
	return refused
}

// maxRenewals bounds the renewals for one request: a refresh or login
// after a 401, then a step-up after a 403 insufficient_scope.
const maxRenewals = 2

// send sends the request with the token, if any.
func (b *bearer) send(req *http.Request, tok string) (*http.Response, error) {
	r := req.Clone(req.Context())
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	} else {
		r.Header.Del("Authorization")
	}
	return b.next.RoundTrip(r)
}

// refusalOf recognises a refused token: a 401, or a 403 with an
// insufficient_scope challenge (RFC 6750 section 3.1).
func refusalOf(resp *http.Response) (Refusal, bool) {
	h := resp.Header.Values("WWW-Authenticate")
	ch, _ := wwwauth.ParseBearer(h)
	r := Refusal{Status: resp.StatusCode, Challenge: ch, Header: strings.Join(h, ", ")}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return r, true
	case resp.StatusCode == http.StatusForbidden && ch.Error == "insufficient_scope":
		return r, true
	}
	return r, false
}

// setDenied records why the bearer gave up on a refusal: for the session
// (wrap), and for the request's own context when it has a denial.
func (b *bearer) setDenied(ctx context.Context, err error) {
	b.mu.Lock()
	b.denied = err
	b.mu.Unlock()
	if d, ok := ctx.Value(denialKey{}).(*denial); ok {
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
	}
}

// wrap turns an SDK error after a refusal into the refusal's error.
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
	// Fields are the form's fields, in the order the server listed them,
	// in form mode.
	Fields []Field
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

// ProtocolVersion is the MCP protocol version ncmcp asks for.
const ProtocolVersion = "2025-11-25"

// DefaultRequestTimeout is the default of Options.RequestTimeout.
const DefaultRequestTimeout = 60 * time.Second

// Connect opens an MCP session at endpoint ({server}/mcp) authenticated with
// the credentials' tokens. hc supplies timeouts, proxy and tracing; its
// transport is reused. Tokens are sent to the endpoint's origin only.
func Connect(ctx context.Context, hc *http.Client, endpoint string, creds Credentials, o Options) (*Session, error) {
	at, err := NewAuthTransport(hc.Transport, endpoint, creds)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	b := at.b
	capture := &capturer{next: b}
	timeout := o.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := *hc
	c.Transport = capture
	// The SDK's stream reads are long-lived; requests are bounded by ctx.
	c.Timeout = 0
	// The SDK's Close waits for the server's requests in hand: closing
	// ends the elicitations still waiting for the user.
	closing, closeAll := context.WithCancel(context.Background())
	var copts *mcp.ClientOptions
	if o.OnElicit != nil {
		copts = &mcp.ClientOptions{
			Capabilities: &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{
				Form: &mcp.FormElicitationCapabilities{}, URL: &mcp.URLElicitationCapabilities{},
			}},
			ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				defer context.AfterFunc(closing, cancel)()
				e := toElicitation(req.Params, capture)
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
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &c, MaxRetries: -1, DisableStandaloneSSE: true},
		// The handshake of the protocol the servers speak, without the
		// newer server/discover probe.
		&mcp.ClientSessionOptions{ProtocolVersion: ProtocolVersion})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("connect to %s: %w", endpoint, b.wrap(err))
	}
	return &Session{cs: cs, auth: b, timeout: timeout, closeAll: closeAll}, nil
}

// toElicitation reads the request's mode, message, URL and the fields of
// its form, in the order the server listed them where the capture saw it.
func toElicitation(p *mcp.ElicitParams, c *capturer) Elicitation {
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
	fields := formFields(p.RequestedSchema, nil)
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	if order := c.order(p.Message, names); order != nil {
		fields = formFields(p.RequestedSchema, order)
	}
	e.Fields = fields
	e.Defaults = map[string]any{}
	for _, f := range fields {
		e.Defaults[f.Name] = f.Default
	}
	return e
}

// Close ends the session, and the elicitations still waiting for the
// user (their context ends).
func (s *Session) Close() error {
	if s.closeAll != nil {
		s.closeAll()
	}
	return s.cs.Close()
}

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
			out = append(out, Tool{Name: t.Name, Title: t.Title, Description: t.Description, Args: schemaProperties(t.InputSchema)})
		}
		if res.NextCursor == "" {
			return out, nil
		}
		params.Cursor = res.NextCursor
	}
}

// schemaObject reads a JSON Schema object's keywords and its properties;
// nil when it is none. JSON Schema keywords are case-sensitive, and
// encoding/json's struct matching is not, so they are looked up exactly.
func schemaObject(schema any) (top, props map[string]json.RawMessage) {
	b, err := json.Marshal(schema)
	if err != nil {
		return nil, nil
	}
	if json.Unmarshal(b, &top) != nil {
		return nil, nil
	}
	if json.Unmarshal(top["properties"], &props) != nil {
		return nil, nil
	}
	return top, props
}

// schemaProperties returns the property names of a JSON Schema object.
func schemaProperties(schema any) []string {
	_, props := schemaObject(schema)
	if props == nil {
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

// Result is a tool's result as the server sent it.
type Result struct {
	// Raw is the result (an MCP CallToolResult) as the server sent it.
	Raw json.RawMessage
	// Content are its content items, in order.
	Content []Content
	// Text is the text of its text contents, in order.
	Text []string
	// Structured is its structured content, if any.
	Structured any
	// IsError is set when the tool reports an error.
	IsError bool
	// UnknownTool is set for an error result when the server's tool list
	// does not name the tool (servers that answer an unknown tool with an
	// error result rather than a JSON-RPC error).
	UnknownTool bool
}

// Content is one item of a tool result's content.
type Content struct {
	// Type is text, image, audio, resource_link or resource (an embedded
	// resource).
	Type string
	// Text is the text of a text item.
	Text string
	// MIMEType is the MIME type of an image or audio item, or of a
	// resource where the server gives it.
	MIMEType string
	// URI is the URI of a resource_link or resource item.
	URI string
}

// UnknownToolError reports that the server refused to call a tool (a
// JSON-RPC error) that its tool list does not name.
type UnknownToolError struct {
	Tool string
	Err  error
}

func (e *UnknownToolError) Error() string {
	return fmt.Sprintf("the server has no tool %s: %v", e.Tool, e.Err)
}

func (e *UnknownToolError) Unwrap() error { return e.Err }

// CallRaw calls a tool and returns its result as it is. When the server
// refuses the call, or answers with an error result, and its tool list
// does not name the tool, the error is an *UnknownToolError, or the
// result's UnknownTool is set.
func (s *Session) CallRaw(ctx context.Context, tool string, args map[string]any) (*Result, error) {
	if args == nil {
		args = map[string]any{}
	}
	rctx, cancel := s.bounded(ctx)
	defer cancel()
	rctx, sl := withSlot(rctx)
	res, err := s.cs.CallTool(rctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		err = fmt.Errorf("call %s: %w", tool, s.auth.wrap(err))
		var rpc *jsonrpc.Error
		if errors.As(err, &rpc) && s.lacks(ctx, tool) {
			return nil, &UnknownToolError{Tool: tool, Err: err}
		}
		return nil, err
	}
	out := &Result{Raw: sl.result(), Structured: res.StructuredContent, IsError: res.IsError}
	if out.Raw == nil {
		// Not seen on the wire: the SDK's reading of it.
		if out.Raw, err = json.Marshal(res); err != nil {
			return nil, fmt.Errorf("call %s: %w", tool, err)
		}
	}
	for _, c := range res.Content {
		item := Content{}
		switch c := c.(type) {
		case *mcp.TextContent:
			item = Content{Type: "text", Text: c.Text}
			out.Text = append(out.Text, c.Text)
		case *mcp.ImageContent:
			item = Content{Type: "image", MIMEType: c.MIMEType}
		case *mcp.AudioContent:
			item = Content{Type: "audio", MIMEType: c.MIMEType}
		case *mcp.ResourceLink:
			item = Content{Type: "resource_link", URI: c.URI, MIMEType: c.MIMEType}
		case *mcp.EmbeddedResource:
			item = Content{Type: "resource"}
			if c.Resource != nil {
				item.URI, item.MIMEType = c.Resource.URI, c.Resource.MIMEType
			}
		default:
			item.Type = contentType(c)
		}
		out.Content = append(out.Content, item)
	}
	if out.IsError {
		out.UnknownTool = s.lacks(ctx, tool)
	}
	return out, nil
}

// contentType reads the type of a content item the SDK may add.
func contentType(c mcp.Content) string {
	var t struct {
		Type string `json:"type"`
	}
	if b, err := c.MarshalJSON(); err == nil {
		_ = json.Unmarshal(b, &t)
	}
	return t.Type
}

// lacks tells whether the server's tool list is known not to name tool;
// false when it cannot be listed.
func (s *Session) lacks(ctx context.Context, tool string) bool {
	tools, err := s.Tools(ctx)
	if err != nil {
		return false
	}
	for _, t := range tools {
		if t.Name == tool {
			return false
		}
	}
	return true
}
