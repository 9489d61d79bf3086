package proxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzServerStream: whatever a server sends as an SSE stream, the host
// gets only whole JSON-RPC messages, one per line, none over the limit,
// and the proxy does not fail.
func FuzzServerStream(f *testing.F) {
	f.Add([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"))
	f.Add([]byte("id: 7\ndata: {\"jsonrpc\":\"2.0\",\ndata: \"method\":\"notifications/progress\"}\n\n: comment\n\n"))
	f.Add([]byte("data: not json\n\nevent: ping\ndata: {}\n\ndata: [1,2]\r\n\r\n"))
	f.Add([]byte("data: {\"a\":\"\x1b[31m\"}\n\ndata: {\"a\":1}"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var out bytes.Buffer
		p := New(Options{Out: &out, MaxMessage: 512, HTTP: &http.Client{}})
		_, _ = p.readEvents(bytes.NewReader(stream), p.write)
		for _, line := range bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n")) {
			if out.Len() == 0 {
				break
			}
			if !json.Valid(line) {
				t.Fatalf("the host got %q, not one JSON message", line)
			}
			if len(line) > 512 {
				t.Fatalf("the host got %d bytes, over the limit", len(line))
			}
		}
	})
}
