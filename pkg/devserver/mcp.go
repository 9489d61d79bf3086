package devserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sdkVersions are the versions of the MCP Python SDK the recorded servers
// run on, which they report as serverInfo.version.
var sdkVersions = map[int]string{1: "1.21.0", 2: "1.29.0"}

// protocolVersions are the MCP protocol versions the recorded servers'
// SDKs accept, newest first.
var protocolVersions = map[int][]string{
	1: {"2025-06-18", "2025-03-26", "2024-11-05"},
	2: {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"},
}

// defaultTokenScopes are the scopes a token without a scope claim counts
// as having, unless StrictScopeClaim is set (the recording setup's knob).
var defaultTokenScopes = []string{"openid", "profile", "email"}

// mcpEndpoint is the bearer-protected MCP Streamable HTTP endpoint: the Go
// SDK's server and handler, behind the adapter of mcpwire.go.
type mcpEndpoint struct {
	m        *mcpServer
	server   *mcp.Server
	tools    map[string]tool
	listing  []json.RawMessage // tools/list's answer, in order
	versions []string

	mu      sync.Mutex // guards handler
	handler *mcp.StreamableHTTPHandler

	readyMu sync.Mutex // guards ready
	// ready holds the sessions whose client sent notifications/initialized
	// (see lifecycleMiddleware).
	ready map[*mcp.ServerSession]bool

	countMu sync.Mutex // guards calls
	calls   map[string]int
}

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func newMCPEndpoint(m *mcpServer) *mcpEndpoint {
	e := &mcpEndpoint{
		m:        m,
		tools:    make(map[string]tool),
		versions: protocolVersions[m.gen],
		calls:    make(map[string]int),
		ready:    make(map[*mcp.ServerSession]bool),
	}
	e.server = mcp.NewServer(&mcp.Implementation{Name: "Nextcloud MCP", Version: sdkVersions[m.gen]}, &mcp.ServerOptions{
		Logger:       discardLogger,
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}},
		// The SDK calls it while it handles the notification, before it
		// reads the session's next message.
		InitializedHandler: func(_ context.Context, req *mcp.InitializedRequest) { e.setReady(req.Session) },
	})
	for _, t := range m.tools() {
		var listing struct {
			InputSchema json.RawMessage `json:"inputSchema"`
		}
		if err := json.Unmarshal([]byte(t.listing), &listing); err != nil {
			panic("devserver: tool listing of " + t.name + ": " + err.Error())
		}
		e.tools[t.name] = t
		e.listing = append(e.listing, json.RawMessage(t.listing))
		e.server.AddTool(&mcp.Tool{Name: t.name, InputSchema: listing.InputSchema}, e.callTool(t))
	}
	// lifecycleMiddleware runs first: a refused request reaches no tool.
	e.server.AddReceivingMiddleware(e.lifecycleMiddleware, e.toolCallMiddleware)
	e.handler = e.newHandler()
	return e
}

func (e *mcpEndpoint) newHandler() *mcp.StreamableHTTPHandler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return e.server },
		&mcp.StreamableHTTPOptions{Logger: discardLogger})
}

// callTool runs a tool and wraps its result as FastMCP does: the JSON of
// the structured result (indent 2) as text content, and the structured
// result itself.
func (e *mcpEndpoint) callTool(t tool) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		user := ""
		if req.Extra != nil && req.Extra.TokenInfo != nil {
			user = req.Extra.TokenInfo.UserID
		}
		if tok := req.Params.GetProgressToken(); tok != nil && e.m.s.opts.ToolProgress {
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 0, Total: 1, Message: "running " + t.name})
		}
		res, err := t.run(ctx, req, user, req.Params.Arguments)
		if err != nil {
			return errorResult("Error executing tool " + t.name + ": " + err.Error()), nil
		}
		text, err := pythonJSON(res)
		if err != nil {
			return nil, err
		}
		structured, err := marshalJSON(res)
		if err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: text}},
			StructuredContent: json.RawMessage(structured),
		}, nil
	}
}

// errorResult is a tool error as FastMCP answers it: isError with text only.
func errorResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}, IsError: true}
}

