package mcpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"

	"github.com/ncmcp/ncmcp/pkg/mcpwire"
)

// Keys of a request's _meta in the stateless protocol.
const (
	metaProtocolVersion    = mcpwire.MetaProtocolVersion
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
	// Every round repeats the same method, name and arguments.
	headers := s.standardHeaders(method, params)
	if !stateless {
		return s.call(ctx, method, params, headers)
	}
	next := params
	for round := 1; ; round++ {
		p := maps.Clone(next)
		if p == nil {
			p = map[string]any{}
		}
		p["_meta"] = map[string]any{metaProtocolVersion: proto, metaClientCapabilities: s.caps, metaClientInfo: s.info}
		raw, err := s.call(ctx, method, p, headers)
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
	name, _ := params[mcpwire.NameParam(method)].(string)
	var designated []mcpwire.ParamHeader
	var args json.RawMessage
	if method == "tools/call" {
		s.mu.Lock()
		designated = s.paramHeaders[name]
		s.mu.Unlock()
		if len(designated) > 0 {
			args, _ = json.Marshal(params["arguments"])
		}
	}
	mcpwire.SetStandardHeaders(h, method, name, designated, args)
	return h
}
