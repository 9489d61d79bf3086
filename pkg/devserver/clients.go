package devserver

import (
	"crypto/subtle"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a test account known to the dev server's OpenID Provider.
type User struct {
	Subject  string // stable "sub" claim
	Username string // login name, also the preferred_username claim
	Password string
	Email    string
	Name     string
}

// DefaultUser is the main test account. AutoApprove logs in as this user.
var DefaultUser = User{
	Subject:  "6f1c2a9e-alice",
	Username: "alice",
	Password: "alice",
	Email:    "alice@example.test",
	Name:     "Alice Example",
}

// SecondUser is a second test account, for tests that need two different subjects.
var SecondUser = User{
	Subject:  "8d03b7c4-bob",
	Username: "bob",
	Password: "bob",
	Email:    "bob@example.test",
	Name:     "Bob Example",
}

// Client ids registered at the dev server's OpenID Provider.
const (
	// PublicClientID is a public native client (no secret), allowed by the
	// stand-in's default client registry.
	PublicClientID = "test-mcp-client"
	// ClaudeDesktopClientID is a second public native client, also allowed by
	// the stand-in's default client registry.
	ClaudeDesktopClientID = "claude-desktop"
	// ConfidentialClientID is a native client with a secret. It accepts both
	// client_secret_basic and client_secret_post at the token endpoint. It is
	// not in the stand-in's default registry: add it to Options.AllowedClients
	// to use it through the stand-in's /oauth/authorize.
	ConfidentialClientID = "test-confidential-client"
	// ConfidentialClientSecret is the secret of ConfidentialClientID.
	ConfidentialClientSecret = "test-confidential-secret"
	// ServerClientID is the MCP server's own confidential client, with the
	// redirect URI {URL}/oauth/callback and a secret chosen at random on every
	// start (see Server.ServerClientSecret).
	ServerClientID = "nextcloud-mcp-server"
)

// MCPAudience is the audience every access token of the dev OP carries, next
// to the client id, and the audience the stand-in's /mcp requires.
const MCPAudience = "mcp-server"

// Native clients register a loopback redirect without a port: the OP accepts
// any port on it (RFC 8252, section 7.3), on both host names.
var nativeRedirectURIs = []string{"http://127.0.0.1/callback", "http://localhost/callback"}

// opClient is a client registered at the OP. Values are immutable after
// start; GetClientByClientID hands out copies.
type opClient struct {
	id           string
	secret       string // empty for public clients
	public       bool
	appType      op.ApplicationType
	redirectURIs []string
	authMethod   oidc.AuthMethod
	loginURL     func(authRequestID string) string
	extraScopes  map[string]bool // non-standard scopes the client may be granted
	// grantTypes are the grants the client may use; nil means
	// authorization_code and refresh_token.
	grantTypes []oidc.GrantType
	// secretExpires, if not zero, is when the secret stops working.
	secretExpires time.Time
	// registration is set for clients registered through RFC 7591.
	registration *clientRegistration
}

func (c *opClient) GetID() string                       { return c.id }
func (c *opClient) RedirectURIs() []string              { return slices.Clone(c.redirectURIs) }
func (c *opClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *opClient) ApplicationType() op.ApplicationType { return c.appType }
func (c *opClient) AuthMethod() oidc.AuthMethod         { return c.authMethod }
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType {
	if c.grantTypes != nil {
		return slices.Clone(c.grantTypes)
	}
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *opClient) LoginURL(id string) string            { return c.loginURL(id) }
func (c *opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *opClient) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *opClient) DevMode() bool                        { return false }
func (c *opClient) ClockSkew() time.Duration             { return 0 }
func (c *opClient) IsScopeAllowed(scope string) bool     { return c.extraScopes[scope] }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// checkSecret reports whether secret authenticates the client. A public
// client has no secret and authenticates with an empty one; an expired
// secret authenticates nothing.
func (c *opClient) checkSecret(secret string) bool {
	if c.public {
		return secret == ""
	}
	if !c.secretExpires.IsZero() && time.Now().After(c.secretExpires) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) == 1
}
