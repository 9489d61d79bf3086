package mcpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpwire"
)

// maxMessage bounds one message of the server; the memory budget of a
// session holds the line being read and the event it belongs to.
const (
	maxMessage = 64 << 20
	budgetSize = 2*maxMessage + 64<<10
)

// maxResumes bounds the reconnections (Last-Event-ID) to a request's
// stream that ended before its answer.
const maxResumes = 5

// message is a JSON-RPC 2.0 message of either side.
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *RPCError       `json:"error,omitempty"`
}

// RPCError is the JSON-RPC error a server answered a request with.
type RPCError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("the server answered with error %d: %s", e.Code, e.Message)
}

// HTTPError is an answer of the MCP endpoint that is no JSON-RPC message:
// an HTTP error status, or a body that is not JSON.
type HTTPError struct {
	// Method is the JSON-RPC method of the request.
	Method string
	// Status is the HTTP status code.
	Status int
	// ContentType is the media type of the body.
	ContentType string
}

func (e *HTTPError) Error() string {
	if e.Status >= 200 && e.Status < 300 {
		return fmt.Sprintf("sending %q: the server answered with %s, not JSON-RPC", e.Method, mcpwire.DescribeContentType(e.ContentType))
	}
	return fmt.Sprintf("sending %q: the server answered HTTP %d %s", e.Method, e.Status, http.StatusText(e.Status))
}

// SessionEndedError reports that the server no longer knows the session
// (HTTP 404 to a request that carried its id): it restarted, or ended it.
type SessionEndedError struct{ Method string }

func (e *SessionEndedError) Error() string {
	return fmt.Sprintf("sending %q: the server ended the MCP session (HTTP 404); run the command again", e.Method)
}

// AnswerError is an answer of the server that is no answer to the
// request: not JSON, no response to it, neither result nor error.
type AnswerError struct {
	Method string
	Reason string
}

func (e *AnswerError) Error() string { return fmt.Sprintf("sending %q: %s", e.Method, e.Reason) }

// post sends one JSON-RPC message with the session's headers and extra.
func (s *Session) post(ctx context.Context, body []byte, extra http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range extra {
		req.Header[k] = v
	}
	s.headers(req)
	return s.hc.Do(req)
}

// headers adds the session id and protocol version, once known.
func (s *Session) headers(req *http.Request) {
	s.mu.Lock()
	sid, proto := s.sid, s.protocol
	s.mu.Unlock()
	if sid != "" {
		req.Header.Set(mcpwire.HeaderSession, sid)
	}
	if proto != "" {
		req.Header.Set(mcpwire.HeaderProtocol, proto)
	}
}

// refusedOrStatus turns an answer that is not 2xx into its error: the
// refusal of the token, the end of the session, the JSON-RPC error the
// body holds, or the status.
func (s *Session) refusedOrStatus(resp *http.Response, method string) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	if r, refused := refusalOf(resp); refused {
		return s.auth.wrap(r.Err())
	}
	s.mu.Lock()
	sid := s.sid
	s.mu.Unlock()
	if resp.StatusCode == http.StatusNotFound && sid != "" {
		return &SessionEndedError{Method: method}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/json" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var m message
		if json.Unmarshal(b, &m) == nil && m.Error != nil {
			return m.Error
		}
	}
	return &HTTPError{Method: method, Status: resp.StatusCode, ContentType: mt}
}

// call sends a request, with the extra headers, and returns its result.
// While it waits, it answers the server's requests that come on the
// request's stream.
func (s *Session) call(ctx context.Context, method string, params any, extra http.Header) (json.RawMessage, error) {
	id := s.nextID.Add(1)
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(message{JSONRPC: "2.0", ID: json.RawMessage(strconv.FormatInt(id, 10)), Method: method, Params: p})
	if err != nil {
		return nil, err
	}
	resp, err := s.post(ctx, body, extra)
	if err != nil {
		return nil, fmt.Errorf("sending %q: %w", method, s.auth.wrap(err))
	}
	defer resp.Body.Close()
	if err := s.refusedOrStatus(resp, method); err != nil {
		return nil, err
	}
	if method == "server/discover" {
		// A server of the handshake may open a session for the probe:
		// it is ended when the handshake follows.
		if sid := resp.Header.Get(mcpwire.HeaderSession); validSessionID(sid) {
			s.mu.Lock()
			s.probeSID = sid
			s.mu.Unlock()
		}
	}
	if method == "initialize" {
		if sid := resp.Header.Get(mcpwire.HeaderSession); sid != "" {
			if !validSessionID(sid) {
				return nil, fmt.Errorf("sending %q: the server's session id is not visible ASCII", method)
			}
			s.mu.Lock()
			s.sid = sid
			s.mu.Unlock()
		}
	}
	want := strconv.FormatInt(id, 10)
	var answer *message
	handle := func(b []byte) bool {
		var m message
		if json.Unmarshal(b, &m) != nil {
			return false
		}
		switch {
		case m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null":
			s.serve(ctx, m)
		case m.Method == "" && string(bytes.TrimSpace(m.ID)) == want:
			answer = &m
			return true
		}
		return false
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxMessage+1))
		switch {
		case err != nil:
			return nil, fmt.Errorf("sending %q: reading the answer: %w", method, err)
		case len(b) > maxMessage:
			return nil, fmt.Errorf("sending %q: the answer is over %d bytes", method, maxMessage)
		case !json.Valid(b):
			return nil, &HTTPError{Method: method, Status: resp.StatusCode, ContentType: mt}
		}
		handle(b)
	case "text/event-stream":
		if err := s.events(ctx, resp.Body, method, handle); err != nil {
			return nil, err
		}
	default:
		return nil, &HTTPError{Method: method, Status: resp.StatusCode, ContentType: mt}
	}
	switch {
	case answer == nil:
		return nil, &AnswerError{Method: method, Reason: "the server's answer holds no response to it"}
	case answer.Error != nil:
		return nil, answer.Error
	case answer.Result == nil:
		return nil, &AnswerError{Method: method, Reason: "the server's response has neither result nor error"}
	}
	return answer.Result, nil
}

