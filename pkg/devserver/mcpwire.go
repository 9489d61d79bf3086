package devserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
)

// The MCP endpoint runs the official Go SDK; the real servers run the MCP
// Python SDK (FastMCP). serveWire is a thin adapter that makes the Go SDK's
// answers look like the Python SDK's where they differ on the wire:
//
//   - a request without a session must be initialize (else 400
//     "Bad Request: Missing session ID"), which keeps clients from the Go
//     SDK's newer stateless protocol; an initialize asking for a protocol
//     version the generation's SDK does not know gets its newest one; an
//     unknown MCP-Protocol-Version header is refused;
//   - every answer of a session carries its Mcp-Session-Id (the Go SDK
//     sends it with initialize only); SSE answers are
//     "text/event-stream; charset=utf-8", one "event: message" per
//     JSON-RPC message, without event ids;
//   - initialize's capabilities are {"experimental":{},"tools":{"listChanged":false}};
//   - tools/list gives the tools exactly as the recordings show them (the
//     Go SDK drops false annotations, and has no titles here);
//   - a tools/call result always has "isError" (false included);
//   - DELETE answers 200 (not 204); an unknown or ended session 404 with a
//     JSON-RPC error whose id is "server-error".
func (e *mcpEndpoint) serveWire(w http.ResponseWriter, r *http.Request, next http.Handler) {
	sessionID := r.Header.Get("Mcp-Session-Id")
	if pv := r.Header.Get("Mcp-Protocol-Version"); pv != "" && !slices.Contains(e.versions, pv) {
		writeJSONRPCError(w, http.StatusBadRequest, "Bad Request: Unsupported protocol version: "+pv+
			". Supported versions: "+strings.Join(e.versions, ", "))
		return
	}
	methods := make(map[string]string) // request id -> method
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			writeJSONRPCError(w, http.StatusBadRequest, "Parse error: cannot read the body")
			return
		}
		msgs, batch := splitMessages(body)
		for _, msg := range msgs {
			if msg.Method != "" && len(msg.ID) > 0 {
				methods[string(msg.ID)] = msg.Method
			}
		}
		if sessionID == "" {
			if batch || len(msgs) != 1 || msgs[0].Method != "initialize" {
				writeJSONRPCError(w, http.StatusBadRequest, "Bad Request: Missing session ID")
				return
			}
			body = e.negotiate(body)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	case http.MethodGet, http.MethodDelete:
		if sessionID == "" {
			writeJSONRPCError(w, http.StatusBadRequest, "Bad Request: Missing session ID")
			return
		}
	}
	ww := &wireWriter{ResponseWriter: w, e: e, sessionID: sessionID, methods: methods, delete: r.Method == http.MethodDelete}
	next.ServeHTTP(ww, r)
}

// writeJSONRPCError writes the Python SDK's transport error: a JSON-RPC
// error with id "server-error" and code -32600.
func writeJSONRPCError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, object{
		{"jsonrpc", "2.0"},
		{"id", "server-error"},
		{"error", object{{"code", -32600}, {"message", message}}},
	})
}

// wireMessage is the part of a JSON-RPC message the adapter reads.
type wireMessage struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
}

// splitMessages decodes a JSON-RPC message or batch.
func splitMessages(body []byte) ([]wireMessage, bool) {
	trimmed := bytes.TrimSpace(body)
	if bytes.HasPrefix(trimmed, []byte("[")) {
		var msgs []wireMessage
		_ = json.Unmarshal(trimmed, &msgs)
		return msgs, true
	}
	var msg wireMessage
	if json.Unmarshal(trimmed, &msg) != nil {
		return nil, false
	}
	return []wireMessage{msg}, false
}

// negotiate rewrites an initialize request that asks for a protocol version
// the generation's SDK does not know to ask for its newest one, which is
// what the Python SDK answers.
func (e *mcpEndpoint) negotiate(body []byte) []byte {
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		return body
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(req["params"], &params) != nil {
		return body
	}
	var version string
	_ = json.Unmarshal(params["protocolVersion"], &version)
	if slices.Contains(e.versions, version) {
		return body
	}
	params["protocolVersion"], _ = json.Marshal(e.versions[0])
	req["params"], _ = json.Marshal(params)
	out, err := json.Marshal(req)
	if err != nil {
		return body
	}
	return out
}

// Modes of a wireWriter.
const (
	wireUndecided = iota
	wirePass      // the SDK's answer as it is
	wireSSE       // an event stream, rewritten event by event
	wireDiscard   // the adapter answered; the SDK's body is dropped
)

