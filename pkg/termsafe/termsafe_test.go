package termsafe

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ünïcode ✓", "plain text, ünïcode ✓"},
		{"title\x1b]0;pwned\x07 set", "title set"},
		{"title\x1b]2;pwned\x1b\\ set", "title set"},
		{"clear\x1b[2J\x1b[H screen", "clear screen"},
		{"colour \x1b[31mred\x1b[0m", "colour red"},
		{"c1 \u009b31mcsi", "c1 csi"},
		{"c1 \u009d0;t\u009c osc", "c1  osc"},
		{"bell\x07 backspace\x08 del\x7f", "bell backspace del"},
		{"line1\nline2\tx\r", "line1 line2 x"},
		{"bidi \u202egnp.exe", "bidi gnp.exe"},
		{"bad \xff utf8", "bad \ufffd utf8"},
		{"lone esc at end \x1b", "lone esc at end "},
		{"keypad \x1b=mode", "keypad mode"},
	}
	for _, tt := range tests {
		if got := String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Lines("a\nb\x1b[1Ac\td"); got != "a\nbc\td" {
		t.Errorf("Lines kept/removed the wrong things: %q", got)
	}
	var b strings.Builder
	if n, err := (Writer{W: &b}).Write([]byte("x\x1b]0;t\x07y\n")); err != nil || n != 9 || b.String() != "xy\n" {
		t.Errorf("Writer wrote %q (%d, %v)", b.String(), n, err)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"\x1b]0;x\x07", "\x1b[31m", "\u009b1;2H", "a\nb", "\xff\xfe", "\x1b", "\x1bP1$r\x1b\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{String(s), Lines(s)} {
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of %q: %q", s, out)
			}
			for _, r := range out {
				if (unicode.IsControl(r) && r != '\n' && r != '\t') || isBidiControl(r) {
					t.Fatalf("control %U left in %q (from %q)", r, out, s)
				}
			}
		}
		if strings.ContainsAny(String(s), "\n\t") {
			t.Fatalf("String kept a newline: %q", s)
		}
	})
}
