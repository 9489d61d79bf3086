package mcpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// The SDK hands its caller a decoded tool result: fields it does not model,
// numbers beyond float64 and a false isError are lost on the way. The
// capture layer reads the server's JSON-RPC messages off the wire as they
// pass by, unchanged, for the raw result of a tool call and the property
// order of a form's schema (the SDK decodes schemas into maps).

// maxCaptured bounds what the capture keeps of one message or JSON body.
const maxCaptured = 64 << 20

// captureKey is the context key of a call's capture slot.
type captureKey struct{}

// slot receives the raw result of the tools/call requests sent with its
// context.
type slot struct {
	mu  sync.Mutex
	ids map[string]bool // the requests' JSON-RPC ids, compacted
	raw json.RawMessage
}

func (s *slot) addID(id json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	s.ids[compactID(id)] = true
}

func (s *slot) offer(id, result json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids[compactID(id)] {
		s.raw = append(json.RawMessage(nil), result...)
	}
}

func (s *slot) result() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw
}

func compactID(id json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, id) != nil {
		return string(id)
	}
	return b.String()
}

// withSlot returns a context whose tools/call requests' raw results go to
// the returned slot.
func withSlot(ctx context.Context) (context.Context, *slot) {
	s := &slot{}
	return context.WithValue(ctx, captureKey{}, s), s
}

// capturer is the capture layer: an http.RoundTripper over the session's
// transport.
type capturer struct {
	next http.RoundTripper

	mu sync.Mutex
	// orders are the property orders of the forms elicited lately, by
	// formKey.
	orders map[string][]string
}

func (c *capturer) RoundTrip(req *http.Request) (*http.Response, error) {
	s, _ := req.Context().Value(captureKey{}).(*slot)
	if s == nil {
		return c.next.RoundTrip(req)
	}
	if req.Method == http.MethodPost && req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			var msg struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.NewDecoder(io.LimitReader(body, maxCaptured)).Decode(&msg) == nil && msg.Method == "tools/call" && len(msg.ID) > 0 {
				s.addID(msg.ID)
			}
			body.Close()
		}
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Body == nil {
		return resp, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json", "text/event-stream":
		resp.Body = &scanner{rc: resp.Body, sse: ct == "text/event-stream", onMessage: func(m []byte) { c.message(s, m) }}
	}
	return resp, nil
}

// message looks at one JSON-RPC message from the server.
func (c *capturer) message(s *slot, m []byte) {
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
		Params struct {
			Message         string          `json:"message"`
			RequestedSchema json.RawMessage `json:"requestedSchema"`
		} `json:"params"`
	}
	if json.Unmarshal(m, &msg) != nil {
		return
	}
	switch {
	case msg.Method == "" && len(msg.ID) > 0 && len(msg.Result) > 0:
		s.offer(msg.ID, msg.Result)
	case msg.Method == "elicitation/create" && len(msg.Params.RequestedSchema) > 0:
		order := propertyOrder(msg.Params.RequestedSchema)
		if len(order) == 0 {
			return
		}
		c.mu.Lock()
		if c.orders == nil || len(c.orders) > 64 {
			c.orders = map[string][]string{}
		}
		c.orders[formKey(msg.Params.Message, order)] = order
		c.mu.Unlock()
	}
}

// order returns the order in which the server listed a form's properties,
// if it passed by.
func (c *capturer) order(message string, names []string) []string {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.orders[formKey(message, names)]
}

// formKey identifies a form by its message and property names.
func formKey(message string, names []string) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return message + "\x00" + strings.Join(sorted, "\x00")
}

// propertyOrder returns the names of a JSON Schema's properties in the
// order the document lists them.
func propertyOrder(schema json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(schema))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil
		}
		if k != "properties" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return nil
		}
		var names []string
		for dec.More() {
			name, err := dec.Token()
			if err != nil {
				return nil
			}
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil
			}
			if n, ok := name.(string); ok {
				names = append(names, n)
			}
		}
		return names
	}
	return nil
}

// scanner passes a response body through unchanged and hands each
// JSON-RPC message in it to onMessage: the whole body of an
// application/json response, each event's data of an event stream. It
// reads the messages before the reader gets their last byte.
type scanner struct {
	rc        io.ReadCloser
	sse       bool
	onMessage func([]byte)

	buf  []byte // JSON: the body so far; SSE: the line so far
	data []byte // SSE: the event's data so far
	over bool   // more than maxCaptured: give up
	done bool
}

func (s *scanner) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if !s.over && !s.done {
		s.feed(p[:n])
		if err == io.EOF {
			s.done = true
			if !s.sse && len(s.buf) > 0 {
				s.onMessage(s.buf)
			}
		}
	}
	return n, err
}

func (s *scanner) Close() error { return s.rc.Close() }

func (s *scanner) feed(b []byte) {
	if !s.sse {
		s.buf = append(s.buf, b...)
		s.over = len(s.buf) > maxCaptured
		return
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.buf = append(s.buf, b...)
			s.over = len(s.buf) > maxCaptured
			return
		}
		s.buf = append(s.buf, b[:i]...)
		b = b[i+1:]
		s.line(bytes.TrimSuffix(s.buf, []byte("\r")))
		s.buf = s.buf[:0]
		if s.over {
			return
		}
	}
}

// line reads one line of an event stream.
func (s *scanner) line(l []byte) {
	switch {
	case len(l) == 0:
		if len(s.data) > 0 {
			s.onMessage(s.data)
		}
		s.data = s.data[:0]
	case bytes.HasPrefix(l, []byte("data:")):
		v := bytes.TrimPrefix(l[len("data:"):], []byte(" "))
		if len(s.data) > 0 {
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, v...)
		s.over = len(s.data) > maxCaptured
	}
}