// events reads a request's event stream until handle finds the answer,
// resuming the stream (Last-Event-ID) when it ends early and the server
// gave its events ids, a few times, with a growing pause. A stream of the
// stateless protocol is not resumed: it has no GET.
func (s *Session) events(ctx context.Context, body io.ReadCloser, method string, handle func([]byte) bool) error {
	read := func(body io.ReadCloser) (last string, answered bool, err error) {
		last, err = mcpwire.ReadEvents(body, maxMessage, s.mem, func(b []byte) {
			if !answered && handle(b) {
				answered = true
				body.Close() // the server need not end the stream
			}
		})
		return last, answered, err
	}
	last, answered, err := read(body)
	s.mu.Lock()
	stateless := s.stateless
	s.mu.Unlock()
	for try := 0; !answered && !stateless && try < maxResumes && last != "" && !mcpwire.Overflow(err); try++ {
		select {
		case <-ctx.Done():
			return fmt.Errorf("sending %q: %w", method, ctx.Err())
		case <-time.After(time.Duration(100<<try) * time.Millisecond):
		}
		r, gerr := s.resume(ctx, last)
		if gerr != nil {
			return fmt.Errorf("sending %q: resuming the answer: %w", method, gerr)
		}
		var l string
		l, answered, err = read(r.Body)
		r.Body.Close()
		if l != "" {
			last = l
		}
	}
	switch {
	case answered:
		return nil
	case errors.Is(err, mcpwire.ErrTooLarge):
		return fmt.Errorf("sending %q: the server sent a message over %d bytes", method, maxMessage)
	case errors.Is(err, mcpwire.ErrBudget):
		return fmt.Errorf("sending %q: no room for the server's messages", method)
	case ctx.Err() != nil:
		return fmt.Errorf("sending %q: %w", method, ctx.Err())
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("sending %q: reading the answer: %w", method, s.auth.wrap(err))
	}
	return &AnswerError{Method: method, Reason: "the server's stream ended without an answer"}
}

// resume opens the stream again after the event last.
func (s *Session) resume(ctx context.Context, last string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(mcpwire.HeaderLastID, last)
	s.headers(req)
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != http.StatusOK || mt != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("the server answered HTTP %d with %s", resp.StatusCode, mcpwire.DescribeContentType(mt))
	}
	return resp, nil
}

// notify sends a notification.
func (s *Session) notify(ctx context.Context, method string, params any) error {
	m := message{JSONRPC: "2.0", Method: method}
	if params != nil {
		p, err := json.Marshal(params)
		if err != nil {
			return err
		}
		m.Params = p
	}
	return s.send(ctx, m)
}

// send posts a notification or a response, whose answer has no body
// worth reading (202 Accepted).
func (s *Session) send(ctx context.Context, m message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var extra http.Header
	if m.Method != "" {
		extra = http.Header{mcpwire.HeaderMethod: {m.Method}}
	}
	resp, err := s.post(ctx, body, extra)
	if err != nil {
		return fmt.Errorf("sending %q: %w", orResponse(m.Method), s.auth.wrap(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return s.refusedOrStatus(resp, orResponse(m.Method))
}

func orResponse(method string) string {
	if method == "" {
		return "response"
	}
	return method
}

// serve answers a request of the server: ping, and elicitation/create when
// the session has OnElicit; others are not found.
func (s *Session) serve(ctx context.Context, m message) {
	out := message{JSONRPC: "2.0", ID: m.ID}
	switch {
	case m.Method == "ping":
		out.Result = json.RawMessage(`{}`)
	case m.Method == "elicitation/create" && s.onElicit != nil:
		res, err := s.elicit(ctx, m.Params)
		if err != nil {
			out.Error = &RPCError{Code: -32602, Message: err.Error()}
			break
		}
		out.Result = res
	default:
		out.Error = &RPCError{Code: -32601, Message: "Method not found"}
	}
	_ = s.send(ctx, out)
}

// elicit asks OnElicit and returns the elicitation result: for an accepted
// form, its defaults as changed by the answer.
func (s *Session) elicit(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	e, err := toElicitation(params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	action, content := s.onElicit(ctx, e)
	res := struct {
		Action  ElicitAction   `json:"action"`
		Content map[string]any `json:"content,omitempty"`
	}{Action: action}
	if action == ElicitAccept && e.Mode == "form" {
		res.Content = map[string]any{}
		for k, v := range e.Defaults {
			if v != nil {
				res.Content[k] = v
			}
		}
		for k, v := range content {
			res.Content[k] = v
		}
	}
	return json.Marshal(res)
}

// validSessionID tells whether a session id is visible ASCII, as the
// transport requires.
func validSessionID(id string) bool {
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return id != ""
}

// end ends the session at the server (DELETE), within a few seconds; a
// server that does not allow it (405) keeps it until it expires.
func (s *Session) end() {
	s.mu.Lock()
	sid := s.sid
	s.mu.Unlock()
	s.endSession(sid)
}

// endSession ends the session sid at the server, if any.
func (s *Session) endSession(sid string) {
	if sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.endpoint, nil)
	if err != nil {
		return
	}
	s.headers(req)
	req.Header.Set(mcpwire.HeaderSession, sid)
	if resp, err := s.hc.Do(req); err == nil {
		resp.Body.Close()
	}
}
