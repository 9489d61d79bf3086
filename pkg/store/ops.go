package store

import (
	"context"
	"fmt"
)

// SaveError reports a change to storage that failed; nothing of it stays
// stored.
type SaveError struct {
	// What names what was being stored.
	What string
	Err  error
}

func (e *SaveError) Error() string {
	return fmt.Sprintf("store the %s: %v; nothing was stored", e.What, e.Err)
}

func (e *SaveError) Unwrap() error { return e.Err }

// Login is what one login stores: the server's metadata, the account, its
// tokens, and the client the tokens were issued to.
type Login struct {
	// Server carries the server's metadata (URL, generation, issuer,
	// endpoints); its accounts and clients are ignored.
	Server Server
	// Account is the account's metadata; Storage is filled in.
	Account Account
	Tokens  Tokens
	// Client is the client as far as this login knows it: its id, and its
	// AuthMethod and KeyFile when set. Other stored fields are kept.
	Client Client
	// ClientSecret, when set, is stored as the client's secret.
	ClientSecret string
}

// Saved says where a login's secrets went.
type Saved struct {
	// Backend is BackendKeyring or BackendFile.
	Backend string
	// FellBack is the keyring's failure when the secrets went to the file
	// instead; nil otherwise.
	FellBack error
}

// SaveLogin stores a login under the store lock: the secrets first, then
// the config, with the account made the server's active one. When
// anything fails nothing of the login stays stored.
func (s *Store) SaveLogin(ctx context.Context, l *Login) (*Saved, error) {
	unlock, err := s.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cfg, err := LoadConfig(s.Dir)
	if err != nil {
		return nil, err
	}
	serverURL, subject := l.Server.URL, l.Account.Subject
	backend, fellBack, err := s.PutTokens(serverURL, subject, &l.Tokens)
	if err != nil {
		return nil, &SaveError{What: "tokens", Err: err}
	}
	var secretBackend string
	if l.ClientSecret != "" {
		if secretBackend, _, err = s.Put(ClientSecretKey(serverURL, l.Client.ID), l.ClientSecret); err != nil {
			_ = s.DeleteTokens(backend, serverURL, subject)
			return nil, &SaveError{What: "client secret", Err: err}
		}
	}
	srv := cfg.PutServer(l.Server)
	if old := srv.Accounts[subject]; old != nil && old.Storage != backend {
		_ = s.DeleteTokens(old.Storage, serverURL, subject)
	}
	acct := l.Account
	acct.Storage = backend
	srv.Accounts[subject] = &acct
	srv.ActiveAccount = subject
	c := Client{ID: l.Client.ID}
	if prev := srv.Client(c.ID); prev != nil {
		c = *prev
	}
	if secretBackend != "" {
		c.Confidential, c.SecretStorage = true, secretBackend
	}
	if l.Client.AuthMethod != "" {
		c.AuthMethod = l.Client.AuthMethod
	}
	if l.Client.KeyFile != "" {
		c.KeyFile = l.Client.KeyFile
	}
	if c.ID != "" {
		// A login without a client (a workload's JWT needs none) keeps
		// no client.
		srv.PutClient(c)
	}
	if err := SaveConfig(s.Dir, cfg); err != nil {
		_ = s.DeleteTokens(backend, serverURL, subject)
		return nil, &SaveError{What: "config", Err: err}
	}
	return &Saved{Backend: backend, FellBack: fellBack}, nil
}

// PutServer returns the config entry of the server meta.URL, created if
// needed, with meta's metadata (generation, issuer, endpoints) recorded.
// The first server becomes the default one.
func (c *Config) PutServer(meta Server) *Server {
	srv := c.Servers[meta.URL]
	if srv == nil {
		srv = &Server{URL: meta.URL}
		c.Servers[meta.URL] = srv
	}
	srv.Generation = meta.Generation
	srv.Issuer = meta.Issuer
	srv.TokenEndpoint = meta.TokenEndpoint
	srv.TokenAuthMethods = meta.TokenAuthMethods
	srv.RevocationEndpoint = meta.RevocationEndpoint
	srv.Endpoint = meta.Endpoint
	srv.Resource = meta.Resource
	if srv.Accounts == nil {
		srv.Accounts = map[string]*Account{}
	}
	if c.DefaultServer == "" {
		c.DefaultServer = meta.URL
	}
	return srv
}

// DeleteTokens removes an account's tokens from a backend.
func (s *Store) DeleteTokens(backend, serverURL, subject string) error {
	b, err := s.Backend(backend)
	if err != nil {
		return err
	}
	return b.Delete(TokenKey(serverURL, subject))
}

// RemoveAccount forgets an account and deletes its tokens, under the store
// lock. It returns the account as it was, or nil when it was not stored.
func (s *Store) RemoveAccount(ctx context.Context, serverURL, subject string) (*Account, error) {
	var gone *Account
	err := s.Update(ctx, func(cfg *Config) error {
		srv := cfg.Servers[serverURL]
		if srv == nil || srv.Accounts[subject] == nil {
			return nil
		}
		a := srv.Accounts[subject]
		if err := s.DeleteTokens(a.Storage, serverURL, subject); err != nil {
			return fmt.Errorf("remove the tokens of %s: %w", a.DisplayName(), err)
		}
		srv.RemoveAccount(subject)
		gone = a
		return nil
	})
	return gone, err
}

