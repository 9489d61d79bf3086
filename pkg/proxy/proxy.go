// Package proxy forwards MCP messages between a host that speaks stdio
// (newline-delimited JSON-RPC on stdin and stdout) and a server's
// Streamable HTTP endpoint: every request, response and notification in
// both directions, the server's standalone SSE stream, the session and
// protocol-version headers, and a new session, begun with the host's own
// initialize, when the server lost its own (a restart). Authorization is
// the HTTP client's business (mcpclient.AuthTransport, with the proxy's
// Transport below it).
//
// A host of the stateless protocol (2026-07-28), whose requests name
// their version in _meta, has no handshake and no session: each of its
// requests goes with that version in MCP-Protocol-Version, and no session
// id. Every POST carries the headers a host cannot add through stdio,
// derived from the message: Mcp-Method, Mcp-Name, and for a tool call the
// arguments its input schema designates (Mcp-Param-*), as the tools/list
// results that passed through the proxy describe them (tools).
package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/mcpwire"
)

// DefaultMaxMessage bounds one message, in either direction, by default.
const DefaultMaxMessage = 16 << 20

// JSON-RPC error codes of the proxy's own answers.
const (
	// CodeParseError answers a line that is not JSON.
	CodeParseError = -32700
	// CodeUnreachable answers a request the server did not answer: it
	// could not be reached, or it failed.
	CodeUnreachable = -32000
	// CodeUnauthorized answers a request the server refused, when no
	// token it accepts could be had.
	CodeUnauthorized = -32001
	// CodeTooLarge answers a message over the size limit.
	CodeTooLarge = -32002
	// CodeInvalidTool answers a stateless host's call of a tool whose
	// x-mcp-header annotations are invalid, which the proxy took out of
	// the list: as MCP answers a call of a tool it does not know.
	CodeInvalidTool = -32602
)

// Options configure a proxy.
type Options struct {
	// Endpoint is the server's MCP endpoint.
	Endpoint string
	// HTTP sends the requests. Its Timeout is ignored: streams last as
	// long as the session.
	HTTP *http.Client
	// Authorize, when set, wraps HTTP's transport with the authorization
	// (mcpclient.AuthTransport). The proxy's own transport goes below it:
	// it sees the MCP request itself, not a token refresh made on the way,
	// and releases the host's next message once that request is written.
	Authorize func(http.RoundTripper) http.RoundTripper
	// In and Out are the host's side: stdin and stdout.
	In  io.Reader
	Out io.Writer
	// Log receives what the proxy tells its user (stderr, a log file);
	// nil drops it. Nothing of it goes to Out.
	Log func(string)
	// Explain adds what to do to the reason a refused request got no
	// other token (the refusal's error, or the credentials' failure to
	// renew); nil leaves it as it is.
	Explain func(error) error
	// MaxMessage bounds one message (DefaultMaxMessage when zero).
	MaxMessage int
	// MaxBuffered bounds the bytes of all messages in flight together:
	// the host's being forwarded and the server's being read (4 x
	// MaxMessage when zero, at least 2 x MaxMessage). A host message waits
	// for room; an answer that finds none becomes an error.
	MaxBuffered int
	// MaxConcurrent bounds the host's requests under way at the server
	// (DefaultMaxConcurrent when zero); further ones wait, in order, and
	// the host's notifications keep their place behind them. Its
	// responses (to the server's own requests: elicitation, sampling,
	// roots) are not held back: the requests under way may be waiting
	// for them.
	MaxConcurrent int
	// IdleTimeout ends an answer from which no byte came for this long:
	// the host gets an error instead of waiting for ever
	// (DefaultIdleTimeout when zero).
	IdleTimeout time.Duration
	// MaxTools and MaxToolBytes bound what the proxy keeps of the tools
	// it saw listed, for their Mcp-Param-* headers and to refuse the
	// invalid ones (DefaultMaxTools, DefaultMaxToolBytes when zero); only
	// tools with x-mcp-header annotations take room.
	MaxTools     int
	MaxToolBytes int
}

// DefaultIdleTimeout is how long an answer may go without a byte, by
// default: long enough for slow tools.
const DefaultIdleTimeout = 10 * time.Minute

// DefaultMaxConcurrent is how many requests of the host may be under way
// at the server at once, by default.
const DefaultMaxConcurrent = 16

