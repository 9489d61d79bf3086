// Package devlogin sets up what the tests of ncmcp's use cases share: a
// dev server with its discovery result, and real browser logins at it
// (the dev IdP approves at once with devserver.Options.AutoApprove).
package devlogin

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// Start starts a dev server, stopped when the test ends, and discovers it.
func Start(t testing.TB, opts devserver.Options) (*devserver.Server, *discovery.Result) {
	t.Helper()
	srv, err := devserver.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	disc, err := discovery.Discover(context.Background(), http.DefaultClient, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	return srv, disc
}

// FileStore is a store of file secrets in a fresh directory.
func FileStore(t testing.TB) *store.Store {
	return store.New(t.TempDir(), store.ModeFile, nil, time.Second)
}

// Browse opens a page the way a browser does, in the background: it
// follows the redirects, keeping cookies, and drops the answer.
func Browse(url string) {
	go func() {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: time.Minute}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
		}
	}()
}

// Login runs a browser login at the discovered server as the dev server's
// public client, with the given scopes, and stores it in st.
func Login(ctx context.Context, st *store.Store, disc *discovery.Result, scopes []string) (*login.Result, error) {
	f := &login.Flow{Store: st, HTTP: http.DefaultClient}
	a, err := f.Start(login.Browser{Disc: disc, Client: oauth.Client{ID: devserver.PublicClientID}, Scopes: scopes})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	Browse(a.StartURL)
	return a.Wait(ctx, nil, nil)
}
