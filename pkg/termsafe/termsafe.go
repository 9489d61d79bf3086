// Package termsafe makes text that comes from servers safe to print on a
// terminal: escape sequences and other control characters, which could set
// the window title, clear the screen or rewrite earlier lines, are removed.
package termsafe

import (
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s without control characters: ANSI escape sequences (CSI,
// OSC and other ESC sequences) are dropped whole; other C0 and C1 controls,
// DEL and Unicode bidirectional overrides are dropped; tabs and newlines
// become spaces. Invalid UTF-8 bytes become U+FFFD.
func String(s string) string { return clean(s, false) }

// Lines is String that keeps newlines and tabs, for multi-line server
// messages and tables.
func Lines(s string) string { return clean(s, true) }

// Writer passes everything written to it through Lines.
type Writer struct{ W io.Writer }

// Write writes Lines(p) to the underlying writer and reports p as written.
func (w Writer) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.W, Lines(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func clean(s string, keepNewlines bool) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == 0x1b:
			i += escapeLen(s[i:])
			continue
		case r == 0x9b: // C1 CSI
			i += size + csiLen(s[i+size:])
			continue
		case r == 0x9d: // C1 OSC
			i += size + oscLen(s[i+size:])
			continue
		case (r == '\n' || r == '\t') && keepNewlines:
			b.WriteRune(r)
		case r == '\n', r == '\t':
			b.WriteByte(' ')
		case r == '\r':
		case unicode.IsControl(r), isBidiControl(r):
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// isBidiControl reports the Unicode characters that reorder text on
// display (CVE-2021-42574 "Trojan Source").
func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// escapeLen returns the length of the escape sequence at the start of s
// (s[0] is ESC).
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[':
		return 2 + csiLen(s[2:])
	case ']', 'P', 'X', '^', '_':
		return 2 + oscLen(s[2:])
	}
	if s[1] >= 0x20 && s[1] <= 0x2f { // intermediate bytes, then a final byte
		j := 1
		for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2f {
			j++
		}
		if j < len(s) {
			j++
		}
		return j
	}
	return 2
}

// csiLen returns the length of a CSI sequence's parameters and final byte.
func csiLen(s string) int {
	for j := 0; j < len(s); j++ {
		if s[j] >= 0x40 && s[j] <= 0x7e {
			return j + 1
		}
		if s[j] < 0x20 || s[j] > 0x3f && s[j] < 0x40 {
			return j
		}
	}
	return len(s)
}

// oscLen returns the length of an OSC (or DCS, PM, APC, SOS) string up to
// and including its terminator: BEL, ESC \ or the C1 ST.
func oscLen(s string) int {
	for j := 0; j < len(s); j++ {
		switch {
		case s[j] == 0x07:
			return j + 1
		case s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\':
			return j + 2
		case strings.HasPrefix(s[j:], "\u009c"):
			return j + len("\u009c")
		}
	}
	return len(s)
}