// Proxy is one host's connection to the server.
type Proxy struct {
	o  Options
	hc *http.Client

	outMu sync.Mutex

	mu          sync.Mutex
	session     string
	protocol    string
	initialize  []byte // the host's initialize request
	initialized []byte // the host's initialized notification
	streaming   bool   // the standalone stream runs
	// metaVersion is the _meta protocol version of the host's latest
	// request of the stateless protocol.
	metaVersion string
	// tools are what the proxy saw of the server's tools.
	tools    *tools
	reinitMu sync.Mutex
	reinits  int

	// inflight are the host's messages not answered yet; wg is every
	// goroutine, the standalone stream too. Once stopping is set (under
	// mu), no host message is sent any more: both are waited for.
	inflight sync.WaitGroup
	wg       sync.WaitGroup
	stopping bool
	// pending are the host's requests under way, by id: to cancel one
	// (notifications/cancelled), and to answer them when the proxy stops.
	pending map[string]*pendingRequest
	// slots bound the host's requests under way at the server; mem the
	// bytes of the messages in flight.
	slots chan struct{}
	mem   *mcpwire.Budget
}

// pendingRequest is a host request under way.
type pendingRequest struct {
	env    envelope
	cancel context.CancelFunc
	// done is set once the host got its answer (or must get none).
	done bool
}

// Linger is how long the proxy waits, after the host closed stdin, for
// the answers to requests it already forwarded; then they are cancelled
// and answered with an error. With endTimeout it bounds how long the
// proxy takes to stop.
const Linger = time.Second

// endTimeout bounds the DELETE that ends the server's session.
const endTimeout = time.Second

// New returns a proxy.
func New(o Options) *Proxy {
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 4 * o.MaxMessage
	}
	o.MaxBuffered = max(o.MaxBuffered, 2*o.MaxMessage)
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.MaxTools <= 0 {
		o.MaxTools = DefaultMaxTools
	}
	if o.MaxToolBytes <= 0 {
		o.MaxToolBytes = DefaultMaxToolBytes
	}
	hc := *o.HTTP
	hc.Timeout = 0
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = watch{next}
	if o.Authorize != nil {
		hc.Transport = o.Authorize(hc.Transport)
	}
	check := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		// The session is the server's: never sent to another origin.
		if len(via) > 0 && !sameOrigin(req.URL, via[0].URL) {
			req.Header.Del(mcpwire.HeaderSession)
			req.Header.Del(mcpwire.HeaderLastID)
		}
		if check != nil {
			return check(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &Proxy{o: o, hc: &hc, pending: map[string]*pendingRequest{}, tools: newTools(o.MaxTools, o.MaxToolBytes),
		slots: make(chan struct{}, o.MaxConcurrent), mem: mcpwire.NewBudget(int64(o.MaxBuffered))}
}

// wroteKey is the context key of the function Transport calls once the
// request is written.
type wroteKey struct{}

// watch tells the proxy when each of its MCP requests is written. It is
// below the authorization: there it sees only the MCP request itself, and
// not the token refresh made with the same context on the way, so that
// the host's next message never overtakes this one.
type watch struct{ next http.RoundTripper }

func (w watch) RoundTrip(req *http.Request) (*http.Response, error) {
	if wrote, ok := req.Context().Value(wroteKey{}).(func()); ok {
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote() }}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	}
	return w.next.RoundTrip(req)
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

func (p *Proxy) log(format string, args ...any) {
	if p.o.Log != nil {
		p.o.Log(fmt.Sprintf(format, args...))
	}
}

// Run forwards until the host closes stdin or ctx ends (a signal), then
// ends the server's session: within about Linger + endTimeout, requests
// still under way cancelled and answered with an error. It returns nil.
func (p *Proxy) Run(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The host's messages are read ahead of their turn, within the
	// budget: a cancellation then reaches a request that still waits for
	// its turn (MaxConcurrent), and is never sent. A response of the host
	// goes as it is read, in the host's order among its responses (each
	// once the one before it is written): it may overtake messages read
	// before it that wait for their turn, since the requests that hold
	// the slots may be waiting for it.
	queue := make(chan hostMessage, 256)
	go func() {
		r := bufio.NewReaderSize(p.o.In, 64<<10)
		for {
			b, err := readLine(r, p.o.MaxMessage)
			m := hostMessage{err: err}
			if msg := bytes.TrimSpace(b); len(msg) > 0 && !p.accept(ctx, msg, &m) {
				return // stopping
			}
			if m.msg != nil && m.env.isResponse() {
				select {
				case <-p.send(m):
				case <-ctx.Done():
					return
				}
				if err == nil {
					continue
				}
				m = hostMessage{err: err}
			}
			select {
			case queue <- m:
			case <-ctx.Done():
				return
			}
			if err != nil && !errors.Is(err, mcpwire.ErrTooLarge) {
				return
			}
		}
	}()
read:
	for {
		var m hostMessage
		select {
		case m = <-queue:
		case <-ctx.Done():
			p.log("stopping: %v", context.Cause(parent))
			break read
		}
		if errors.Is(m.err, mcpwire.ErrTooLarge) {
			p.log("a message from the host is over %d bytes: not forwarded", p.o.MaxMessage)
			p.reply(nil, CodeTooLarge, fmt.Sprintf("ncmcp proxy: message over %d bytes", p.o.MaxMessage))
			continue
		}
		if m.msg != nil {
			select {
			case <-p.send(m):
			case <-ctx.Done():
			}
		}
		if m.err != nil {
			if !errors.Is(m.err, io.EOF) {
				p.log("reading from the host: %v", m.err)
			}
			break
		}
	}
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(Linger):
	case <-ctx.Done():
	}
	cancel()
	p.answerPending("ncmcp proxy: stopped before the server answered")
	p.wg.Wait()
	p.end()
	return nil
}

