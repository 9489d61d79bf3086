package e2e

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// fileServer is a plain static file server, as `python3 -m http.server`
// is: HTML pages, 404 for unknown paths, 501 for POST.
func fileServer(t *testing.T) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<html>files</html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Content-Type", "text/html;charset=utf-8")
			w.WriteHeader(http.StatusNotImplemented)
			io.WriteString(w, "<html><body><h1>Error response</h1><p>Error code: 501</p><p>Message: Unsupported method ('POST').</p></body></html>")
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestNotAnMCPServer: pointed at a plain file server, doctor exits 1, and
// doctor, login, tools and proxy all say that it is not an MCP server and
// name the URL; before, doctor passed and login spoke of a refused
// registration.
func TestNotAnMCPServer(t *testing.T) {
	t.Parallel()
	srv := fileServer(t)
	e := newEnv(t).set("NCMCP_STORAGE", "file")
	for _, args := range [][]string{{"doctor"}, {"login"}, {"tools", "list"}} {
		r := e.run(append(args, "--server", srv.URL)...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "not an MCP server") || !strings.Contains(r.Stderr, srv.URL) {
			t.Errorf("ncmcp %s: exit %d, stderr:\n%s", strings.Join(args, " "), r.Code, r.Stderr)
		}
		if args[0] == "doctor" && r.Code != 1 {
			t.Errorf("doctor exit %d, want 1", r.Code)
		}
	}

	// The proxy answers the host's initialize with the same news.
	_, err := proxyHost(t, e, "--server", srv.URL, "--no-login", "--log-file", filepath.Join(t.TempDir(), "proxy.log"))
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || !strings.Contains(werr.Message, "is not an MCP server") || !strings.Contains(werr.Message, srv.URL) {
		t.Errorf("proxy's answer to initialize: %v", err)
	}
}
