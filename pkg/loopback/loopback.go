// Package loopback receives an OAuth authorization response on a
// 127.0.0.1 listener (RFC 8252 section 7.3): it answers only its callback
// path, checks state, accepts one response and then shuts down.
package loopback

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// CallbackPath is the path of the redirect URI.
const CallbackPath = "/callback"

// completeTimeout bounds how long the browser's request waits for the
// caller to finish (code exchange) before it gets a neutral page.
const completeTimeout = 60 * time.Second

// StartPath is the path prefix of the one-time start page (see Start).
const StartPath = "/start/"

// Server is a one-shot loopback listener for an authorization response.
type Server struct {
	ln   net.Listener
	port int

	// The one-time start page, if any, and where it sends the browser.
	startID   string
	startNext string

	// The authorization server the request went to (see ExpectIssuer).
	issuer      string
	issRequired bool
}

// PortInUseError reports a fixed port that is already taken.
type PortInUseError struct{ Port int }

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("loopback port %d is already in use", e.Port)
}

// Listen binds 127.0.0.1:port (port 0 picks a free one). Only the IPv4
// loopback address is used, never a wildcard address.
func Listen(port int) (*Server, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &PortInUseError{Port: port}
		}
		return nil, fmt.Errorf("listen on 127.0.0.1:%d: %w", port, err)
	}
	return &Server{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}, nil
}

// Port returns the bound port.
func (s *Server) Port() int { return s.port }

// RedirectURI returns http://127.0.0.1:PORT/callback.
func (s *Server) RedirectURI() string {
	return "http://127.0.0.1:" + strconv.Itoa(s.port) + CallbackPath
}

// Start registers a one-time start page and returns its URL, which is what
// the browser is given instead of the authorization request: a command line
// is readable by every user of the machine (/proc/PID/cmdline), and the
// authorization request's state would let another user complete the login
// as themselves and send the response here (login CSRF). The page answers
// with a redirect (302) to next, the authorization request, which the
// browser then makes itself (RFC 8252 section 6): with its own cookies, so
// that a session at the authorization server signs the user in, and once.
// The page works once: a second visit means someone else has the link, and
// ends the wait with ErrStartReused.
func (s *Server) Start(next string) string {
	s.startID = randomID()
	s.startNext = next
	return "http://127.0.0.1:" + strconv.Itoa(s.port) + StartPath + s.startID
}

// ErrStartReused reports a start page visited twice.
var ErrStartReused = errors.New("the login link was opened twice: another program or user on this machine may have taken it, so ncmcp stopped this login (nothing was stored)")

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ExpectIssuer makes the listener check the iss parameter of authorization
// responses (RFC 9207): issuer is the issuer identifier of the authorization
// server the request went to, exactly as its metadata names it, and
// required is its authorization_response_iss_parameter_supported. A
// response whose iss differs from issuer, by any byte, is refused, and so
// is one without iss when required is set; error responses too, since
// their error may come from another server than the one asked (a mix-up
// attack). Without ExpectIssuer no iss is checked.
func (s *Server) ExpectIssuer(issuer string, required bool) {
	s.issuer, s.issRequired = issuer, required
}

// Close releases the listener; Wait does this itself.
func (s *Server) Close() error { return s.ln.Close() }

// AuthError is an error response from the authorization server
// (RFC 6749 section 4.1.2.1).
type AuthError struct {
	Code        string
	Description string
	URI         string
}

