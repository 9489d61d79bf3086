package login

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ncmcp/ncmcp/pkg/clients"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// Moved reports a server whose authorization server changed: its
// protected-resource metadata names another one than the one its stored
// logins and clients came from.
type Moved struct {
	Server   string
	From, To string
	// Clients are the ids of the clients ncmcp forgot: they belong to From.
	Clients []string
	// Accounts are the accounts whose logins ncmcp forgot: their tokens
	// were issued by From.
	Accounts []string
	// Kept is the client the user named that ncmcp kept, if any.
	Kept string
	// Leftover is set when secrets of what was forgotten could not be
	// deleted; the config no longer names them.
	Leftover error
}

func (m *Moved) String() string {
	var parts []string
	if len(m.Accounts) > 0 {
		parts = append(parts, fmt.Sprintf("the logins of %s were the old one's and are forgotten", joinNames(m.Accounts)))
	}
	if len(m.Clients) > 0 {
		parts = append(parts, fmt.Sprintf("its clients (%s) are forgotten, never to be shown to the new one", joinNames(m.Clients)))
	}
	if m.Kept != "" {
		parts = append(parts, fmt.Sprintf("client %s is kept, as you named it", m.Kept))
	}
	msg := fmt.Sprintf("The authorization server of %s is now %s, no longer %s", m.Server, m.To, m.From)
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, "; ")
	}
	return msg + "."
}

func joinNames(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// FollowAuthorizationServer makes the store follow a server to the
// authorization server discovery names now (SEP-2352). Logins and clients
// belong to the authorization server that issued or registered them,
// which is the issuer the server's entry records (store.Server.Issuer,
// written with every login and registration). When discovery names
// another one, none of them is for use at the new one: a client id, a
// client secret or a token of the old authorization server must not reach
// the new one, whose token endpoint the entry is about to name. So the
// accounts (and their tokens) and the clients (and their secrets and
// registration tokens) are forgotten, and the entry records the new
// authorization server; a browser login then picks, or registers, a
// client there. keep is a client id the user named (--client-id): it is
// theirs to choose, so a client of that id that the user recorded is kept
// with its secret; one that ncmcp registered is forgotten all the same,
// since it was registered at the old authorization server, and the id
// alone goes on to the new one.
//
// It returns nil when nothing changed: the server is not stored, records
// no issuer (a client recorded before any login), or the same one.
func (f *Flow) FollowAuthorizationServer(ctx context.Context, disc *discovery.Result, keep string) (*Moved, error) {
	unlock, err := f.Store.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cfg, err := store.LoadConfig(f.Store.Dir)
	if err != nil {
		return nil, err
	}
	srv := cfg.Servers[disc.ServerURL]
	if srv == nil || srv.Issuer == "" || srv.Issuer == disc.Provider.Issuer {
		return nil, nil
	}
	m := &Moved{Server: disc.ServerURL, From: srv.Issuer, To: disc.Provider.Issuer}
	type secret struct{ backend, key string }
	var secrets []secret
	for _, sub := range srv.AccountIDs() {
		a := srv.Accounts[sub]
		m.Accounts = append(m.Accounts, a.DisplayName())
		if a.Storage != "" {
			secrets = append(secrets, secret{a.Storage, store.TokenKey(srv.URL, sub)})
		}
		srv.RemoveAccount(sub)
	}
	for _, c := range slices.Clone(srv.Clients) {
		if keep != "" && c.ID == keep && !c.Registered {
			m.Kept = c.ID
			continue
		}
		m.Clients = append(m.Clients, c.ID)
		if c.SecretStorage != "" {
			secrets = append(secrets, secret{c.SecretStorage, store.ClientSecretKey(srv.URL, c.ID)})
		}
		if c.RegistrationTokenStorage != "" {
			secrets = append(secrets, secret{c.RegistrationTokenStorage, store.RegistrationTokenKey(srv.URL, c.ID)})
		}
		srv.RemoveClient(c.ID)
	}
	cfg.PutServer(clients.ServerMeta(disc))
	if err := store.SaveConfig(f.Store.Dir, cfg); err != nil {
		return nil, &store.SaveError{What: "config", Err: err}
	}
	// The config names none of them any more: a secret left behind is
	// never used, only kept in the keyring or file.
	var errs []error
	for _, s := range secrets {
		b, err := f.Store.Backend(s.backend)
		if err == nil {
			err = b.Delete(s.key)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	m.Leftover = errors.Join(errs...)
	return m, nil
}
