package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// heavyPrefixes are packages that must never be linked into ncmcp: the dev
// server's OP and test-only browser drivers, the MCP Go SDK (a server
// and client to test against; its package initialisation, encoding/gob
// and JSON Schema included, cost a cached 'ncmcp token' about 0.3 ms),
// and the terminal UI, markdown and highlighting libraries whose package
// initialisation makes other CLIs slow to start (every linked package's
// init runs for every command, including 'ncmcp token').
var heavyPrefixes = []string{
	"github.com/zitadel/",
	"github.com/ncmcp/ncmcp/pkg/devserver",
	"github.com/chromedp/",
	"github.com/charmbracelet/",
	"github.com/gdamore/tcell",
	"github.com/rivo/tview",
	"github.com/alecthomas/chroma",
	"github.com/yuin/goldmark",
	"github.com/mark3labs/mcp-go",
	"github.com/modelcontextprotocol/go-sdk",
	"github.com/google/jsonschema-go",
	"encoding/gob",
	"github.com/santhosh-tekuri/jsonschema",
	"go.opentelemetry.io/",
}

func TestNoHeavyPackagesLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, p := range heavyPrefixes {
			if strings.HasPrefix(pkg, p) {
				t.Errorf("ncmcp links %s: keep it out of the binary that 'ncmcp token' runs in", pkg)
			}
		}
	}
}

// TestBinarySize keeps the stripped binary under 13 MB (11.4 MB on
// 2026-12-05; kubelogin's is 15 MB): start-up time, which a cached
// 'ncmcp token' mostly is, grows with what is linked.
func TestBinarySize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	bin := filepath.Join(t.TempDir(), "ncmcp")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 13 << 20
	if fi.Size() > limit {
		t.Fatalf("stripped ncmcp is %.1f MB, over the %d MB budget", float64(fi.Size())/(1<<20), limit>>20)
	}
	t.Logf("stripped ncmcp: %.1f MB", float64(fi.Size())/(1<<20))
}
