package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ncmcp/ncmcp/pkg/termsafe"
)

// Exit codes, as documented in docs/ and SPEC: scripts depend on them.
const (
	ExitOK       = 0
	ExitFailure  = 1
	ExitUsage    = 2
	ExitAuth     = 4
	ExitTimedOut = 8
)

// Error is an error with an exit code and a hint of what to do next.
type Error struct {
	Code int
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func failure(err error, hint string) error { return &Error{Code: ExitFailure, Err: err, Hint: hint} }

func usageErrorf(hint, format string, args ...any) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format, args...), Hint: hint}
}

func authNeeded(err error, hint string) error { return &Error{Code: ExitAuth, Err: err, Hint: hint} }

func timedOut(err error, hint string) error { return &Error{Code: ExitTimedOut, Err: err, Hint: hint} }

// exitCode maps an error to its exit code and prints it once to w as
// "ncmcp: message" with the hint on the next line.
func report(w io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	code, hint := ExitFailure, ""
	var e *Error
	if errors.As(err, &e) {
		code, hint = e.Code, e.Hint
	} else if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintf(w, "ncmcp: %s\n", oneLine(err.Error()))
	if hint != "" {
		fmt.Fprintf(w, "hint: %s\n", oneLine(hint))
	}
	return code
}

// oneLine makes text one line and safe for a terminal: server text (error
// descriptions, tool messages) must not bring its control bytes along.
func oneLine(s string) string { return strings.Join(strings.Fields(termsafe.String(s)), " ") }

// printJSON writes v to w as indented JSON (the --json outputs).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
