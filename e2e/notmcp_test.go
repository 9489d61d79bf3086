package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	cmd := exec.Command(ncmcpBin, "proxy", "--server", srv.URL, "--no-login", "--log-file", filepath.Join(t.TempDir(), "proxy.log"))
	cmd.Env = e.list()
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); _ = cmd.Wait() }()
	io.WriteString(in, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`+"\n")
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case l := <-lines:
		var m struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal([]byte(l), &m) != nil || !strings.Contains(m.Error.Message, "is not an MCP server") || !strings.Contains(m.Error.Message, srv.URL) {
			t.Errorf("proxy's answer to initialize: %s", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the proxy did not answer initialize")
	}
}