// errBeforeInitialized is the MCP Python SDK's answer to a request that
// reaches a session before its initialization is complete: its
// ServerSession._received_request raises RuntimeError("Received request
// before initialization was complete"), which BaseSession._receive_loop
// turns into this JSON-RPC error for the request's id (the Streamable HTTP
// transport sends it like any answer: 200, one SSE event).
var errBeforeInitialized = &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "Invalid request parameters", Data: json.RawMessage(`""`)}

// lifecycleMiddleware refuses, with errBeforeInitialized, every request of
// a session but initialize and ping until its client has sent
// notifications/initialized. It follows the MCP Python SDK's
// ServerSession._received_request (src/mcp/server/session.py) as it was
// before python-sdk PR #1478: the initialization state becomes
// Initializing with initialize and Initialized only with the
// notification, and any other request meanwhile is refused; ping passes at
// any time (python-sdk PR #1312). With PR #1478 the state becomes
// Initialized as soon as initialize is answered, so such requests are
// served: 1.26 and 1.27 have it (the line numbers of their tracebacks
// show), and so the 1.29 of generation 2 does; whether the 1.21 of
// generation 1 has it is not established. The stand-in keeps the stricter
// rule in both generations, so that a client that sends a request before
// its notification has reached the server fails here rather than against
// a server of an older SDK. Notifications pass: the Python SDK drops them
// without an answer, which a client cannot tell from the 202. There are
// no stateless sessions here (a request without a session must be
// initialize, see serveWire); the Python SDK counts those initialized from
// the start.
func (e *mcpEndpoint) lifecycleMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method == "initialize" || method == "ping" || strings.HasPrefix(method, "notifications/") {
			return next(ctx, method, req)
		}
		if ss, ok := req.GetSession().(*mcp.ServerSession); ok && !e.isReady(ss) {
			return nil, errBeforeInitialized
		}
		return next(ctx, method, req)
	}
}

// setReady records that the session's client sent notifications/initialized,
// and forgets sessions that have ended.
func (e *mcpEndpoint) setReady(ss *mcp.ServerSession) {
	live := make(map[*mcp.ServerSession]bool)
	for s := range e.server.Sessions() {
		live[s] = true
	}
	e.readyMu.Lock()
	defer e.readyMu.Unlock()
	for s := range e.ready {
		if !live[s] {
			delete(e.ready, s)
		}
	}
	e.ready[ss] = true
}

// isReady reports whether the session's client sent notifications/initialized.
func (e *mcpEndpoint) isReady(ss *mcp.ServerSession) bool {
	e.readyMu.Lock()
	defer e.readyMu.Unlock()
	return e.ready[ss]
}

// toolCallMiddleware counts tool calls and answers what FastMCP answers
// differently from the Go SDK: an unknown tool is a tool error ("Unknown
// tool: X"), not a JSON-RPC error; and in generation 2 every tool requires
// the openid scope in the token's scope claim.
func (e *mcpEndpoint) toolCallMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		call, ok := req.(*mcp.CallToolRequest)
		if !ok || method != "tools/call" || call.Params == nil {
			return next(ctx, method, req)
		}
		name := call.Params.Name
		e.count(name)
		if _, known := e.tools[name]; !known {
			return errorResult("Unknown tool: " + name), nil
		}
		if e.m.gen == 2 {
			scopes := e.tokenScopes(call)
			if !slices.Contains(scopes, "openid") {
				has := "none"
				if len(scopes) > 0 {
					has = strings.Join(scopes, ", ")
				}
				return errorResult("Error executing tool " + name + ": Access denied to " + name + ": Missing required scopes: openid. Token has scopes: " + has +
					". These are OAuth token scopes, not stored app-password scopes: 'nc_auth_update_scopes' cannot grant them. The OIDC client must permit the scope (Nextcloud → Administration → OpenID Connect) and it must be included in your consent (Nextcloud → Personal settings, where user scope selection is enabled); then re-authorize to obtain a new token."), nil
			}
		}
		return next(ctx, method, req)
	}
}

