package devserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Names of the Flow 2 tools of the MCP endpoint (seed generation).
const (
	// ToolProvision starts Flow 2: provision_nextcloud_access(user_id?).
	ToolProvision = "provision_nextcloud_access"
	// ToolCheckStatus reports a user's Flow 2 token: check_provisioning_status(user_id?).
	ToolCheckStatus = "check_provisioning_status"
	// ToolRevoke deletes a user's Flow 2 token: revoke_nextcloud_access(user_id?).
	ToolRevoke = "revoke_nextcloud_access"
)

// seedDefaultUser is the user check_provisioning_status looks up when it is
// called without user_id, as the seed server does.
const seedDefaultUser = "default_user"

// userArgs are the arguments of the seed-generation Flow 2 tools.
type userArgs struct {
	UserID string `json:"user_id,omitempty" jsonschema:"the user's subject (sub) at the identity provider"`
}

// mcpEndpoint is the bearer-protected MCP Streamable HTTP endpoint.
type mcpEndpoint struct {
	resourceMetadataURL string
	verifier            *op.AccessTokenVerifier
	server              *mcp.Server

	mu      sync.Mutex // guards handler
	handler *mcp.StreamableHTTPHandler

	countMu sync.Mutex // guards calls
	calls   map[string]int
}

// newMCPEndpoint builds the MCP server. Without f (no offline access) it
// offers no tools.
func newMCPEndpoint(resourceMetadataURL string, verifier *op.AccessTokenVerifier, f *flow2) *mcpEndpoint {
	e := &mcpEndpoint{
		resourceMetadataURL: resourceMetadataURL,
		verifier:            verifier,
		calls:               make(map[string]int),
	}
	e.server = mcp.NewServer(&mcp.Implementation{Name: "nextcloud-mcp-server (ncmcp devserver)", Version: "0.0.0-dev"}, &mcp.ServerOptions{
		Logger:       discardLogger,
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{ListChanged: true}},
	})
	if f != nil {
		e.addTools(f)
	}
	e.handler = e.newHandler()
	return e
}

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func (e *mcpEndpoint) newHandler() *mcp.StreamableHTTPHandler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return e.server },
		&mcp.StreamableHTTPOptions{Logger: discardLogger})
}

// userOf returns the user a tool works for: user_id, or else the access
// token's sub.
func userOf(req *mcp.CallToolRequest, args userArgs) string {
	if args.UserID != "" {
		return args.UserID
	}
	if req.Extra != nil && req.Extra.TokenInfo != nil {
		return req.Extra.TokenInfo.UserID
	}
	return ""
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

func (e *mcpEndpoint) addTools(f *flow2) {
	mcp.AddTool(e.server, &mcp.Tool{
		Name:        ToolProvision,
		Description: "Give the MCP server offline access to Nextcloud (Flow 2): returns a URL to open in a browser, unless access is provisioned already.",
	}, func(_ context.Context, req *mcp.CallToolRequest, args userArgs) (*mcp.CallToolResult, provisionResult, error) {
		e.count(ToolProvision)
		return nil, f.provision(userOf(req, args)), nil
	})
	mcp.AddTool(e.server, &mcp.Tool{
		Name:        ToolCheckStatus,
		Description: "Tell whether the MCP server holds offline access to Nextcloud for a user (default: default_user).",
	}, func(_ context.Context, _ *mcp.CallToolRequest, args userArgs) (*mcp.CallToolResult, statusResult, error) {
		e.count(ToolCheckStatus)
		user := args.UserID
		if user == "" {
			user = seedDefaultUser
		}
		return nil, f.status(user), nil
	})
	mcp.AddTool(e.server, &mcp.Tool{
		Name:        ToolRevoke,
		Description: "Delete the MCP server's offline access to Nextcloud for a user and revoke its refresh token.",
	}, func(ctx context.Context, req *mcp.CallToolRequest, args userArgs) (*mcp.CallToolResult, revokeResult, error) {
		e.count(ToolRevoke)
		return nil, f.revoke(ctx, userOf(req, args)), nil
	})
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

// verify checks a bearer token as the MCP server does: the OP's signature
// and issuer, expiry, and MCPAudience in aud.
func (e *mcpEndpoint) verify(ctx context.Context, r *http.Request) (*oidc.AccessTokenClaims, error) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, errors.New("no bearer token")
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, e.verifier)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(claims.Audience, MCPAudience) {
		return nil, errWrongAudience
	}
	return claims, nil
}

// ServeHTTP authenticates the request, then hands it to the MCP handler.
//
// A GET without an MCP session and without "text/event-stream" in Accept is
// no MCP request: it answers 200 {"ok":true} once the token is valid, so
// that a plain GET checks a token.
func (e *mcpEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	claims, err := e.verify(r.Context(), r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="`+e.resourceMetadataURL+`"`)
		desc := "the access token is invalid or expired"
		if r.Header.Get("Authorization") == "" {
			desc = "authentication required"
		}
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", desc)
		return
	}
	if r.Method == http.MethodGet && r.Header.Get("Mcp-Session-Id") == "" && !acceptsEventStream(r) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return
	}
	info := &auth.TokenInfo{
		Scopes:     slices.Clone([]string(claims.Scopes)),
		Expiration: claims.Expiration.AsTime(),
		UserID:     claims.Subject,
		Extra:      map[string]any{"client_id": claims.ClientID},
	}
	e.mu.Lock()
	h := e.handler
	e.mu.Unlock()
	// RequireBearerToken puts the token's details in the request context,
	// where the SDK finds them for tool handlers
	// (CallToolRequest.Extra.TokenInfo, with the sub as UserID) and for
	// binding MCP sessions to their user. The token was checked above.
	auth.RequireBearerToken(func(context.Context, string, *http.Request) (*auth.TokenInfo, error) {
		return info, nil
	}, nil)(h).ServeHTTP(w, r)
}

func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}