// hostMessage is a message of the host, read and waiting for its turn.
type hostMessage struct {
	msg []byte
	env envelope
	// ctx is the request's own; untrack ends it (track).
	ctx     context.Context
	untrack func()
	// err is the reading's, after msg.
	err error
}

// track registers a host request under way and returns its context.
func (p *Proxy) track(ctx context.Context, env envelope) (context.Context, func()) {
	if !env.isRequest() {
		return ctx, func() {}
	}
	rctx, cancel := context.WithCancel(ctx)
	key := string(env.ID)
	r := &pendingRequest{env: env, cancel: cancel}
	p.mu.Lock()
	p.pending[key] = r
	p.mu.Unlock()
	return rctx, func() {
		cancel()
		p.mu.Lock()
		if p.pending[key] == r {
			delete(p.pending, key)
		}
		unanswered := !r.done
		if unanswered {
			r.done = true
		}
		p.mu.Unlock()
		// Every request gets one answer: one that got none (the proxy is
		// stopping) gets an error.
		if unanswered {
			p.reply(env.ID, CodeUnreachable, "ncmcp proxy: stopped before the server answered")
		}
	}
}

// cancelRequest aborts the upstream request of a host request the host
// cancelled (notifications/cancelled): its connection is closed, or it is
// never sent, and the host, which expects no answer, gets none.
func (p *Proxy) cancelRequest(msg []byte) {
	var n struct {
		Method string `json:"method"`
		Params struct {
			RequestID json.RawMessage `json:"requestId"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &n) != nil || n.Method != "notifications/cancelled" || len(n.Params.RequestID) == 0 {
		return
	}
	p.mu.Lock()
	if r := p.pending[string(n.Params.RequestID)]; r != nil {
		r.done = true
		r.cancel()
	}
	p.mu.Unlock()
}

// answerPending answers, with an error, every host request still waiting.
func (p *Proxy) answerPending(msg string) {
	p.mu.Lock()
	var todo []envelope
	for _, r := range p.pending {
		if !r.done {
			r.done = true
			todo = append(todo, r.env)
		}
		r.cancel()
	}
	p.mu.Unlock()
	for _, env := range todo {
		p.reply(env.ID, CodeUnreachable, msg)
	}
}

// readLine reads one line of at most max bytes; a longer one is skipped
// to its end and reported as mcpwire.ErrTooLarge.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, mcpwire.ErrTooLarge
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

// envelope is what the proxy reads of a JSON-RPC message.
type envelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`

	// Of the host's messages (hostEnvelope): the protocol version its
	// _meta names (the stateless protocol), and the value of its Mcp-Name
	// header.
	version string
	name    string
}

// hostEnvelope is what the proxy reads of the host's messages.
type hostEnvelope struct {
	envelope
	Params struct {
		Meta map[string]json.RawMessage `json:"_meta"`
		Name json.RawMessage            `json:"name"`
		URI  json.RawMessage            `json:"uri"`
	} `json:"params"`
}

// readHost reads a message of the host.
func readHost(msg []byte) envelope {
	var h hostEnvelope
	if msg[0] != '{' {
		return h.envelope
	}
	_ = json.Unmarshal(msg, &h)
	env := h.envelope
	_ = json.Unmarshal(h.Params.Meta[mcpwire.MetaProtocolVersion], &env.version)
	switch mcpwire.NameParam(env.Method) {
	case "name":
		_ = json.Unmarshal(h.Params.Name, &env.name)
	case "uri":
		_ = json.Unmarshal(h.Params.URI, &env.name)
	}
	return env
}

func (e envelope) isRequest() bool { return e.Method != "" && len(e.ID) > 0 && string(e.ID) != "null" }

// isResponse tells a response (or an error) from a request or a
// notification.
func (e envelope) isResponse() bool { return e.Method == "" && len(e.ID) > 0 }

// accept takes a message of the host as it is read: it answers one that
// is not JSON, notes initialize and initialized, takes its bytes from the
// budget (waiting for room), registers a request, and applies a
// cancellation at once. It returns false when the proxy stops meanwhile.
func (p *Proxy) accept(ctx context.Context, msg []byte, m *hostMessage) bool {
	if !json.Valid(msg) {
		p.reply(nil, CodeParseError, "ncmcp proxy: the host sent a line that is not JSON")
		return true
	}
	env := readHost(msg)
	p.mu.Lock()
	switch env.Method {
	case "initialize":
		p.initialize = append([]byte(nil), msg...)
	case "notifications/initialized":
		p.initialized = append([]byte(nil), msg...)
	}
	if env.version != "" {
		p.metaVersion = env.version
	}
	p.mu.Unlock()
	if err := p.mem.Wait(ctx, len(msg)); err != nil {
		return false
	}
	m.msg, m.env = msg, env
	m.ctx, m.untrack = p.track(ctx, env)
	if env.Method == "notifications/cancelled" {
		p.cancelRequest(msg)
	}
	return true
}

// send forwards a message of the host in the background, once there is
// a slot for it (a request). The returned channel is closed once its
// request is written (or failed, or cancelled), so that messages reach
// the server in the host's order. Once the proxy stops, a message is
// not sent.
func (p *Proxy) send(m hostMessage) <-chan struct{} {
	written := make(chan struct{})
	p.mu.Lock()
	stopping := p.stopping
	if !stopping {
		p.wg.Add(1)
		p.inflight.Add(1)
	}
	p.mu.Unlock()
	if stopping {
		// Read as the proxy stops: not sent.
		p.mem.Give(len(m.msg))
		m.untrack()
		close(written)
		return written
	}
	go func() {
		defer p.wg.Done()
		defer p.inflight.Done()
		defer p.mem.Give(len(m.msg))
		defer m.untrack()
		if m.ctx.Err() != nil {
			close(written) // cancelled, or stopping, before its turn
			return
		}
		if m.env.Method == "tools/call" && m.env.version != "" {
			if _, invalid := p.tools.get(m.env.name); invalid != nil {
				// The host must not call it, and the server may take
				// the call without the headers it needs: refused here.
				p.log("%s: not forwarded: the x-mcp-header annotations of tool %q are invalid: %v", describe(m.env), m.env.name, invalid)
				p.replyTo(m.env, CodeInvalidTool, fmt.Sprintf("ncmcp proxy: tool %q cannot be called: the x-mcp-header annotations of its input schema are invalid (%v), and MCP 2026-07-28 forbids calling such a tool", m.env.name, invalid))
				close(written)
				return
			}
		}
		if m.env.isRequest() {
			select {
			case p.slots <- struct{}{}:
				defer func() { <-p.slots }()
			case <-m.ctx.Done():
				close(written) // cancelled, or stopping, while waiting
				return
			}
		}
		p.forward(m.ctx, m.msg, m.env, written, true)
	}()
	return written
}

// forward posts one message and passes the answer on. written is closed
// once the request is on the wire (or failed).
func (p *Proxy) forward(ctx context.Context, msg []byte, env envelope, written chan struct{}, mayReinit bool) {
	var once sync.Once
	wrote := func() { once.Do(func() { close(written) }) }
	defer wrote()
	pctx, denied := mcpclient.WithDenial(ctx)
	// After initialized too: a server may refuse requests that overtake
	// it (older MCP Python SDKs do), and its answer is at once.
	if env.Method != "initialize" && env.Method != "notifications/initialized" {
		// The next message may go once this one is on the wire (watch
		// says when); after initialize, only once its answer (the session,
		// the protocol version) is in.
		pctx = context.WithValue(pctx, wroteKey{}, wrote)
	}
	// A request of the stateless protocol belongs to no session.
	sid := ""
	if env.version == "" {
		sid = p.sessionID()
	}
	resp, err := p.post(pctx, msg, sid, env)
	if env.Method != "initialize" {
		wrote() // written, for sure, once the answer began
	}
	if err != nil {
		if ctx.Err() == nil {
			p.log("%s: %v", describe(env), err)
			p.replyTo(env, CodeUnreachable, fmt.Sprintf("ncmcp proxy: the MCP server did not answer: %v", err))
		}
		return
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound && sid != "" && mayReinit && env.Method != "initialize":
		// The server does not know the session: it restarted or expired
		// it. Begin a new one as the host did, and send the message again.
		resp.Body.Close()
		if err := p.reinit(ctx, sid); err != nil {
			p.log("the server lost the session and a new one could not be begun: %v", err)
			p.replyTo(env, CodeUnreachable, fmt.Sprintf("ncmcp proxy: the server lost the session: %v", err))
			return
		}
		p.forward(ctx, msg, env, make(chan struct{}), false)
	case mcpclient.Refused(resp):
		// A refusal of the token (401, 403 insufficient_scope) that the
		// authorization could not answer with another; other 403s are the
		// server's own answers, passed on below.
		why := denied()
		if why == nil {
			why = fmt.Errorf("the MCP server refused the access token (HTTP %d)", resp.StatusCode)
		}
		if p.o.Explain != nil {
			why = p.o.Explain(why)
		}
		p.log("%s: %v", describe(env), why)
		p.replyTo(env, CodeUnauthorized, fmt.Sprintf("ncmcp proxy: %v", why))
	case resp.StatusCode/100 == 2:
		if env.Method == "initialize" {
			p.setSession(resp.Header.Get(mcpwire.HeaderSession))
		}
		if env.Method == "notifications/initialized" {
			p.startStream(ctx)
		}
		if resp.StatusCode != http.StatusAccepted {
			p.answer(ctx, resp, env, func(m []byte) {
				p.toHost(m, env)
				if env.Method == "initialize" && isResponseTo(m, env) {
					// The session and the protocol version are known: the
					// next message may go, though the stream stays open.
					wrote()
				}
			})
		}
	default:
		p.failed(resp, env)
	}
}

// failed passes on an HTTP error: the JSON-RPC error in its body when it
// has one for this request, else an error of the proxy's. The body is
// read within the budget, as answers are: one that finds no room is not
// passed on.
func (p *Proxy) failed(resp *http.Response, env envelope) {
	m := &mcpwire.Metered{R: io.LimitReader(resp.Body, int64(p.o.MaxMessage)), Mem: p.mem}
	body, err := io.ReadAll(m)
	defer p.mem.Give(m.N)
	if err != nil {
		body = nil
	}
	var e envelope
	if json.Unmarshal(body, &e) == nil && len(e.ID) > 0 && bytes.Equal(e.ID, env.ID) {
		if p.claim(env) {
			p.write(body)
		}
		return
	}
	p.log("%s: HTTP %d", describe(env), resp.StatusCode)
	if env.Method == "initialize" {
		p.replyTo(env, CodeUnreachable, fmt.Sprintf("ncmcp proxy: %s is not an MCP server: it answered initialize with HTTP %d", p.o.Endpoint, resp.StatusCode))
		return
	}
	p.replyTo(env, CodeUnreachable, fmt.Sprintf("ncmcp proxy: the MCP server answered HTTP %d", resp.StatusCode))
}

// toHost passes a server message on, noting the initialize result's
// protocol version and the tools of a tools/list result (for a stateless
// host, without those it must not call).
func (p *Proxy) toHost(m []byte, req envelope) {
	response := isResponseTo(m, req)
	if response && !p.claim(req) {
		return // answered already (the proxy stopped), or cancelled
	}
	if response && req.Method == "tools/list" {
		var out map[string]error
		m, out = p.tools.observe(m, req.version != "")
		for name, why := range out {
			p.log("tool %q left out of the list: its x-mcp-header annotations are invalid: %v", name, why)
		}
	}
	var e envelope
	if req.Method == "initialize" && json.Unmarshal(m, &e) == nil && bytes.Equal(e.ID, req.ID) {
		var r struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if json.Unmarshal(e.Result, &r) == nil && r.ProtocolVersion != "" {
			p.mu.Lock()
			p.protocol = r.ProtocolVersion
			p.mu.Unlock()
		}
	}
	p.write(m)
}

func describe(env envelope) string {
	switch {
	case env.Method != "" && len(env.ID) > 0:
		return fmt.Sprintf("request %s (%s)", env.Method, env.ID)
	case env.Method != "":
		return "notification " + env.Method
	case len(env.ID) > 0:
		return fmt.Sprintf("response %s", env.ID)
	}
	return "message"
}

func (p *Proxy) sessionID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.session
}

func (p *Proxy) setSession(id string) {
	p.mu.Lock()
	p.session = id
	p.mu.Unlock()
}

// post sends one message with the session's headers, or for a stateless
// request (sid "") its version's, and those derived from the message.
func (p *Proxy) post(ctx context.Context, msg []byte, sid string, env envelope) (*http.Response, error) {
	return p.do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.o.Endpoint, bytes.NewReader(msg))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		p.headers(req, sid, p.version(env))
		var designated []mcpwire.ParamHeader
		var args json.RawMessage
		if env.Method == "tools/call" {
			if designated, _ = p.tools.get(env.name); len(designated) > 0 {
				args = arguments(msg)
			}
		}
		mcpwire.SetStandardHeaders(req.Header, env.Method, env.name, designated, args)
		return req, nil
	})
}

