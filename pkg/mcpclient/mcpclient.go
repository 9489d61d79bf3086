// Package mcpclient calls an MCP server's tools over the Streamable HTTP
// transport with an OAuth bearer token, and answers the server's
// elicitation requests through a callback.
package mcpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpwire"
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
	// InputSchema is its input schema as the server sent it.
	InputSchema json.RawMessage
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
	endpoint string
	// hc sends with the token (its transport is the bearer); requests
	// are bounded by their context.
	hc       *http.Client
	auth     *bearer
	timeout  time.Duration
	onElicit func(ctx context.Context, e Elicitation) (ElicitAction, map[string]any)
	// mem bounds the memory of the server's messages being read.
	mem    *mcpwire.Budget
	nextID atomic.Int64

	mu  sync.Mutex
	sid string // Mcp-Session-Id, if the server gave one
	// probeSID is the session a server of the handshake opened for
	// server/discover.
	probeSID string
	protocol string // the negotiated protocol version
	// stateless is the lifecycle of 2026-07-28: no handshake and no
	// session; every request carries its _meta and the Mcp-Method and
	// Mcp-Name headers.
	stateless bool
	// caps are the capabilities the client declares; info its
	// clientInfo.
	caps map[string]any
	info map[string]any
	// paramHeaders are the arguments each tool listed designates for the
	// Mcp-Param headers of a call (mcpwire.ParamHeaders).
	paramHeaders map[string][]mcpwire.ParamHeader
	// invalid are the tools left out of the list, with why.
	invalid map[string]error

	// closing ends when the session is closed, and with it the
	// elicitations still waiting for the user.
	closing  context.Context
	closeAll context.CancelFunc
}

// bounded bounds one request by the session's request timeout.
func (s *Session) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
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

// DefaultRequestTimeout is the default of Options.RequestTimeout.
const DefaultRequestTimeout = 60 * time.Second

// Protocol versions ncmcp speaks. StatelessVersion is the first of the
// stateless lifecycle (server/discover, no initialize); ProtocolVersion
// the newest of the handshake's.
const (
	StatelessVersion = "2026-07-28"
	ProtocolVersion  = "2025-11-25"
)

// knownVersions are the protocol versions of the handshake ncmcp speaks,
// the newest first.
var knownVersions = []string{ProtocolVersion, "2025-06-18", "2025-03-26", "2024-11-05"}

