package devserver

import (
	"crypto/subtle"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a test account known to the dev server's OpenID Provider.
type User struct {
	Subject  string // stable "sub" claim
	Username string // login name on the OP's login page
	Password string
	Email    string
	Name     string
	// PreferredUsername, if set, is the preferred_username claim of the
	// user's tokens (with the profile scope); empty means no such claim, as
	// with the Dex user of the recordings.
	PreferredUsername string
}

// DefaultUser is the main test account. AutoApprove logs in as this user.
var DefaultUser = User{
	Subject:           "6f1c2a9e-alice",
	Username:          "alice",
	Password:          "alice",
	Email:             "alice@example.test",
	Name:              "Alice Example",
	PreferredUsername: "alice",
}

// SecondUser is a second test account, for tests that need two different subjects.
var SecondUser = User{
	Subject:           "8d03b7c4-bob",
	Username:          "bob",
	Password:          "bob",
	Email:             "bob@example.test",
	Name:              "Bob Example",
	PreferredUsername: "bob",
}

// RecordedUser is the test account of the recordings of the real servers
// (../shared/recordings): Dex's test user, with the same subject, e-mail
// address and name, and no preferred_username claim. Its password is
// "kilgore".
var RecordedUser = User{
	Subject:  "Cg0wLTM4NS0yODA4OS0wEgRtb2Nr",
	Username: "kilgore",
	Password: "kilgore",
	Email:    "kilgore@kilgore.trout",
	Name:     "Kilgore Trout",
}

// testUsers are the accounts of the OP, in the order its login page lists them.
var testUsers = []User{DefaultUser, SecondUser, RecordedUser}

// Client ids registered at the dev server's OpenID Provider.
const (
	// PublicClientID is a public native client (no secret), allowed by the
	// MCP server's default client registry; the generation-2 server maps
	// loopback registrations to it.
	PublicClientID = "test-mcp-client"
	// ClaudeDesktopClientID is a second public native client, also allowed by
	// the MCP server's default client registry.
	ClaudeDesktopClientID = "claude-desktop"
	// ConfidentialClientID is a native client with a secret. It accepts both
	// client_secret_basic and client_secret_post at the token endpoint. It is
	// not in the MCP server's default registry: add it to
	// Options.AllowedClients to use it through the server's /oauth/authorize.
	ConfidentialClientID = "test-confidential-client"
	// ConfidentialClientSecret is the secret of ConfidentialClientID.
	ConfidentialClientSecret = "test-confidential-secret"
	// ServerClientID is the MCP server's own confidential client, with the
	// redirect URI {URL}/oauth/callback and a secret chosen at random on every
	// start (see Server.ServerClientSecret).
	ServerClientID = "nextcloud-mcp-server"
)

// MCPAudience is the audience the MCP endpoint requires in access tokens:
// the server's own IdP client. Generation-2 tokens are issued to that client
// (aud "nextcloud-mcp-server"); generation-1 tokens name it through Dex's
// cross-client scope audience:server:client_id:nextcloud-mcp-server, which
// the generation-1 server asks for (DefaultScopes).
const MCPAudience = ServerClientID

// crossClientScopePrefix is Dex's cross-client scope: a client asking for
// audience:server:client_id:X gets tokens whose aud names X and itself, and
// whose azp names itself.
const crossClientScopePrefix = "audience:server:client_id:"

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
	// knownClient reports whether a client id exists at the OP (for Dex's
	// cross-client scope).
	knownClient func(id string) bool
	// grantTypes are the grants the client may use; nil means
	// authorization_code and refresh_token.
	grantTypes []oidc.GrantType
	// secretExpires, if not zero, is when the secret stops working.
	secretExpires time.Time
	// registration is set for clients registered through RFC 7591.
	registration *clientRegistration
	// now is the OP's clock.
	now func() time.Time
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
func (c *opClient) LoginURL(id string) string           { return c.loginURL(id) }
func (c *opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *opClient) IDTokenLifetime() time.Duration      { return time.Hour }
func (c *opClient) DevMode() bool                       { return false }
func (c *opClient) ClockSkew() time.Duration            { return 0 }

// IsScopeAllowed lets zitadel keep the scopes Dex knows besides the
// standard ones (the authorization endpoint refuses every other scope
// before zitadel sees it, see Server.checkAuthScopes).
func (c *opClient) IsScopeAllowed(scope string) bool { return dexScope(scope, c.knownClient) }

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
	if !c.secretExpires.IsZero() && c.now().After(c.secretExpires) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) == 1
}

// dexScopes are the scopes Dex knows by name (its scopes_supported).
var dexScopes = []string{"openid", "email", "groups", "profile", "offline_access"}

// dexScope reports whether Dex accepts scope: one of dexScopes,
// federated:id, or the cross-client scope of a known client.
func dexScope(scope string, knownClient func(string) bool) bool {
	if slices.Contains(dexScopes, scope) || scope == "federated:id" {
		return true
	}
	peer, ok := strings.CutPrefix(scope, crossClientScopePrefix)
	return ok && peer != "" && knownClient != nil && knownClient(peer)
}

// tokenAudience returns, as Dex does, the audience of the tokens issued to
// clientID for scopes: the peers named by cross-client scopes followed by the
// client itself, and the authorized party (azp) when there are peers; else
// the client alone and no azp.
func tokenAudience(clientID string, scopes []string) (aud []string, azp string) {
	for _, sc := range scopes {
		if peer, ok := strings.CutPrefix(sc, crossClientScopePrefix); ok && peer != clientID && !slices.Contains(aud, peer) {
			aud = append(aud, peer)
		}
	}
	if len(aud) == 0 {
		return []string{clientID}, ""
	}
	return append(aud, clientID), clientID
}
