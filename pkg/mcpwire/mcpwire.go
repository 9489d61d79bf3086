// Package mcpwire reads MCP's Streamable HTTP framing, the server-sent
// event streams that carry JSON-RPC messages, within a size limit per
// message and a memory budget shared by the messages in flight; and it
// derives the headers that repeat parts of a request (Mcp-Method,
// Mcp-Name, Mcp-Param-*), for the tools client and the proxy alike.
package mcpwire

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
)

// Headers of the Streamable HTTP transport.
const (
	HeaderSession  = "Mcp-Session-Id"
	HeaderProtocol = "MCP-Protocol-Version"
	HeaderLastID   = "Last-Event-ID"
)

var (
	// ErrTooLarge is a message, or a line of an event stream, over the
	// size limit.
	ErrTooLarge = errors.New("message too large")
	// ErrBudget is a message that found no room in the memory budget.
	ErrBudget = errors.New("over the memory budget")
)

// Overflow tells whether reading stopped at a message over the size limit
// or the budget.
func Overflow(err error) bool { return errors.Is(err, ErrTooLarge) || errors.Is(err, ErrBudget) }

// DescribeContentType names an answer's media type in a message: "no
// content type" when it has none.
func DescribeContentType(mt string) string {
	if mt == "" {
		return "no content type"
	}
	return mt
}

// Budget counts the bytes of the messages in flight against a total.
type Budget struct {
	mu        sync.Mutex
	used, max int64
	// freed is closed, and replaced, when bytes are given back while a
	// caller of Wait waits for room (waiting > 0).
	freed   chan struct{}
	waiting int
}

// NewBudget returns a budget of max bytes.
func NewBudget(max int64) *Budget { return &Budget{max: max, freed: make(chan struct{})} }

// Take takes n bytes if there is room, without waiting.
func (b *Budget) Take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+int64(n) > b.max {
		return false
	}
	b.used += int64(n)
	return true
}

// Wait takes n bytes, waiting for room until ctx ends.
func (b *Budget) Wait(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		if b.used+int64(n) <= b.max {
			b.used += int64(n)
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.waiting++
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
		}
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Give gives n bytes back.
func (b *Budget) Give(n int) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= int64(n)
	if b.waiting > 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
}

// Used returns the bytes taken.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Metered reads from R, taking every byte read from Mem; a read that finds
// no room fails with ErrBudget. The caller gives N back.
type Metered struct {
	R   io.Reader
	Mem *Budget
	N   int
}

// Read reads from R and takes what it read from the budget.
func (m *Metered) Read(p []byte) (int, error) {
	n, err := m.R.Read(p)
	if !m.Mem.Take(n) {
		return 0, ErrBudget
	}
	m.N += n
	return n, err
}

// readBounded reads one line of at most max bytes, taking it from the
// budget; the caller gives len(line) back. A longer line is ErrTooLarge,
// one that finds no room ErrBudget: neither is skipped, for a line need
// never end.
func readBounded(r *bufio.Reader, max int, mem *Budget) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			mem.Give(len(line))
			return nil, ErrTooLarge
		}
		if !mem.Take(len(chunk)) {
			mem.Give(len(line))
			return nil, ErrBudget
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

// ReadEvents reads a server-sent event stream and hands the data of each
// message event to deliver (the budget counts it until deliver returns);
// it returns the last
// event id seen that can be sent back, and why it stopped (io.EOF at the
// end). An event over max bytes, or one that finds no room in the budget,
// stops it (ErrTooLarge, ErrBudget): the stream is dropped rather than
// read on.
func ReadEvents(body io.Reader, max int, mem *Budget, deliver func([]byte)) (string, error) {
	r := bufio.NewReaderSize(body, 16<<10)
	var data []byte
	var last, event string
	defer func() { mem.Give(len(data)) }()
	emit := func() {
		if len(data) > 0 && (event == "" || event == "message") {
			deliver(data)
		}
		mem.Give(len(data))
		data, event = nil, ""
	}
	for {
		line, err := readBounded(r, max, mem)
		if Overflow(err) {
			return last, err
		}
		s := bytes.TrimRight(line, "\r\n")
		switch {
		case len(s) == 0 && len(line) > 0:
			emit()
		case bytes.HasPrefix(s, []byte(":")):
		case bytes.HasPrefix(s, []byte("data:")):
			v := bytes.TrimPrefix(bytes.TrimPrefix(s, []byte("data:")), []byte(" "))
			n := len(v)
			if len(data) > 0 {
				n++
			}
			if len(data)+n > max {
				mem.Give(len(line))
				return last, ErrTooLarge
			}
			if !mem.Take(n) {
				mem.Give(len(line))
				return last, ErrBudget
			}
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, v...)
		case bytes.HasPrefix(s, []byte("id:")):
			// An id that cannot be sent back as Last-Event-ID is not kept.
			if id := strings.TrimSpace(string(bytes.TrimPrefix(s, []byte("id:")))); ValidEventID(id) {
				last = id
			}
		case bytes.HasPrefix(s, []byte("event:")):
			event = strings.TrimSpace(string(bytes.TrimPrefix(s, []byte("event:"))))
		}
		mem.Give(len(line))
		if err != nil {
			emit()
			return last, err
		}
	}
}

// ValidEventID tells whether an SSE event id can be sent back in a
// Last-Event-ID header: printable ASCII, at most 256 bytes.
func ValidEventID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
