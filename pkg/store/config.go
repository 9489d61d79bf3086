package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// ConfigVersion is the version of the config file format this package writes.
const ConfigVersion = 1

// Config is the non-secret state kept in config.json. It never holds a
// token, code, verifier or client secret.
type Config struct {
	Version       int                `json:"version"`
	DefaultServer string             `json:"default_server,omitempty"`
	Servers       map[string]*Server `json:"servers,omitempty"`
}

// Server is what ncmcp knows about one MCP server, keyed by its base URL.
type Server struct {
	URL           string `json:"url"`
	Generation    int    `json:"generation"`
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	// Endpoint is the MCP endpoint; empty in configs written before ncmcp
	// recorded it, which means URL + "/mcp" (see MCPEndpoint).
	Endpoint string `json:"endpoint,omitempty"`
	// Resource is the resource indicator (RFC 8707) of the server's token
	// requests; empty for none.
	Resource string `json:"resource,omitempty"`
	// TokenAuthMethods lists the IdP's token_endpoint_auth_methods_supported,
	// used to pick how a confidential client authenticates on refresh.
	TokenAuthMethods   []string `json:"token_endpoint_auth_methods,omitempty"`
	RevocationEndpoint string   `json:"revocation_endpoint,omitempty"`
	ActiveAccount      string   `json:"active_account,omitempty"`
	// PageOrigin is the origin (scheme://host[:port]) off the server's own
	// whose provisioning pages, Nextcloud's, the user allowed ncmcp to open
	// for this server; empty for none.
	PageOrigin string              `json:"page_origin,omitempty"`
	Accounts   map[string]*Account `json:"accounts,omitempty"`
	Clients    []Client            `json:"clients,omitempty"`
}

// MCPEndpoint returns the server's MCP endpoint.
func (s *Server) MCPEndpoint() string {
	if s.Endpoint != "" {
		return s.Endpoint
	}
	return s.URL + "/mcp"
}

// Grants an account's tokens come from, when not the authorization code's.
const (
	// GrantClientCredentials tokens are the client's own; they are renewed
	// with the client's credentials (RFC 6749 section 4.4).
	GrantClientCredentials = "client_credentials"
	// GrantJWTBearer tokens were given for an identity assertion (RFC 7523),
	// which ncmcp does not keep: they end with their refresh token.
	GrantJWTBearer = "jwt_bearer"
	// GrantWorkloadIdentity tokens were given for a workload's own JWT
	// (workload identity federation, RFC 7523) read from the account's
	// AssertionFile; they are renewed by reading that file again and
	// exchanging what it holds then. Without a file (the JWT came on
	// stdin) nothing renews them.
	GrantWorkloadIdentity = "workload_identity"
)

// Account is one logged-in identity on a server, keyed by its subject (or,
// when the server's tokens do not say who logged in, by UnknownSubject of
// its client).
type Account struct {
	Subject  string   `json:"sub"`
	Username string   `json:"username,omitempty"`
	Email    string   `json:"email,omitempty"`
	Name     string   `json:"name,omitempty"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes,omitempty"`
	// AccessTokenExpiry mirrors the expiry kept with the secret, for display.
	AccessTokenExpiry time.Time `json:"access_token_expiry,omitzero"`
	HasRefreshToken   bool      `json:"has_refresh_token"`
	// Storage names the backend holding this account's secrets: "keyring" or "file".
	Storage    string    `json:"storage"`
	LoggedInAt time.Time `json:"logged_in_at,omitzero"`
	// Identity says how the subject was established: verified_id_token,
	// userinfo, token_response or unknown (see oauth.IdentitySource); empty
	// in configs written before ncmcp recorded it.
	Identity string `json:"identity,omitempty"`
	// IdentityOverTLS is set when the identity was read from an answer
	// that came over https.
	IdentityOverTLS bool `json:"identity_over_tls,omitempty"`

	// Grant is how the tokens were obtained: empty for the authorization
	// code grant (and a refresh token given), else GrantClientCredentials,
	// GrantJWTBearer or GrantWorkloadIdentity.
	Grant string `json:"grant,omitempty"`
	// AssertionFile is the absolute path of the file that holds the
	// workload's JWT of a GrantWorkloadIdentity account (never the JWT
	// itself); empty when it was read from stdin.
	AssertionFile string `json:"assertion_file,omitempty"`

	// EnvRefreshTokenHash is the SHA-256 (hex) of the refresh token this account was
	// started from with NCMCP_REFRESH_TOKEN, so that later runs with the same
	// variable use the stored, possibly rotated, tokens instead.
	EnvRefreshTokenHash string `json:"refresh_token_seed,omitempty"`
}

// UnknownSubject is the account key of a login whose identity is unknown:
// one such account per server and client.
func UnknownSubject(clientID string) string { return "client:" + clientID }

// DisplayName returns the user name, else the e-mail address, else the
// subject, else a description of an unknown identity.
func (a *Account) DisplayName() string {
	for _, s := range []string{a.Username, a.Email, a.Name} {
		if s != "" {
			return s
		}
	}
	if a.Identity == "unknown" {
		return "unknown user (client " + a.ClientID + ")"
	}
	return a.Subject
}