// do sends a request whose answer must keep coming: when no byte of it
// arrives for IdleTimeout, the request is cancelled (its connection
// closed) and reading the body fails.
func (p *Proxy) do(ctx context.Context, build func(context.Context) (*http.Request, error)) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	req, err := build(ctx)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	idle := fmt.Errorf("no byte of the answer for %s", p.o.IdleTimeout)
	timer := time.AfterFunc(p.o.IdleTimeout, func() { cancel(idle) })
	resp, err := p.hc.Do(req)
	if err != nil {
		timer.Stop()
		cancel(nil)
		if context.Cause(ctx) == idle {
			err = idle
		}
		return nil, err
	}
	timer.Reset(p.o.IdleTimeout)
	resp.Body = &idleBody{ReadCloser: resp.Body, timer: timer, idle: p.o.IdleTimeout, cancel: cancel, ctx: ctx, cause: idle}
	return resp, nil
}

// idleBody restarts its timer with every byte read, and cancels the
// request when closed.
type idleBody struct {
	io.ReadCloser
	timer *time.Timer
	idle  time.Duration
	// ctx is the request's: a read that fails because it ended for
	// idleness fails with cause.
	ctx    context.Context
	cause  error
	cancel context.CancelCauseFunc
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && context.Cause(b.ctx) == b.cause {
		err = b.cause
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// arguments returns a tool call's arguments.
func arguments(msg []byte) json.RawMessage {
	var m struct {
		Params struct {
			Arguments json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	_ = json.Unmarshal(msg, &m)
	return m.Params.Arguments
}

// version is the protocol version a message goes with: the one its _meta
// names, else the one initialize agreed on, else, when there was no
// handshake, the one of the host's latest stateless request.
func (p *Proxy) version(env envelope) string {
	if env.version != "" {
		return env.version
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.protocol == "" && p.initialize == nil {
		return p.metaVersion
	}
	return p.protocol
}

func (p *Proxy) headers(req *http.Request, sid, proto string) {
	if sid != "" {
		req.Header.Set(mcpwire.HeaderSession, sid)
	}
	if proto != "" {
		req.Header.Set(mcpwire.HeaderProtocol, proto)
	}
}

// answer reads a 2xx answer, JSON or an SSE stream, and hands each message
// to deliver. For a request whose stream ends before its response, the
// stream is resumed (Last-Event-ID) a few times; then the host gets an
// error instead of waiting for ever.
func (p *Proxy) answer(ctx context.Context, resp *http.Response, req envelope, deliver func([]byte)) {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "text/event-stream" {
		m := &mcpwire.Metered{R: io.LimitReader(resp.Body, int64(p.o.MaxMessage)+1), Mem: p.mem}
		body, err := io.ReadAll(m)
		defer p.mem.Give(m.N)
		switch {
		case errors.Is(err, mcpwire.ErrBudget):
			p.log("%s: no room for the answer (%d bytes of messages in flight)", describe(req), p.o.MaxBuffered)
			p.replyTo(req, CodeTooLarge, fmt.Sprintf("ncmcp proxy: no room for the answer: %d bytes of messages are in flight", p.o.MaxBuffered))
		case err != nil:
			p.replyTo(req, CodeUnreachable, fmt.Sprintf("ncmcp proxy: reading the answer: %v", err))
		case len(body) > p.o.MaxMessage:
			p.replyTo(req, CodeTooLarge, fmt.Sprintf("ncmcp proxy: the answer is over %d bytes", p.o.MaxMessage))
		case len(bytes.TrimSpace(body)) > 0 && !json.Valid(body):
			p.log("%s: the server answered %q, not JSON", describe(req), mt)
			if req.Method == "initialize" {
				p.replyTo(req, CodeUnreachable, fmt.Sprintf("ncmcp proxy: %s is not an MCP server: it answered initialize with %s", p.o.Endpoint, mcpwire.DescribeContentType(mt)))
				break
			}
			p.replyTo(req, CodeUnreachable, fmt.Sprintf("ncmcp proxy: the MCP server answered with %s, not JSON", mcpwire.DescribeContentType(mt)))
		case len(bytes.TrimSpace(body)) > 0:
			deliver(body)
		}
		return
	}
	answered := false
	watch := func(m []byte) {
		if isResponseTo(m, req) {
			answered = true
		}
		deliver(m)
	}
	last, err := p.readEvents(resp.Body, watch)
	// A stream of the stateless protocol is not resumed: it has no GET.
	for try := 0; req.isRequest() && req.version == "" && !answered && !mcpwire.Overflow(err) && last != "" && try < 3 && ctx.Err() == nil; try++ {
		r, gerr := p.get(ctx, last)
		if gerr != nil || r.StatusCode != http.StatusOK {
			if r != nil {
				r.Body.Close()
			}
			break
		}
		var l string
		l, err = p.readEvents(r.Body, watch)
		r.Body.Close()
		if l != "" {
			last = l
		}
	}
	switch {
	case answered:
	case mcpwire.Overflow(err):
		p.log("%s: %v", describe(req), p.overflowed(err))
		p.replyTo(req, CodeTooLarge, fmt.Sprintf("ncmcp proxy: %v", p.overflowed(err)))
		return
	case err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil:
		p.log("%s: %v", describe(req), err)
		p.replyTo(req, CodeUnreachable, fmt.Sprintf("ncmcp proxy: reading the answer: %v", err))
		return
	}
	if req.isRequest() && !answered && ctx.Err() == nil {
		p.replyTo(req, CodeUnreachable, "ncmcp proxy: the server's stream ended without an answer")
	}
}

// overflowed says what an overflow was, with its limit.
func (p *Proxy) overflowed(err error) error {
	if errors.Is(err, mcpwire.ErrTooLarge) {
		return fmt.Errorf("the server sent a message over %d bytes", p.o.MaxMessage)
	}
	return fmt.Errorf("no room for the server's message: %d bytes of messages are in flight", p.o.MaxBuffered)
}

// readEvents reads an SSE stream within the message limit and the budget
// (mcpwire.ReadEvents).
func (p *Proxy) readEvents(body io.Reader, deliver func([]byte)) (string, error) {
	return mcpwire.ReadEvents(body, p.o.MaxMessage, p.mem, deliver)
}

// get opens an SSE stream: the standalone one, or a resumed one.
func (p *Proxy) get(ctx context.Context, lastID string) (*http.Response, error) {
	return p.do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.o.Endpoint, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/event-stream")
		if lastID != "" {
			req.Header.Set(mcpwire.HeaderLastID, lastID)
		}
		p.headers(req, p.sessionID(), p.version(envelope{}))
		return req, nil
	})
}

// startStream opens the standalone SSE stream, once, which carries the
// server's notifications and requests outside any request of the host's.
func (p *Proxy) startStream(ctx context.Context) {
	p.mu.Lock()
	if p.streaming {
		p.mu.Unlock()
		return
	}
	p.streaming = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.stream(ctx)
	}()
}

// Back-off of the standalone stream: after each failure the wait doubles,
// with jitter, up to streamMaxWait; a stream that delivered a message
// resets it.
const (
	streamMinWait = time.Second
	streamMaxWait = 30 * time.Second
)

// stream keeps the standalone stream open until ctx ends or the server
// says it has none (405). Every attempt, failed or not, is followed by a
// wait: at most one request a second, sustained, whatever the server does.
func (p *Proxy) stream(ctx context.Context) {
	wait, last := streamMinWait, ""
	for ctx.Err() == nil {
		sid := p.sessionID()
		resp, err := p.get(ctx, last)
		failure := ""
		switch {
		case err != nil:
			failure = err.Error()
		case resp.StatusCode == http.StatusMethodNotAllowed:
			resp.Body.Close()
			return
		case resp.StatusCode == http.StatusNotFound && sid != "":
			resp.Body.Close()
			failure = "the server does not know the session"
			if err := p.reinit(ctx, sid); err != nil && ctx.Err() == nil {
				failure = "the server lost the session and a new one could not be begun: " + err.Error()
			}
			last = ""
		case resp.StatusCode == http.StatusOK:
			delivered := false
			l, err := p.readEvents(resp.Body, func(m []byte) { delivered = true; p.write(m) })
			resp.Body.Close()
			if l != "" {
				last = l
			}
			if delivered {
				wait = streamMinWait
			}
			if mcpwire.Overflow(err) {
				failure = p.overflowed(err).Error()
			}
		default:
			resp.Body.Close()
			failure = fmt.Sprintf("HTTP %d", resp.StatusCode)
		}
		d := jitter(wait)
		if failure != "" && ctx.Err() == nil {
			p.log("the server's stream of notifications: %s; again in %s", failure, d.Round(100*time.Millisecond))
			wait = min(2*wait, streamMaxWait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// jitter returns d spread by up to a fifth either way, so that proxies
// restarted together do not retry together.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// reinit begins a new session with the host's initialize request and
// initialized notification, unless another goroutine did since the session
// sid failed. The server's answer to it is not passed on: the host has
// its own.
func (p *Proxy) reinit(ctx context.Context, sid string) error {
	p.reinitMu.Lock()
	defer p.reinitMu.Unlock()
	p.mu.Lock()
	current, init, inited := p.session, p.initialize, p.initialized
	p.mu.Unlock()
	if current != sid {
		return nil
	}
	if init == nil {
		return errors.New("the host has not initialized")
	}
	p.reinits++
	var m map[string]json.RawMessage
	if err := json.Unmarshal(init, &m); err != nil {
		return err
	}
	m["id"] = json.RawMessage(fmt.Sprintf(`"ncmcp-proxy-reinitialize-%d"`, p.reinits))
	msg, _ := json.Marshal(m)
	resp, err := p.post(ctx, msg, "", envelope{ID: m["id"], Method: "initialize"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("initialize: HTTP %d", resp.StatusCode)
	}
	p.setSession(resp.Header.Get(mcpwire.HeaderSession))
	// The result is all that is needed of the answer, though its stream
	// may stay open; the host, which has its own, gets none of it.
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		req := envelope{ID: m["id"], Method: "initialize"}
		_, _ = p.readEvents(resp.Body, func(b []byte) {
			if isResponseTo(b, req) {
				resp.Body.Close()
			}
		})
	} else {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, int64(p.o.MaxMessage)))
	}
	if inited != nil {
		r, err := p.post(ctx, inited, p.sessionID(), envelope{Method: "notifications/initialized"})
		if err != nil {
			return err
		}
		r.Body.Close()
	}
	p.log("the server lost the MCP session (restarted?); began a new one with the host's initialize")
	return nil
}

// end closes the server's session (DELETE), briefly waiting for nothing
// else: the host is gone.
func (p *Proxy) end() {
	sid := p.sessionID()
	if sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), endTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, p.o.Endpoint, nil)
	if err != nil {
		return
	}
	p.headers(req, sid, p.version(envelope{}))
	if resp, err := p.hc.Do(req); err == nil {
		resp.Body.Close()
	}
}

// write sends one message to the host: one line of compact JSON. A batch
// is passed on as it is; anything that is not JSON is dropped.
func (p *Proxy) write(m []byte) {
	var b bytes.Buffer
	if err := json.Compact(&b, bytes.TrimSpace(m)); err != nil {
		p.log("the server sent something that is not JSON: dropped")
		return
	}
	b.WriteByte('\n')
	p.outMu.Lock()
	defer p.outMu.Unlock()
	if _, err := p.o.Out.Write(b.Bytes()); err != nil {
		p.log("writing to the host: %v", err)
	}
}

// replyTo answers the host's request with an error, unless it got its
// answer already; notifications and responses get none.
func (p *Proxy) replyTo(env envelope, code int, msg string) {
	if env.isRequest() && p.claim(env) {
		p.reply(env.ID, code, msg)
	}
}

// claim marks the host's request env as answered; false when it was
// already (or the host cancelled it): every request gets one answer.
func (p *Proxy) claim(env envelope) bool {
	if !env.isRequest() {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.pending[string(env.ID)]
	if r == nil {
		return true
	}
	if r.done {
		return false
	}
	r.done = true
	return true
}

// isResponseTo tells whether the server message m is the response to the
// host's request req. Only the id and the method are decoded: a result
// may be large, and every message of an answer is looked at.
func isResponseTo(m []byte, req envelope) bool {
	if !req.isRequest() {
		return false
	}
	var e struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	return json.Unmarshal(m, &e) == nil && e.Method == "" && bytes.Equal(e.ID, req.ID)
}

func (p *Proxy) reply(id json.RawMessage, code int, msg string) {
	if id == nil {
		id = json.RawMessage("null")
	}
	type rpcError struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcError        `json:"error"`
	}{"2.0", id, rpcError{code, msg}})
	p.write(b)
}
