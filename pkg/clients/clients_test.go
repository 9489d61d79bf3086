package clients_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/clients"
	"github.com/ncmcp/ncmcp/pkg/credential"
	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/devserver/devlogin"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/registration"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// setup starts a generation-1 dev server (its OP registers clients with
// RFC 7591 and 7592) and returns a manager on a file store.
func setup(t *testing.T, opts devserver.Options) (*clients.Manager, *discovery.Result, *devserver.Server) {
	t.Helper()
	srv, disc := devlogin.Start(t, opts)
	m := &clients.Manager{Store: devlogin.FileStore(t), HTTP: http.DefaultClient,
		Discover: func(ctx context.Context, u string) (*discovery.Result, error) {
			return discovery.Discover(ctx, http.DefaultClient, u)
		}}
	return m, disc, srv
}

func stored(t *testing.T, m *clients.Manager, serverURL string) *store.Server {
	t.Helper()
	cfg, err := store.LoadConfig(m.Store.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Servers[serverURL]
}

func TestRegisterStoresTheClientAndItsSecrets(t *testing.T) {
	m, disc, _ := setup(t, devserver.Options{})
	ctx := context.Background()
	reg, err := m.Register(ctx, disc, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := reg.Client
	if c.ID == "" || !c.Registered || c.RedirectPort == 0 || c.RegistrationURI == "" || c.RegistrationTokenStorage != store.BackendFile {
		t.Fatalf("registered %+v: want an id, a fixed port, and the RFC 7592 URI with its token stored", c)
	}
	srv := stored(t, m, disc.ServerURL)
	if srv == nil || srv.Client(c.ID) == nil || srv.Issuer != disc.Provider.Issuer || srv.TokenEndpoint == "" {
		t.Fatalf("the server entry %+v does not hold the client and the server's metadata", srv)
	}
	if tok, err := m.Store.RegistrationToken(disc.ServerURL, srv.Client(c.ID)); err != nil || tok == "" {
		t.Fatalf("registration token: %q, %v", tok, err)
	}

	// Removing it deletes the registration at the OP: a second removal
	// with the same token would be refused, and the client is forgotten.
	res, err := m.Remove(ctx, disc.ServerURL, c.ID, false)
	if err != nil || !res.Deleted {
		t.Fatalf("Remove = %+v, %v; want the registration deleted", res, err)
	}
	if stored(t, m, disc.ServerURL).Client(c.ID) != nil {
		t.Error("the client is still stored")
	}
	if _, err := m.Remove(ctx, disc.ServerURL, c.ID, false); !errors.As(err, new(*clients.NotStoredError)) {
		t.Errorf("removing it again: %v, want clients.NotStoredError", err)
	}
}

func TestRegisterWaitsOutAShortRetryAfter(t *testing.T) {
	m, disc, _ := setup(t, devserver.Options{RegistrationFault: devserver.RegistrationFaultRateLimit})
	var notices []string
	m.Notice = func(s string) { notices = append(notices, s) }
	reg, err := m.Register(context.Background(), disc, 0)
	if err != nil {
		t.Fatalf("Register after a 429 with Retry-After 1: %v", err)
	}
	if reg.Client.ID == "" || len(notices) != 1 {
		t.Errorf("client %q, notices %q: want one notice of the retry", reg.Client.ID, notices)
	}
}

func TestRegisterRefusedStoresNothing(t *testing.T) {
	m, disc, _ := setup(t, devserver.Options{RegistrationFault: devserver.RegistrationFaultRefuse})
	_, err := m.Register(context.Background(), disc, 0)
	var re *registration.Error
	if !errors.As(err, &re) || re.Status != http.StatusBadRequest {
		t.Fatalf("err = %v, want the registration's 400", err)
	}
	if srv := stored(t, m, disc.ServerURL); srv != nil && len(srv.Clients) > 0 {
		t.Errorf("stored %+v after a refusal", srv.Clients)
	}

	noReg := *disc
	noReg.Provider.RegistrationEndpoint = ""
	if _, err := m.Register(context.Background(), &noReg, 0); !errors.As(err, new(*clients.NoRegistrationError)) {
		t.Errorf("without a registration endpoint: %v, want clients.NoRegistrationError", err)
	}
}

func TestAddKeepsASecretNotGivenAgain(t *testing.T) {
	m, _, _ := setup(t, devserver.Options{})
	ctx := context.Background()
	const u = "https://mcp.example.com"
	c, fellBack, err := m.Add(ctx, u, store.Client{ID: "ci"}, "s3cret")
	if err != nil || fellBack != nil || !c.Confidential {
		t.Fatalf("Add = %+v, %v, %v", c, fellBack, err)
	}
	c, _, err = m.Add(ctx, u, store.Client{ID: "ci", RedirectPort: 8400}, "")
	if err != nil || !c.Confidential || c.RedirectPort != 8400 {
		t.Fatalf("Add again without the secret = %+v, %v: want it still confidential, port 8400", c, err)
	}
	if s, err := m.Store.ClientSecret(u, &c); err != nil || s != "s3cret" {
		t.Errorf("secret %q, %v", s, err)
	}
	res, err := m.Remove(ctx, u, "ci", true)
	if err != nil || res.Deleted {
		t.Fatalf("Remove --local-only = %+v, %v", res, err)
	}
	if _, err := m.Store.ClientSecret(u, &c); err == nil {
		t.Error("the secret outlived its client")
	}
}

func TestRecover(t *testing.T) {
	m, disc, _ := setup(t, devserver.Options{})
	ctx := context.Background()
	reg, err := m.Register(ctx, disc, 0)
	if err != nil {
		t.Fatal(err)
	}
	gone := &credential.ClientGoneError{Server: disc.ServerURL, ClientID: reg.Client.ID, Err: errors.New("invalid_client")}
	err = m.Recover(ctx, gone)
	var re *clients.ReplacedError
	if !errors.As(err, &re) || re.Old != reg.Client.ID || re.New == "" || re.New == re.Old {
		t.Fatalf("Recover = %v, want a clients.ReplacedError with a new client", err)
	}
	srv := stored(t, m, disc.ServerURL)
	if srv.Client(re.Old) != nil || srv.Client(re.New) == nil {
		t.Errorf("stored clients %+v: want only the new one", srv.Clients)
	}

	// A pre-registered client is the admin's: it is left alone.
	if _, _, err := m.Add(ctx, disc.ServerURL, store.Client{ID: "admins"}, ""); err != nil {
		t.Fatal(err)
	}
	pre := &credential.ClientGoneError{Server: disc.ServerURL, ClientID: "admins", Err: errors.New("invalid_client")}
	if err := m.Recover(ctx, pre); err != pre {
		t.Errorf("Recover of a pre-registered client = %v, want the error unchanged", err)
	}
	if stored(t, m, disc.ServerURL).Client("admins") == nil {
		t.Error("the pre-registered client was forgotten")
	}

	// A server that cannot be discovered now: nothing changes.
	m.Discover = func(context.Context, string) (*discovery.Result, error) { return nil, errors.New("unreachable") }
	again := &credential.ClientGoneError{Server: disc.ServerURL, ClientID: re.New, Err: errors.New("invalid_client")}
	if err := m.Recover(ctx, again); !errors.As(err, new(*clients.UnrecoveredError)) {
		t.Errorf("Recover without discovery = %v, want clients.UnrecoveredError", err)
	}
	if stored(t, m, disc.ServerURL).Client(re.New) == nil {
		t.Error("the client was forgotten although no new one could be registered")
	}
}
