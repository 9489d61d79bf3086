// Package loopback receives an OAuth authorization response on a
// 127.0.0.1 listener (RFC 8252 section 7.3): it answers only its callback
// path, checks state, accepts one response and then shuts down.
package loopback

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// CallbackPath is the path of the redirect URI.
const CallbackPath = "/callback"

// completeTimeout bounds how long the browser's request waits for the
// caller to finish (code exchange) before it gets a neutral page.
const completeTimeout = 60 * time.Second

// Server is a one-shot loopback listener for an authorization response.
type Server struct {
	ln   net.Listener
	port int
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

// Result is what the user sees after the callback: a title and a message.
type Result struct {
	OK      bool
	Title   string
	Message string
}

// Wait serves until an authorization response with the expected state
// arrives, or ctx is done. Responses with a wrong or missing state get an
// error page and Wait keeps waiting. For a valid response with a code it
// calls complete (typically the code exchange) and shows the browser its
// outcome; an error response from the IdP ends Wait with an *AuthError.
// The listener is closed when Wait returns.
func (s *Server) Wait(ctx context.Context, state string, complete func(ctx context.Context, code string) Result) (Result, error) {
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	claimed := make(chan struct{}, 1) // one slot: the single accepted response
	claimed <- struct{}{}

	mux := http.NewServeMux()
	mux.HandleFunc(CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		got := q.Get("state")
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(state)) != 1 {
			render(w, http.StatusBadRequest, Result{Title: "Login not accepted", Message: "This response does not belong to the login ncmcp is waiting for (state mismatch). Start the login again from the terminal if it does not complete."})
			return
		}
		select {
		case <-claimed:
		default:
			render(w, http.StatusConflict, Result{Title: "Already handled", Message: "ncmcp has already received a response for this login."})
			return
		}
		if e := q.Get("error"); e != "" {
			aerr := &AuthError{Code: e, Description: q.Get("error_description"), URI: q.Get("error_uri")}
			render(w, http.StatusOK, Result{Title: "Login failed", Message: aerr.Error()})
			done <- outcome{err: aerr}
			return
		}
		code := q.Get("code")
		if code == "" {
			aerr := &AuthError{Code: "invalid_response", Description: "the authorization response carried neither code nor error"}
			render(w, http.StatusBadRequest, Result{Title: "Login failed", Message: aerr.Error()})
			done <- outcome{err: aerr}
			return
		}
		cctx, cancel := context.WithTimeout(ctx, completeTimeout)
		defer cancel()
		res := complete(cctx, code)
		status := http.StatusOK
		if !res.OK {
			status = http.StatusBadRequest
		}
		render(w, status, res)
		done <- outcome{res: res}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	})

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      completeTimeout + 10*time.Second,
	}
	go func() { _ = srv.Serve(s.ln) }()

	var o outcome
	select {
	case o = <-done:
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

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ncmcp: {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}.ok{color:#1a7f37}.fail{color:#b42318}</style></head>
<body><h1 class="{{if .OK}}ok{{else}}fail{{end}}">{{.Title}}</h1><p>{{.Message}}</p>
<p>You can close this tab and return to the terminal.</p></body></html>
`))

func render(w http.ResponseWriter, status int, r Result) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = page.Execute(w, r)
}