// wireWriter is the ResponseWriter the SDK writes to; it rewrites the
// answer as serveWire describes.
type wireWriter struct {
	http.ResponseWriter
	e         *mcpEndpoint
	sessionID string
	methods   map[string]string
	delete    bool

	mode int
	buf  bytes.Buffer // an incomplete SSE event
}

func (ww *wireWriter) WriteHeader(status int) {
	if ww.mode != wireUndecided {
		return
	}
	h := ww.ResponseWriter.Header()
	switch {
	case status == http.StatusNotFound && ww.sessionID != "":
		h.Del("X-Content-Type-Options")
		writeJSONRPCError(ww.ResponseWriter, http.StatusNotFound, "Not Found: Invalid or expired session ID")
		ww.mode = wireDiscard
	case status == http.StatusNoContent && ww.delete:
		ww.ResponseWriter.WriteHeader(http.StatusOK)
		ww.mode = wireDiscard
	case status == http.StatusAccepted:
		if ww.sessionID != "" {
			h.Set("Mcp-Session-Id", ww.sessionID)
		}
		ww.ResponseWriter.WriteHeader(status)
		ww.mode = wireDiscard
	case status == http.StatusOK && strings.HasPrefix(h.Get("Content-Type"), "text/event-stream"):
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Del("Connection")
		if h.Get("Mcp-Session-Id") == "" && ww.sessionID != "" {
			h.Set("Mcp-Session-Id", ww.sessionID)
		}
		ww.ResponseWriter.WriteHeader(status)
		ww.mode = wireSSE
	default:
		ww.ResponseWriter.WriteHeader(status)
		ww.mode = wirePass
	}
}

func (ww *wireWriter) Write(p []byte) (int, error) {
	if ww.mode == wireUndecided {
		ww.WriteHeader(http.StatusOK)
	}
	switch ww.mode {
	case wireDiscard:
		return len(p), nil
	case wireSSE:
		ww.buf.Write(p)
		if err := ww.drain(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return ww.ResponseWriter.Write(p)
}

// Flush implements http.Flusher; complete SSE events are written as they
// arrive.
func (ww *wireWriter) Flush() {
	_ = http.NewResponseController(ww.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (ww *wireWriter) Unwrap() http.ResponseWriter { return ww.ResponseWriter }

// drain writes every complete event in the buffer, rewritten.
func (ww *wireWriter) drain() error {
	for {
		b := ww.buf.Bytes()
		end := bytes.Index(b, []byte("\n\n"))
		if end < 0 {
			return nil
		}
		event := string(b[:end])
		ww.buf.Next(end + 2)
		var data []string
		for _, line := range strings.Split(event, "\n") {
			if v, ok := strings.CutPrefix(line, "data:"); ok {
				data = append(data, strings.TrimPrefix(v, " "))
			}
		}
		if len(data) == 0 {
			continue // the SDK's priming and close events carry no message
		}
		msg := ww.e.rewrite([]byte(strings.Join(data, "\n")), ww.methods)
		if _, err := io.WriteString(ww.ResponseWriter, "event: message\r\ndata: "+string(msg)+"\r\n\r\n"); err != nil {
			return err
		}
		_ = http.NewResponseController(ww.ResponseWriter).Flush()
	}
}

// rewrite changes one JSON-RPC message of the SDK into the Python SDK's.
func (e *mcpEndpoint) rewrite(data []byte, methods map[string]string) []byte {
	var msg map[string]json.RawMessage
	if json.Unmarshal(data, &msg) != nil {
		return data
	}
	result, ok := msg["result"]
	if !ok {
		return data
	}
	var res map[string]json.RawMessage
	if json.Unmarshal(result, &res) != nil {
		return data
	}
	switch methods[string(msg["id"])] {
	case "initialize":
		res["capabilities"] = json.RawMessage(`{"experimental":{},"tools":{"listChanged":false}}`)
	case "tools/list":
		list, err := marshalJSON(e.listing)
		if err != nil {
			return data
		}
		res = map[string]json.RawMessage{"tools": list}
	case "tools/call":
		if _, ok := res["isError"]; !ok {
			res["isError"] = json.RawMessage("false")
		}
	default:
		return data
	}
	var err error
	if msg["result"], err = marshalJSON(res); err != nil {
		return data
	}
	out, err := marshalJSON(msg)
	if err != nil {
		return data
	}
	return out
}