func (e *AuthError) Error() string {
	msg := "the identity provider refused the login: " + e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// IssuerError reports an authorization response refused by the issuer
// check (RFC 9207): it names another authorization server than the one the
// request went to, or none where that server always names itself. It may
// be a mix-up attack: the code was not exchanged and nothing was stored.
type IssuerError struct {
	// Expected is the issuer identifier of the authorization server the
	// request went to.
	Expected string
	// Got are the response's iss values; none when it had no iss.
	Got []string
	// AuthError is the error the response carried, if it was an error
	// response; it cannot be taken as Expected's.
	AuthError *AuthError
}

func (e *IssuerError) Error() string {
	var msg string
	switch len(e.Got) {
	case 0:
		msg = fmt.Sprintf("the authorization response carries no iss, though the authorization server %s says that it names itself in every response (authorization_response_iss_parameter_supported)", e.Expected)
	case 1:
		msg = fmt.Sprintf("the authorization response comes from issuer %q, not from %q, the authorization server this login went to", e.Got[0], e.Expected)
	default:
		msg = fmt.Sprintf("the authorization response names %d issuers (iss), where %q, the authorization server this login went to, would name itself once", len(e.Got), e.Expected)
	}
	if e.AuthError != nil {
		msg += fmt.Sprintf("; the error it carries (%q) is not taken as that server's", e.AuthError.Code)
	}
	return msg + ": this may be a mix-up attack (RFC 9207), so ncmcp refused the response; no code was exchanged and nothing was stored"
}

// ErrIssuerNeeded reports a bare code pasted for an authorization server
// that names itself in its responses: only the whole address can be checked.
var ErrIssuerNeeded = errors.New("this authorization server names itself in its responses (iss), which ncmcp checks: paste the whole address the browser ends on, not only the code")

// Result is what the user sees after the callback: a title and a message.
type Result struct {
	OK      bool
	Title   string
	Message string
}

// ErrStateMismatch is reported for a pasted response whose state is not the
// one this login sent.
var ErrStateMismatch = errors.New("the response does not belong to this login (state mismatch)")

// Wait serves until an authorization response with the expected state
// arrives, or ctx is done. Responses with a wrong or missing state get an
// error page and Wait keeps waiting. For a valid response with a code it
// calls complete (typically the code exchange) and shows the browser its
// outcome; an error response from the IdP ends Wait with an *AuthError.
// The listener is closed when Wait returns. See WaitOrPaste for responses
// typed in by the user.
func (s *Server) Wait(ctx context.Context, state string, complete func(ctx context.Context, code string) Result) (Result, error) {
	return s.WaitOrPaste(ctx, state, complete, nil, nil)
}

// WaitOrPaste is Wait that also accepts responses from pasted: each string
// is the URL the browser was redirected to (or just the code, for which no
// state can be checked). A pasted response with a wrong state is reported to
// rejected and Wait keeps waiting. Whichever valid response comes first,
// from the browser or pasted, is the one used.
func (s *Server) WaitOrPaste(ctx context.Context, state string, complete func(ctx context.Context, code string) Result, pasted <-chan string, rejected func(error)) (Result, error) {
	aborted := make(chan error, 1)
	var startUsed, stopped atomic.Bool
	r := &responder{state: state, complete: complete, done: make(chan outcome, 1), claimed: make(chan struct{}, 1), stopped: stopped.Load,
		issuer: s.issuer, issRequired: s.issRequired}
	r.claimed <- struct{}{}

	mux := http.NewServeMux()
	if s.startID != "" {
		mux.HandleFunc("GET "+StartPath+"{id}", func(w http.ResponseWriter, req *http.Request) {
			if subtle.ConstantTimeCompare([]byte(req.PathValue("id")), []byte(s.startID)) != 1 {
				http.NotFound(w, req)
				return
			}
			if startUsed.Swap(true) {
				stopped.Store(true)
				abort(aborted, ErrStartReused)
				render(w, http.StatusConflict, Result{Title: "Login link already used", Message: "This login link was opened before. If that was not you, another program or user on this machine may have taken it: ncmcp stopped this login. Start it again from the terminal."})
				return
			}
			// The redirect carries the state and the PKCE challenge: no
			// cache keeps it, and the start link is not passed on as a
			// Referer.
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Referrer-Policy", "no-referrer")
			http.Redirect(w, req, s.startNext, http.StatusFound)
		})
	}
	mux.HandleFunc(CallbackPath, func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		status, page := r.handle(ctx, req.URL.Query())
		render(w, status, page)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	})
	srv := &http.Server{
		Handler:           sameUser(mux),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      completeTimeout + 10*time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	go func() { _ = srv.Serve(s.ln) }()

	stopPaste := make(chan struct{})
	defer close(stopPaste)
	if pasted != nil {
		go func() {
			for {
				select {
				case <-stopPaste:
					return
				case line, ok := <-pasted:
					if !ok {
						return
					}
					q, err := parsePasted(line, state)
					if err == nil && r.issRequired && bareCode(line) {
						// A bare code carries no iss to check.
						err = ErrIssuerNeeded
					}
					if err == nil {
						if status, _ := r.handle(ctx, q); status == stateMismatchStatus {
							err = ErrStateMismatch
						}
					}
					if err != nil && rejected != nil {
						rejected(err)
					}
				}
			}
		}()
	}

	var o outcome
	select {
	case o = <-r.done:
	case err := <-aborted:
		o.err = err
	case <-ctx.Done():
		o.err = ctx.Err()
	}
	// Let the page reach the browser, then stop: the listener is single-use.
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return o.res, o.err
}

type connKey struct{}

// sameUser refuses requests from processes of other users, where the
// platform tells (Linux): another local user who learnt the listener's
// address, or even the start page's link, cannot use it.
func sameUser(next http.Handler) http.Handler {
	if !peerChecked {
		return next
	}
	me := os.Getuid()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(net.Conn)
		var local, remote *net.TCPAddr
		if c != nil {
			local, _ = c.LocalAddr().(*net.TCPAddr)
			remote, _ = c.RemoteAddr().(*net.TCPAddr)
		}
		if local == nil || remote == nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		uid, err := peerUID(local, remote)
		if err != nil || uid != me {
			render(w, http.StatusForbidden, Result{Title: "Not your login", Message: "This login belongs to another user of this machine."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// abort sends the first reason to end the wait early; later ones are dropped.
func abort(ch chan error, err error) {
	select {
	case ch <- err:
	default:
	}
}

type outcome struct {
	res Result
	err error
}

// responder decides on authorization responses, from the browser or pasted.
type responder struct {
	state    string
	complete func(ctx context.Context, code string) Result
	done     chan outcome
	claimed  chan struct{} // one token: the single accepted response
	// stopped reports a login ended by the start page (a reused link): no
	// response is accepted after.
	stopped func() bool
	// issuer, when set, is what the response's iss must be; issRequired
	// refuses responses without iss (see Server.ExpectIssuer).
	issuer      string
	issRequired bool
}

// checkIssuer applies RFC 9207 section 2.4 to a response: an iss present
// must be the issuer exactly (simple string comparison: no case folding,
// no trailing slash, default port or percent-encoding normalisation), and
// one absent is refused where the server said it always sends it.
func (r *responder) checkIssuer(q url.Values) *IssuerError {
	if r.issuer == "" {
		return nil
	}
	got, present := q["iss"]
	switch {
	case !present && !r.issRequired:
		return nil
	case len(got) == 1 && got[0] == r.issuer:
		return nil
	}
	ie := &IssuerError{Expected: r.issuer, Got: got}
	if e := q.Get("error"); e != "" {
		ie.AuthError = &AuthError{Code: e, Description: q.Get("error_description"), URI: q.Get("error_uri")}
	}
	return ie
}

// stateMismatchStatus is the status of the page for a response of another login.
const stateMismatchStatus = http.StatusBadRequest + 1000

// handle processes one authorization response and returns the page to show.
func (r *responder) handle(ctx context.Context, q url.Values) (int, Result) {
	got := q.Get("state")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(r.state)) != 1 {
		return stateMismatchStatus, Result{Title: "Login not accepted", Message: "This response does not belong to the login ncmcp is waiting for (state mismatch). Start the login again from the terminal if it does not complete."}
	}
	if r.stopped != nil && r.stopped() {
		return http.StatusConflict, Result{Title: "Login stopped", Message: "ncmcp stopped this login; see the terminal."}
	}
	select {
	case <-r.claimed:
	default:
		return http.StatusConflict, Result{Title: "Already handled", Message: "ncmcp has already received a response for this login."}
	}
	if ie := r.checkIssuer(q); ie != nil {
		r.done <- outcome{err: ie}
		return http.StatusBadRequest, Result{Title: "Login refused", Message: "ncmcp refused this authorization response: it does not show that it comes from the authorization server this login went to (its iss parameter, RFC 9207). No code was exchanged and nothing was stored; see the terminal."}
	}
	if e := q.Get("error"); e != "" {
		aerr := &AuthError{Code: e, Description: q.Get("error_description"), URI: q.Get("error_uri")}
		r.done <- outcome{err: aerr}
		return http.StatusOK, Result{Title: "Login failed", Message: aerr.Error()}
	}
	code := q.Get("code")
	if code == "" {
		aerr := &AuthError{Code: "invalid_response", Description: "the authorization response carried neither code nor error"}
		r.done <- outcome{err: aerr}
		return http.StatusBadRequest, Result{Title: "Login failed", Message: aerr.Error()}
	}
	cctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	res := r.complete(cctx, code)
	r.done <- outcome{res: res}
	if !res.OK {
		return http.StatusBadRequest, res
	}
	return http.StatusOK, res
}

// parsePasted turns a pasted redirect URL, query string or bare code into
// response parameters. A bare code carries no state; it is taken as this
// login's, as the user typed it here.
func parsePasted(line, state string) (url.Values, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, errors.New("nothing was pasted")
	}
	if !bareCode(line) {
		raw := line
		if i := strings.IndexByte(line, '?'); i >= 0 {
			raw = line[i+1:]
		}
		if i := strings.IndexByte(raw, '#'); i >= 0 {
			raw = raw[:i]
		}
		q, err := url.ParseQuery(raw)
		if err != nil {
			return nil, fmt.Errorf("the pasted URL cannot be read: %v", err)
		}
		if q.Get("code") == "" && q.Get("error") == "" {
			return nil, errors.New("the pasted URL holds no code")
		}
		return q, nil
	}
	if strings.ContainsAny(line, " /?&=") {
		return nil, errors.New("paste the whole URL from the browser's address bar, or only the code")
	}
	return url.Values{"code": {line}, "state": {state}}, nil
}

// bareCode tells whether a pasted line is taken as a bare code rather than
// an address or query string (see parsePasted).
func bareCode(line string) bool {
	line = strings.TrimSpace(line)
	return !strings.Contains(line, "code=") && !strings.Contains(line, "error=")
}

// pageHTML is the callback's answer page: the class (ok or fail), the
// title twice, the message. The text is escaped (html.EscapeString) and
// appears only in element content; html/template would do the same, and
// its package initialisation would run for every command.
const pageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ncmcp: %[2]s</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}.ok{color:#1a7f37}.fail{color:#b42318}</style></head>
<body><h1 class="%[1]s">%[2]s</h1><p>%[3]s</p>
<p>You can close this tab and return to the terminal.</p></body></html>
`

func render(w http.ResponseWriter, status int, r Result) {
	if status == stateMismatchStatus {
		status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	class := "fail"
	if r.OK {
		class = "ok"
	}
	fmt.Fprintf(w, pageHTML, class, html.EscapeString(r.Title), html.EscapeString(r.Message))
}
