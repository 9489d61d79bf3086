package mcpclient

import (
	"bytes"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// scanAll reads body through a scanner, chunk bytes at a time (0: as
// io.ReadAll does), and returns what the reader got and the messages.
func scanAll(t *testing.T, body []byte, sse bool, chunk int) ([]byte, []string) {
	var msgs []string
	var r io.Reader = bytes.NewReader(body)
	if chunk > 0 {
		r = &chunked{r: r, n: chunk}
	}
	s := &scanner{rc: io.NopCloser(r), sse: sse, onMessage: func(m []byte) { msgs = append(msgs, string(m)) }}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	return got, msgs
}

// chunked reads at most n bytes at a time.
type chunked struct {
	r io.Reader
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// TestScanner: the scanner passes the body through unchanged and finds
// the same messages however the body is split: event-stream data lines
// (CRLF or LF, several per event, comments and other fields between), or
// a JSON body as a whole.
func TestScanner(t *testing.T) {
	stream := []byte(": keep-alive\r\n\r\nid: 1\nevent: message\ndata: {\"a\":\ndata: 1}\n\ndata:{\"id\":2}\r\n\r\ndata: tail-without-end")
	want := []string{"{\"a\":\n1}", `{"id":2}`}
	for _, chunk := range []int{0, 1, 2, 3, 7} {
		got, msgs := scanAll(t, stream, true, chunk)
		if !bytes.Equal(got, stream) || !reflect.DeepEqual(msgs, want) {
			t.Errorf("chunks of %d: read %q, messages %q, want %q", chunk, got, msgs, want)
		}
	}
	doc := []byte(`{"jsonrpc":"2.0","id":3,"result":{}}`)
	for _, chunk := range []int{0, 1, 5} {
		got, msgs := scanAll(t, doc, false, chunk)
		if !bytes.Equal(got, doc) || !reflect.DeepEqual(msgs, []string{string(doc)}) {
			t.Errorf("JSON in chunks of %d: read %q, messages %q", chunk, got, msgs)
		}
	}
	if err := iotest.TestReader(&scanner{rc: io.NopCloser(bytes.NewReader(stream)), sse: true, onMessage: func([]byte) {}}, stream); err != nil {
		t.Error(err)
	}
}

// TestPropertyOrder: the property names of a schema in document order,
// whatever comes before or after them.
func TestPropertyOrder(t *testing.T) {
	got := propertyOrder([]byte(`{"type":"object","x":{"properties":{"no":1}},"properties":{"b":{"type":"string","properties":{}},"a":{},"c":{"enum":["x"]}},"required":["a"]}`))
	if !reflect.DeepEqual(got, []string{"b", "a", "c"}) {
		t.Errorf("order %v", got)
	}
	if got := propertyOrder([]byte(`[1]`)); got != nil {
		t.Errorf("order of an array %v", got)
	}
}

// FuzzScanner: however an event stream is split, the scanner passes it
// through unchanged and finds the same messages.
func FuzzScanner(f *testing.F) {
	f.Add([]byte("data: {\"id\":1}\r\n\r\ndata: x\ndata: y\n\n"), uint8(3))
	f.Add([]byte(": c\n\ndata:\n\n"), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		whole, want := scanAll(t, stream, true, 0)
		got, msgs := scanAll(t, stream, true, int(chunk%16)+1)
		if !bytes.Equal(whole, stream) || !bytes.Equal(got, stream) || !reflect.DeepEqual(msgs, want) {
			t.Fatalf("split at %d: messages %q, whole %q", chunk%16+1, msgs, want)
		}
	})
}
