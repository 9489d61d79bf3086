package mcpclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
)

// Keys of a request's _meta in the stateless protocol.
const (
	metaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	metaClientInfo         = "io.modelcontextprotocol/clientInfo"
)

// maxInputRounds bounds the rounds of a request whose server asks for
// input (an input_required result) before it completes.
const maxInputRounds = 8

// request sends a request in the session's lifecycle and returns its
// result. In the stateless protocol each request carries its _meta, and a
// server that needs input answers input_required: ncmcp fulfils the input
// requests (elicitation) and sends the request again, under a new id,
// with the responses and the server's request state as it was sent.
func (s *Session) request(ctx context.Context, method string, params map[string]any) (json.RawMessage, error) {
	s.mu.Lock()
	stateless, proto := s.stateless, s.protocol
	s.mu.Unlock()
	if !stateless {
		return s.call(ctx, method, params, s.standardHeaders(method, params))
	}
	next := params
	for round := 1; ; round++ {
		p := maps.Clone(next)
		if p == nil {
			p = map[string]any{}
		}
		p["_meta"] = map[string]any{metaProtocolVersion: proto, metaClientCapabilities: s.caps, metaClientInfo: s.info}
		raw, err := s.call(ctx, method, p, s.standardHeaders(method, params))
		if err != nil {
			return nil, err
		}
		var r struct {
			ResultType    string                     `json:"resultType"`
			InputRequests map[string]json.RawMessage `json:"inputRequests"`
			RequestState  json.RawMessage            `json:"requestState"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("sending %q: the result is not a JSON object", method)
		}
		switch r.ResultType {
		case "", "complete":
			return raw, nil
		case "input_required":
		default:
			return nil, fmt.Errorf("sending %q: the result's type %q is unknown", method, r.ResultType)
		}
		if round >= maxInputRounds {
			return nil, fmt.Errorf("sending %q: the server asked for input %d times", method, round)
		}
		responses := map[string]json.RawMessage{}
		for key, in := range r.InputRequests {
			res, err := s.fulfil(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("sending %q: %w", method, err)
			}
			responses[key] = res
		}
		// The original request once more, with the answers and the
		// state exactly as the server sent it, or none.
		next = maps.Clone(params)
		if next == nil {
			next = map[string]any{}
		}
		next["inputResponses"] = responses
		if len(r.RequestState) > 0 && string(r.RequestState) != "null" {
			next["requestState"] = r.RequestState
		}
	}
}

// fulfil answers one input request of an input_required result.
func (s *Session) fulfil(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
	var r struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(in, &r); err != nil {
		return nil, errors.New("an input request of the server is not an object")
	}
	if r.Method != "elicitation/create" || s.onElicit == nil {
		return nil, fmt.Errorf("the server asks for %q, which ncmcp does not offer here (input is asked for on a terminal)", r.Method)
	}
	return s.elicit(ctx, r.Params)
}

// standardHeaders are the headers that repeat a request's method and
// name (Mcp-Method, Mcp-Name), and for a tool call the arguments its
// input schema designates (Mcp-Param-*), so that servers and gateways
// can route without reading the body.
func (s *Session) standardHeaders(method string, params map[string]any) http.Header {
	h := http.Header{}
	h.Set("Mcp-Method", method)
	var name string
	switch method {
	case "tools/call", "prompts/get":
		name, _ = params["name"].(string)
	case "resources/read":
		name, _ = params["uri"].(string)
	}
	if name != "" {
		h.Set("Mcp-Name", HeaderValue(name))
	}
	if method != "tools/call" {
		return h
	}
	s.mu.Lock()
	schema := s.schemas[name]
	s.mu.Unlock()
	args, _ := params["arguments"].(map[string]any)
	for header, arg := range paramHeaders(schema) {
		if v, ok := headerArg(args[arg]); ok {
			h.Set("Mcp-Param-"+header, v)
		}
	}
	return h
}

// HeaderValue is a string as an MCP header carries it: as it is when it
// is printable ASCII without leading or trailing space, else wrapped as
// =?base64?...?= (the UTF-8 bytes in standard base64).
func HeaderValue(v string) string {
	plain := strings.TrimSpace(v) == v
	for i := 0; plain && i < len(v); i++ {
		plain = v[i] >= 0x20 && v[i] <= 0x7e
	}
	if plain {
		return v
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
}

// headerArg is an argument's header value: strings (HeaderValue),
// booleans and whole numbers; absent and null arguments have none.
func headerArg(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return HeaderValue(v), true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10), true
		}
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return v.String(), true
		}
	}
	return "", false
}

// paramHeaders maps the x-mcp-header names of an input schema's
// properties to the properties.
func paramHeaders(schema json.RawMessage) map[string]string {
	_, props := schemaObject(schema)
	out := map[string]string{}
	for name, raw := range props {
		var p map[string]json.RawMessage
		if json.Unmarshal(raw, &p) != nil {
			continue
		}
		var header string
		if json.Unmarshal(p["x-mcp-header"], &header) == nil && header != "" {
			out[header] = name
		}
	}
	return out
}

// checkParamHeaders checks the x-mcp-header annotations of an input
// schema: each names a header of token characters, is unique without
// regard to case, and is on a string, integer or boolean property. A tool
// that breaks these rules cannot be called as the specification requires.
func checkParamHeaders(schema json.RawMessage) error {
	_, props := schemaObject(schema)
	seen := map[string]bool{}
	for name, raw := range props {
		var p map[string]json.RawMessage
		if json.Unmarshal(raw, &p) != nil {
			continue
		}
		rawHeader, ok := p["x-mcp-header"]
		if !ok {
			continue
		}
		var header, typ string
		if json.Unmarshal(rawHeader, &header) != nil || header == "" {
			return fmt.Errorf("property %q: x-mcp-header is not a header name", name)
		}
		for i := 0; i < len(header); i++ {
			if !isTokenChar(header[i]) {
				return fmt.Errorf("property %q: x-mcp-header %q has a character a header name cannot", name, header)
			}
		}
		key := strings.ToLower(header)
		if seen[key] {
			return fmt.Errorf("x-mcp-header %q is named twice", header)
		}
		seen[key] = true
		if json.Unmarshal(p["type"], &typ) != nil || (typ != "string" && typ != "integer" && typ != "boolean") {
			return fmt.Errorf("property %q: x-mcp-header is on a %s, not a string, integer or boolean", name, orNone(typ))
		}
	}
	return nil
}

// isTokenChar tells whether c may be in an HTTP header name (RFC 9110
// section 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