// SecretError reports a client secret or registration access token that
// could not be read.
type SecretError struct {
	ClientID string
	Err      error
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("read the secret of client %s: %v", e.ClientID, e.Err)
}

func (e *SecretError) Unwrap() error { return e.Err }

// ClientSecret reads the stored secret of a confidential client.
func (s *Store) ClientSecret(serverURL string, c *Client) (string, error) {
	return s.clientValue(c.SecretStorage, ClientSecretKey(serverURL, c.ID), c.ID)
}

// RegistrationToken reads the stored registration access token (RFC 7592)
// of a client.
func (s *Store) RegistrationToken(serverURL string, c *Client) (string, error) {
	return s.clientValue(c.RegistrationTokenStorage, RegistrationTokenKey(serverURL, c.ID), c.ID)
}

func (s *Store) clientValue(backend, key, id string) (string, error) {
	b, err := s.Backend(backend)
	if err != nil {
		return "", &SecretError{ClientID: id, Err: err}
	}
	v, err := b.Get(key)
	if err != nil {
		return "", &SecretError{ClientID: id, Err: err}
	}
	return v, nil
}

// ClientSecrets are the secrets a client's registration came with.
type ClientSecrets struct {
	Secret            string
	RegistrationToken string
}

// SaveClient stores a client for a server, with its secrets, under the
// store lock. meta, when not nil, records the server's metadata too
// (creating its entry); without it the server entry is created bare when
// missing. A stored confidential client keeps its secret when c brings
// none. On failure nothing is stored. It returns the client as stored and
// the keyring's failure when a secret went to the file instead.
func (s *Store) SaveClient(ctx context.Context, serverURL string, meta *Server, c Client, secrets ClientSecrets) (Client, error, error) {
	var fellBack error
	err := s.Update(ctx, func(cfg *Config) error {
		var stored []string
		undo := func() {
			for _, k := range stored {
				for _, name := range []string{BackendKeyring, BackendFile} {
					if b, err := s.Backend(name); err == nil {
						_ = b.Delete(k)
					}
				}
			}
		}
		if secrets.Secret != "" {
			key := ClientSecretKey(serverURL, c.ID)
			b, fb, err := s.Put(key, secrets.Secret)
			if err != nil {
				return &SaveError{What: "client secret", Err: err}
			}
			stored = append(stored, key)
			c.Confidential, c.SecretStorage, fellBack = true, b, fb
		}
		if secrets.RegistrationToken != "" {
			b, fb, err := s.Put(RegistrationTokenKey(serverURL, c.ID), secrets.RegistrationToken)
			if err != nil {
				undo()
				return &SaveError{What: "registration access token", Err: err}
			}
			c.RegistrationTokenStorage = b
			if fellBack == nil {
				fellBack = fb
			}
		}
		var srv *Server
		if meta != nil {
			m := *meta
			m.URL = serverURL
			srv = cfg.PutServer(m)
		} else if srv = cfg.Servers[serverURL]; srv == nil {
			srv = &Server{URL: serverURL}
			cfg.Servers[serverURL] = srv
			if cfg.DefaultServer == "" {
				cfg.DefaultServer = serverURL
			}
		}
		if old := srv.Client(c.ID); old != nil && old.Confidential && !c.Confidential {
			c.Confidential, c.SecretStorage = old.Confidential, old.SecretStorage
		}
		srv.PutClient(c)
		return nil
	})
	return c, fellBack, err
}

// ForgetClient forgets a server's client and deletes its secrets, under
// the store lock. It returns the display names of the accounts that logged
// in with it. A client already forgotten is not an error.
func (s *Store) ForgetClient(ctx context.Context, serverURL, id string) ([]string, error) {
	var users []string
	err := s.Update(ctx, func(cfg *Config) error {
		srv := cfg.Servers[serverURL]
		if srv == nil || srv.Client(id) == nil {
			return nil
		}
		c := srv.Client(id)
		for key, backend := range map[string]string{
			ClientSecretKey(serverURL, id):      c.SecretStorage,
			RegistrationTokenKey(serverURL, id): c.RegistrationTokenStorage,
		} {
			if b, err := s.Backend(backend); err == nil {
				if err := b.Delete(key); err != nil {
					return fmt.Errorf("remove a secret of client %s: %w", id, err)
				}
			}
		}
		for _, sub := range srv.AccountIDs() {
			if a := srv.Accounts[sub]; a.ClientID == id {
				users = append(users, a.DisplayName())
			}
		}
		srv.RemoveClient(id)
		return nil
	})
	return users, err
}

// SetPageOrigin records origin as the one whose provisioning pages ncmcp
// may open for the server without asking ("" forgets it), under the store
// lock. The server must be configured.
func (s *Store) SetPageOrigin(ctx context.Context, serverURL, origin string) error {
	return s.Update(ctx, func(cfg *Config) error {
		srv := cfg.Servers[serverURL]
		if srv == nil {
			return fmt.Errorf("%s is not configured", serverURL)
		}
		srv.PageOrigin = origin
		return nil
	})
}