// tokenScopes returns the scopes of the call's access token: its scope
// claim, or without one defaultTokenScopes (none with StrictScopeClaim).
func (e *mcpEndpoint) tokenScopes(call *mcp.CallToolRequest) []string {
	if call.Extra == nil || call.Extra.TokenInfo == nil {
		return nil
	}
	info := call.Extra.TokenInfo
	if present, _ := info.Extra["scope_claim"].(bool); present || e.m.s.opts.StrictScopeClaim {
		return info.Scopes
	}
	return slices.Clone(defaultTokenScopes)
}

func (e *mcpEndpoint) count(name string) {
	e.countMu.Lock()
	defer e.countMu.Unlock()
	e.calls[name]++
}

func (e *mcpEndpoint) toolCalls(name string) int {
	e.countMu.Lock()
	defer e.countMu.Unlock()
	return e.calls[name]
}

// restart closes every MCP session and starts over with a fresh session
// table, as a restarted server would.
func (e *mcpEndpoint) restart() {
	e.closeSessions()
	h := e.newHandler()
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
}

// closeSessions ends every MCP session, which also ends their event streams.
func (e *mcpEndpoint) closeSessions() {
	var sessions []*mcp.ServerSession
	for ss := range e.server.Sessions() {
		sessions = append(sessions, ss)
	}
	for _, ss := range sessions {
		_ = ss.Close()
	}
}

// tokenClaims are the claims of an OP access token the MCP endpoint reads.
type tokenClaims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Audience json.RawMessage `json:"aud"`
	ID       string          `json:"jti"`
	Scope    *string         `json:"scope"`
}

// audiences returns the aud claim, a string or a list of strings.
func (c tokenClaims) audiences() []string {
	var one string
	if json.Unmarshal(c.Audience, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Audience, &many)
	return many
}

// verify checks a bearer token as the MCP server does: the OP's signature
// and issuer, MCPAudience in aud, and that the OP issued it as an access
// token that is neither expired nor revoked.
func (e *mcpEndpoint) verify(r *http.Request) (*tokenClaims, error) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, errors.New("no bearer token")
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(&e.m.s.store.key.key.PublicKey)
	if err != nil {
		return nil, err
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	if c.Issuer != e.m.s.issuer || c.Subject == "" || !slices.Contains(c.audiences(), MCPAudience) {
		return nil, errors.New("not an access token for this server")
	}
	at, ok := e.m.s.store.accessToken(c.ID)
	if !ok || at.subject != c.Subject {
		return nil, errors.New("the access token is expired, revoked or not an access token")
	}
	return &c, nil
}

// ServeHTTP authenticates the request, then hands it to the MCP handler.
// Without a valid token it answers 401 as the MCP Python SDK does, naming
// the root protected-resource metadata URL, as the real server does.
func (e *mcpEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	claims, err := e.verify(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="Authentication required", resource_metadata="`+
			e.m.url+`/.well-known/oauth-protected-resource"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "Authentication required")
		return
	}
	info := &auth.TokenInfo{
		UserID: claims.Subject,
		Extra:  map[string]any{"scope_claim": claims.Scope != nil},
	}
	if claims.Scope != nil {
		info.Scopes = strings.Fields(*claims.Scope)
	}
	if need := e.m.s.opts.RequiredScope; need != "" {
		has := info.Scopes
		if claims.Scope == nil && !e.m.s.opts.StrictScopeClaim {
			has = defaultTokenScopes
		}
		if !slices.Contains(has, need) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+need+`", resource_metadata="`+
				e.m.url+`/.well-known/oauth-protected-resource", error_description="the token lacks the scope `+need+`"`)
			writeOAuthError(w, http.StatusForbidden, "insufficient_scope", "the token lacks the scope "+need)
			return
		}
	}
	if at, ok := e.m.s.store.accessToken(claims.ID); ok {
		info.Expiration = at.expires
	}
	e.mu.Lock()
	h := e.handler
	e.mu.Unlock()
	// RequireBearerToken puts the token's details in the request context,
	// where the SDK finds them for tool handlers
	// (CallToolRequest.Extra.TokenInfo, with the sub as UserID) and for
	// binding MCP sessions to their user. The token was checked above.
	sdk := auth.RequireBearerToken(func(context.Context, string, *http.Request) (*auth.TokenInfo, error) {
		return info, nil
	}, nil)(h)
	e.serveWire(w, r, sdk)
}