// Client is an OAuth client ncmcp uses with a server.
type Client struct {
	ID           string `json:"client_id"`
	Confidential bool   `json:"confidential,omitempty"`
	// SecretStorage names the backend holding the client secret, if any.
	SecretStorage string `json:"secret_storage,omitempty"`
	// RedirectPort is the loopback port the registration fixes; 0 means any.
	RedirectPort int `json:"redirect_port,omitempty"`
	// Registered is set for a client ncmcp registered dynamically (RFC 7591).
	Registered bool `json:"registered,omitempty"`
	// RegistrationURI is the RFC 7592 registration_client_uri, if any.
	RegistrationURI string `json:"registration_client_uri,omitempty"`
	// RegistrationTokenStorage names the backend holding the registration
	// access token, if any.
	RegistrationTokenStorage string `json:"registration_token_storage,omitempty"`
	// SecretExpiresAt is when the client secret expires; zero means never.
	SecretExpiresAt time.Time `json:"client_secret_expires_at,omitzero"`
	// AuthMethod is the token_endpoint_auth_method the registration
	// named, if any.
	AuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// KeyFile is the private key of a client that authenticates with
	// private_key_jwt: the path of a PEM file, read when a token is needed.
	KeyFile string `json:"private_key_file,omitempty"`
	// MetadataDocument is set for a client whose id is the URL of its
	// client ID metadata document.
	MetadataDocument bool `json:"client_id_metadata_document,omitempty"`
}

// Client returns the stored client with the given id, or nil.
func (s *Server) Client(id string) *Client {
	for i := range s.Clients {
		if s.Clients[i].ID == id {
			return &s.Clients[i]
		}
	}
	return nil
}

// PutClient adds c, replacing a stored client with the same id.
func (s *Server) PutClient(c Client) {
	if old := s.Client(c.ID); old != nil {
		*old = c
		return
	}
	s.Clients = append(s.Clients, c)
}

// RemoveClient forgets the client with the given id.
func (s *Server) RemoveClient(id string) {
	s.Clients = slices.DeleteFunc(s.Clients, func(c Client) bool { return c.ID == id })
}

// RemoveAccount forgets an account; when it was the active one, the only
// remaining account (if exactly one remains) becomes active.
func (s *Server) RemoveAccount(sub string) {
	delete(s.Accounts, sub)
	if s.ActiveAccount == sub {
		s.ActiveAccount = ""
		if ids := s.AccountIDs(); len(ids) == 1 {
			s.ActiveAccount = ids[0]
		}
	}
}

// AccountIDs returns the subjects of the server's accounts, sorted.
func (s *Server) AccountIDs() []string {
	ids := make([]string, 0, len(s.Accounts))
	for id := range s.Accounts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// FindAccount returns the account whose subject or username is name. With
// an empty name it returns the active account, or the only one.
func (s *Server) FindAccount(name string) *Account {
	if name == "" {
		if a := s.Accounts[s.ActiveAccount]; a != nil {
			return a
		}
		if len(s.Accounts) == 1 {
			for _, a := range s.Accounts {
				return a
			}
		}
		return nil
	}
	if a := s.Accounts[name]; a != nil {
		return a
	}
	for _, id := range s.AccountIDs() {
		if a := s.Accounts[id]; a.Username == name || a.Email == name {
			return a
		}
	}
	// Nextcloud user names and e-mail addresses are case-insensitive:
	// people type "Bob" for "bob".
	for _, id := range s.AccountIDs() {
		if a := s.Accounts[id]; (a.Username != "" && strings.EqualFold(a.Username, name)) || (a.Email != "" && strings.EqualFold(a.Email, name)) {
			return a
		}
	}
	return nil
}

// Is reports whether name names the account: its subject exactly, or its
// user name or e-mail address in any case (as Nextcloud compares them).
func (a *Account) Is(name string) bool {
	return a.Subject == name || (a.Username != "" && strings.EqualFold(a.Username, name)) || (a.Email != "" && strings.EqualFold(a.Email, name))
}

// ServerURLs returns the configured server URLs, sorted.
func (c *Config) ServerURLs() []string {
	urls := make([]string, 0, len(c.Servers))
	for u := range c.Servers {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	return urls
}

// ConfigPath returns the config file path inside dir.
func ConfigPath(dir string) string { return filepath.Join(dir, "config.json") }

// LoadConfig reads the config file in dir. A missing file is an empty config.
//
// The directory and the file must be the current user's and writable by no
// one else, and the file no symbolic link (see UnsafePathError).
func LoadConfig(dir string) (*Config, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	if _, err := checkFile(ConfigPath(dir)); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(ConfigPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{Version: ConfigVersion, Servers: map[string]*Server{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("config file %s is damaged (%v): fix or remove it", ConfigPath(dir), err)
	}
	if c.Version > ConfigVersion {
		return nil, fmt.Errorf("config file %s is version %d, newer than this ncmcp understands (%d): upgrade ncmcp", ConfigPath(dir), c.Version, ConfigVersion)
	}
	if c.Servers == nil {
		c.Servers = map[string]*Server{}
	}
	return &c, nil
}

// SaveConfig writes c to dir atomically (write to a temporary file, then
// rename), readable by the owner only.
func SaveConfig(dir string, c *Config) error {
	c.Version = ConfigVersion
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return writeFileAtomic(ConfigPath(dir), append(b, '\n'))
}

// writeFileAtomic writes data to path with mode 0600 so that readers see
// either the old or the new content, never a mix.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := checkDir(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