// Connect opens an MCP session at endpoint ({server}/mcp) authenticated with
// the credentials' tokens. hc supplies timeouts, proxy and tracing; its
// transport is reused. Tokens are sent to the endpoint's origin only.
//
// It asks the server first for the stateless protocol (server/discover,
// 2026-07-28); a server that does not know it gets the initialize
// handshake of 2025-11-25 and older.
func Connect(ctx context.Context, hc *http.Client, endpoint string, creds Credentials, o Options) (*Session, error) {
	at, err := NewAuthTransport(hc.Transport, endpoint, creds)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	c := *hc
	c.Transport = at.b
	// Each request is bounded by its context: an event stream's reads
	// last as long as the server takes.
	c.Timeout = 0
	s := &Session{endpoint: endpoint, hc: &c, auth: at.b, timeout: o.RequestTimeout, onElicit: o.OnElicit,
		mem: mcpwire.NewBudget(budgetSize), paramHeaders: map[string][]mcpwire.ParamHeader{}, invalid: map[string]error{}}
	if s.timeout <= 0 {
		s.timeout = DefaultRequestTimeout
	}
	version := o.Version
	if version == "" {
		version = "dev"
	}
	s.info = map[string]any{"name": "ncmcp", "version": version}
	s.caps = map[string]any{}
	if s.onElicit != nil {
		s.caps["elicitation"] = map[string]any{"form": map[string]any{}, "url": map[string]any{}}
	}
	s.closing, s.closeAll = context.WithCancel(context.Background())
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	stateless, err := s.discover(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	if !stateless {
		if err := s.initialize(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
		}
	}
	return s, nil
}

// discover asks for the stateless protocol: server/discover, once more
// when the server refuses the first yet names StatelessVersion among the
// versions it supports. It tells whether the session is stateless now. A server that answers otherwise
// (an error, a status, something that is no answer) leaves the handshake
// to try; a refused token, a failed connection or the end of ctx is the
// error.
func (s *Session) discover(ctx context.Context) (bool, error) {
	for range 2 {
		s.mu.Lock()
		s.protocol, s.stateless = StatelessVersion, true
		s.mu.Unlock()
		raw, err := s.request(ctx, "server/discover", map[string]any{})
		if err == nil {
			var res struct {
				SupportedVersions []string `json:"supportedVersions"`
			}
			if json.Unmarshal(raw, &res) == nil && slices.Contains(res.SupportedVersions, StatelessVersion) {
				return true, nil
			}
			break
		}
		var (
			rpc   *RPCError
			he    *HTTPError
			ended *SessionEndedError
			bad   *AnswerError
		)
		if !errors.As(err, &rpc) && !errors.As(err, &he) && !errors.As(err, &ended) && !errors.As(err, &bad) {
			return false, err
		}
		if rpc != nil && rpc.Code == CodeUnsupportedVersion {
			var data struct {
				Supported []string `json:"supported"`
			}
			if json.Unmarshal(rpc.Data, &data) == nil && slices.Contains(data.Supported, StatelessVersion) {
				continue
			}
		}
		break
	}
	s.mu.Lock()
	s.protocol, s.stateless = "", false
	probe := s.probeSID
	s.probeSID = ""
	s.mu.Unlock()
	s.endSession(probe)
	return false, nil
}

// CodeUnsupportedVersion is the JSON-RPC error of a server that does not
// speak the protocol version asked for; its data names the versions it
// does.
const CodeUnsupportedVersion = -32022

// initialize is the handshake: initialize, the protocol version the
// server chose, then notifications/initialized.
func (s *Session) initialize(ctx context.Context) error {
	params := map[string]any{
		"protocolVersion": ProtocolVersion,
		"capabilities":    s.caps,
		"clientInfo":      s.info,
	}
	raw, err := s.call(ctx, "initialize", params, s.standardHeaders("initialize", params))
	if err != nil {
		return err
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("reading the answer to \"initialize\": %w", err)
	}
	if !slices.Contains(knownVersions, res.ProtocolVersion) {
		return fmt.Errorf("the server speaks MCP protocol version %q, which ncmcp does not know (it knows %s)", res.ProtocolVersion, strings.Join(append([]string{StatelessVersion}, knownVersions...), ", "))
	}
	s.mu.Lock()
	s.protocol = res.ProtocolVersion
	s.mu.Unlock()
	return s.notify(ctx, "notifications/initialized", nil)
}

// toElicitation reads an elicitation request: its mode, message, URL and
// the fields of its form, in the order the server listed them.
func toElicitation(params json.RawMessage) (Elicitation, error) {
	var p struct {
		Mode            string          `json:"mode"`
		Message         string          `json:"message"`
		URL             string          `json:"url"`
		RequestedSchema json.RawMessage `json:"requestedSchema"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return Elicitation{}, fmt.Errorf("the elicitation request is not an object: %w", err)
	}
	e := Elicitation{Mode: p.Mode, Message: p.Message, URL: p.URL}
	if e.Mode == "" {
		e.Mode = "form"
		if p.URL != "" {
			e.Mode = "url"
		}
	}
	switch e.Mode {
	case "url":
		return e, nil
	case "form":
	default:
		return Elicitation{}, fmt.Errorf("unsupported elicitation mode %q", e.Mode)
	}
	e.Fields = formFields(p.RequestedSchema)
	e.Defaults = map[string]any{}
	for _, f := range e.Fields {
		e.Defaults[f.Name] = f.Default
	}
	return e, nil
}

// Close ends the session, and the elicitations still waiting for the
// user (their context ends).
func (s *Session) Close() error {
	s.closeAll()
	s.end()
	return nil
}

// maxToolPages bounds the pages of a tool list.
const maxToolPages = 1000

// Tools lists the server's tools (all pages).
func (s *Session) Tools(ctx context.Context) ([]Tool, error) {
	var out []Tool
	cursor := ""
	seen := map[string]bool{}
	for range maxToolPages {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		rctx, cancel := s.bounded(ctx)
		raw, err := s.request(rctx, "tools/list", params)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list the server's tools: %w", err)
		}
		var res struct {
			Tools []struct {
				Name        string          `json:"name"`
				Title       string          `json:"title"`
				Description string          `json:"description"`
				InputSchema json.RawMessage `json:"inputSchema"`
			} `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, fmt.Errorf("list the server's tools: the answer is not a tool list: %w", err)
		}
		for _, t := range res.Tools {
			headers, err := mcpwire.ParamHeaders(t.InputSchema)
			if err != nil {
				// A tool whose parameters cannot be repeated in
				// headers as the specification requires is left out.
				s.mu.Lock()
				s.invalid[t.Name] = err
				s.mu.Unlock()
				continue
			}
			out = append(out, Tool{Name: t.Name, Title: t.Title, Description: t.Description, Args: schemaProperties(t.InputSchema), InputSchema: t.InputSchema})
			s.mu.Lock()
			s.paramHeaders[t.Name] = headers
			s.mu.Unlock()
		}
		if res.NextCursor == "" {
			return out, nil
		}
		if seen[res.NextCursor] {
			return nil, errors.New("list the server's tools: the server's list goes round in a circle (a cursor came back)")
		}
		seen[res.NextCursor] = true
		cursor = res.NextCursor
	}
	return nil, fmt.Errorf("list the server's tools: the list does not end after %d pages", maxToolPages)
}

// schemaObject reads a JSON Schema object's keywords and its properties;
// nil when it is none. JSON Schema keywords are case-sensitive, and
// encoding/json's struct matching is not, so they are looked up exactly.
func schemaObject(schema json.RawMessage) (top, props map[string]json.RawMessage) {
	if json.Unmarshal(schema, &top) != nil {
		return nil, nil
	}
	if json.Unmarshal(top["properties"], &props) != nil {
		return nil, nil
	}
	return top, props
}

