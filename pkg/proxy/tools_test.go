package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ncmcp/ncmcp/pkg/mcpwire"
)

// TestToolsBounds: what the proxy keeps of listed tools stays within its
// bounds, in entries and in bytes, the oldest forgotten first; tools
// without annotations take no room, and a tool listed again replaces
// what was known of it.
func TestToolsBounds(t *testing.T) {
	region := []mcpwire.ParamHeader{{Header: "Region", Path: []string{"region"}}}
	ts := newTools(3, 1<<20)
	for i := range 4 {
		ts.set(fmt.Sprint("t", i), region, nil)
	}
	if n, _ := ts.size(); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
	if h, _ := ts.get("t0"); h != nil {
		t.Error("the oldest tool was not forgotten")
	}
	if h, _ := ts.get("t3"); len(h) != 1 {
		t.Error("the newest tool was forgotten")
	}
	ts.set("plain", nil, nil)
	ts.set("t1", nil, nil) // listed again, without annotations
	if n, _ := ts.size(); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
	ts.set("t2", nil, errors.New("broken"))
	if _, err := ts.get("t2"); err == nil {
		t.Error("a tool listed again as invalid is not known as invalid")
	}

	ts = newTools(1000, 1000)
	long := []mcpwire.ParamHeader{{Header: strings.Repeat("h", 100), Path: []string{strings.Repeat("p", 100)}}}
	for i := range 50 {
		ts.set(fmt.Sprint("t", i), long, nil)
		if _, b := ts.size(); b > 1000 {
			t.Fatalf("%d bytes kept, over the bound", b)
		}
	}
	if n, _ := ts.size(); n != 3 {
		t.Errorf("%d entries of 264 bytes in 1000, want 3", n)
	}
	ts.set("huge", []mcpwire.ParamHeader{{Header: strings.Repeat("h", 2000), Path: []string{"a"}}}, nil)
	if h, _ := ts.get("huge"); h != nil {
		t.Error("an entry over the whole bound was kept")
	}
	if n, _ := ts.size(); n != 3 {
		t.Errorf("an entry over the whole bound displaced others: %d entries", n)
	}
}

// TestToolsListBounds: a tools/list result of more tools than the
// default bounds leaves the proxy within them, with the latest kept.
func TestToolsListBounds(t *testing.T) {
	p := New(Options{HTTP: http.DefaultClient})
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":1,"result":{"tools":[`)
	const n = DefaultMaxTools + 500
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"tool-%d","inputSchema":{"type":"object","properties":{"r":{"type":"string","x-mcp-header":"R%d"}}}}`, i, i)
	}
	b.WriteString(`]}}`)
	out, invalid := p.tools.observe([]byte(b.String()), true)
	if len(invalid) != 0 || len(out) != b.Len() {
		t.Errorf("a list of valid tools was changed: %d invalid", len(invalid))
	}
	entries, bytes := p.tools.size()
	if entries > DefaultMaxTools || bytes > DefaultMaxToolBytes {
		t.Errorf("%d entries, %d bytes: over the bounds", entries, bytes)
	}
	if h, _ := p.tools.get(fmt.Sprint("tool-", n-1)); len(h) != 1 || h[0].Header != fmt.Sprint("R", n-1) {
		t.Errorf("the latest tool: %v", h)
	}
	if h, _ := p.tools.get("tool-0"); h != nil {
		t.Error("the oldest tool was kept")
	}
	if q := New(Options{HTTP: http.DefaultClient, MaxTools: 2, MaxToolBytes: 100}); q.tools.max != 2 || q.tools.maxBytes != 100 {
		t.Error("the options' bounds are not used")
	}
}
