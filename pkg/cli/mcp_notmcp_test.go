package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestConnectFailureNoSecondDiscovery: a connection the MCP server itself
// refuses (a JSON-RPC error to initialize) is reported as it is, with no
// second round of discovery to tell whether the URL is an MCP server.
func TestConnectFailureNoSecondDiscovery(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/mcp" {
			http.NotFound(w, r)
			return
		}
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "error": map[string]any{"code": -32603, "message": "the server is overloaded"}})
	}))
	defer srv.Close()
	code, _, stderr := runTools(t, "tools", "list", "--server", srv.URL+"/mcp")
	if code == ExitOK || !strings.Contains(stderr, "the server is overloaded") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range paths {
		if strings.Contains(p, "/.well-known/") {
			t.Errorf("discovery ran after the failed connection: %q", paths)
			break
		}
	}
}
