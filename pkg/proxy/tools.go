package proxy

import (
	"bytes"
	"container/list"
	"encoding/json"
	"sync"

	"github.com/ncmcp/ncmcp/pkg/mcpwire"
)

// Bounds of what the proxy keeps of the tools it saw listed, by default.
const (
	// DefaultMaxTools bounds the tools kept.
	DefaultMaxTools = 4096
	// DefaultMaxToolBytes bounds their bytes.
	DefaultMaxToolBytes = 1 << 20
)

// toolEntryOverhead is what an entry costs beyond its strings, roughly.
const toolEntryOverhead = 64

// tools keeps, by name, what the proxy needs of the tools it saw in
// tools/list results: the arguments a call repeats in Mcp-Param-*
// headers, or why the tool's x-mcp-header annotations are invalid. Tools
// with no annotations take no room. The latest listing of a name wins;
// over max entries or maxBytes, the oldest are forgotten first (a call of
// a tool forgotten goes without its Mcp-Param-* headers, and a server
// that needs them says so).
type tools struct {
	mu            sync.Mutex
	max, maxBytes int
	bytes         int
	order         *list.List // of *toolEntry, the oldest first
	byName        map[string]*list.Element
}

type toolEntry struct {
	name    string
	headers []mcpwire.ParamHeader
	invalid error
	size    int
}

func newTools(max, maxBytes int) *tools {
	return &tools{max: max, maxBytes: maxBytes, order: list.New(), byName: map[string]*list.Element{}}
}

// set notes what a listing says of a tool.
func (t *tools) set(name string, headers []mcpwire.ParamHeader, invalid error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byName[name]; ok {
		t.remove(e)
	}
	if len(headers) == 0 && invalid == nil {
		return
	}
	size := toolEntryOverhead + len(name)
	for _, h := range headers {
		size += len(h.Header)
		for _, p := range h.Path {
			size += len(p)
		}
	}
	if invalid != nil {
		size += len(invalid.Error())
	}
	if size > t.maxBytes {
		return
	}
	for t.order.Len() >= t.max || t.bytes+size > t.maxBytes {
		t.remove(t.order.Front())
	}
	t.byName[name] = t.order.PushBack(&toolEntry{name: name, headers: headers, invalid: invalid, size: size})
	t.bytes += size
}

func (t *tools) remove(e *list.Element) {
	te := t.order.Remove(e).(*toolEntry)
	delete(t.byName, te.name)
	t.bytes -= te.size
}

// get returns what is known of a tool: its designated arguments, or why
// it cannot be called.
func (t *tools) get(name string) ([]mcpwire.ParamHeader, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byName[name]; ok {
		te := e.Value.(*toolEntry)
		return te.headers, te.invalid
	}
	return nil, nil
}

// size returns the entries and their bytes.
func (t *tools) size() (int, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len(), t.bytes
}

// observe notes the tools of a tools/list response m. When filter is
// set (a host of the stateless protocol), the tools whose annotations are
// invalid are taken out of the list, which the host must not call; the
// others are passed on as they are. It returns the message to pass on and
// the tools taken out with the reason.
func (t *tools) observe(m []byte, filter bool) ([]byte, map[string]error) {
	var msg map[string]json.RawMessage
	var result map[string]json.RawMessage
	var list []json.RawMessage
	if json.Unmarshal(m, &msg) != nil || json.Unmarshal(msg["result"], &result) != nil || json.Unmarshal(result["tools"], &list) != nil {
		return m, nil
	}
	kept := list[:0:0]
	var out map[string]error
	for _, raw := range list {
		var tool struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"inputSchema"`
		}
		if json.Unmarshal(raw, &tool) != nil {
			kept = append(kept, raw)
			continue
		}
		headers, err := mcpwire.ParamHeaders(tool.InputSchema)
		t.set(tool.Name, headers, err)
		if err != nil && filter {
			if out == nil {
				out = map[string]error{}
			}
			out[tool.Name] = err
			continue
		}
		kept = append(kept, raw)
	}
	if len(out) == 0 {
		return m, nil
	}
	var err error
	if result["tools"], err = marshal(kept); err != nil {
		return m, nil
	}
	if msg["result"], err = marshal(result); err != nil {
		return m, nil
	}
	b, err := marshal(msg)
	if err != nil {
		return m, nil
	}
	return b, out
}

// marshal is json.Marshal without escaping <, > and &: the server's text
// stays as it was.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