// schemaProperties returns the property names of a JSON Schema object.
func schemaProperties(schema json.RawMessage) []string {
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
	rctx, cancel := s.bounded(ctx)
	defer cancel()
	raw, _, err := s.callTool(rctx, tool, args)
	if err != nil {
		return fmt.Errorf("call %s: %w", tool, err)
	}
	res, err := readResult(raw)
	if err != nil {
		return fmt.Errorf("call %s: %w", tool, err)
	}
	text := ""
	if len(res.Text) > 0 {
		text = res.Text[0]
	}
	if res.IsError {
		msg := strings.TrimSpace(text)
		if msg == "" {
			msg = "no message"
		}
		return &ToolError{Tool: tool, Message: msg}
	}
	var b []byte
	switch {
	case res.Structured != nil:
		b = res.Structured
	case text != "":
		b = []byte(text)
	default:
		return fmt.Errorf("call %s: the result has no content", tool)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("call %s: the result is not the expected JSON: %w", tool, err)
	}
	return nil
}

// callTool sends tools/call. In the stateless protocol the tool's input
// schema says which arguments its headers repeat: the tools are listed
// first when the session has not seen it, and a tool whose schema breaks
// the header rules is not called. lacks tells whether the server's tool
// list does not name the tool (Session.lacks): from the list fetched for
// the call, when there was one, without listing the tools again.
func (s *Session) callTool(ctx context.Context, tool string, args map[string]any) (raw json.RawMessage, lacks func(context.Context) bool, err error) {
	lacks = func(ctx context.Context) bool { return s.lacks(ctx, tool) }
	if args == nil {
		args = map[string]any{}
	}
	s.mu.Lock()
	stateless := s.stateless
	_, known := s.paramHeaders[tool]
	invalid := s.invalid[tool]
	s.mu.Unlock()
	if stateless && !known && invalid == nil {
		tools, err := s.Tools(ctx)
		if err != nil {
			return nil, lacks, err
		}
		listed := slices.ContainsFunc(tools, func(t Tool) bool { return t.Name == tool })
		lacks = func(context.Context) bool { return !listed }
		s.mu.Lock()
		invalid = s.invalid[tool]
		s.mu.Unlock()
	}
	if invalid != nil {
		return nil, lacks, fmt.Errorf("the server's tool %s cannot be called: its input schema breaks the rules of MCP's parameter headers (%w)", tool, invalid)
	}
	raw, err = s.request(ctx, "tools/call", map[string]any{"name": tool, "arguments": args})
	return raw, lacks, err
}

// Result is a tool's result as the server sent it.
type Result struct {
	// Raw is the result (an MCP CallToolResult) as the server sent it.
	Raw json.RawMessage
	// Content are its content items, in order.
	Content []Content
	// Text is the text of its text contents, in order.
	Text []string
	// Structured is its structured content as sent; nil when absent or
	// null.
	Structured json.RawMessage
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
	rctx, cancel := s.bounded(ctx)
	defer cancel()
	raw, lacks, err := s.callTool(rctx, tool, args)
	if err != nil {
		err = fmt.Errorf("call %s: %w", tool, err)
		var rpc *RPCError
		if errors.As(err, &rpc) && lacks(ctx) {
			return nil, &UnknownToolError{Tool: tool, Err: err}
		}
		return nil, err
	}
	res, err := readResult(raw)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", tool, err)
	}
	if res.IsError {
		res.UnknownTool = lacks(ctx)
	}
	return res, nil
}

// readResult reads a CallToolResult. JSON's member names are
// case-sensitive here, as MCP's are: encoding/json's matching of struct
// fields is not, so the members are looked up exactly.
func readResult(raw json.RawMessage) (*Result, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return nil, errors.New("the result is not a JSON object")
	}
	res := &Result{Raw: raw}
	if b, ok := top["structuredContent"]; ok && string(b) != "null" {
		res.Structured = b
	}
	if b, ok := top["isError"]; ok && json.Unmarshal(b, &res.IsError) != nil {
		return nil, errors.New("the result's isError is not a boolean")
	}
	var items []map[string]json.RawMessage
	if b, ok := top["content"]; ok && string(b) != "null" {
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, errors.New("the result's content is not a list of objects")
		}
	}
	for _, it := range items {
		var c Content
		str := func(m map[string]json.RawMessage, key string) string {
			var v string
			_ = json.Unmarshal(m[key], &v)
			return v
		}
		c.Type = str(it, "type")
		switch c.Type {
		case "text":
			c.Text = str(it, "text")
			res.Text = append(res.Text, c.Text)
		case "image", "audio":
			c.MIMEType = str(it, "mimeType")
		case "resource_link":
			c.URI, c.MIMEType = str(it, "uri"), str(it, "mimeType")
		case "resource":
			var r map[string]json.RawMessage
			_ = json.Unmarshal(it["resource"], &r)
			c.URI, c.MIMEType = str(r, "uri"), str(r, "mimeType")
		}
		res.Content = append(res.Content, c)
	}
	return res, nil
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
