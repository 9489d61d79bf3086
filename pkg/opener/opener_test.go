package opener

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckURL(t *testing.T) {
	for _, u := range []string{"https://mcp.example.com/x", "http://127.0.0.1:8080/oauth/authorize?a=b"} {
		if err := CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"javascript:alert(1)", "file:///etc/passwd", "/relative", "mailto:x@y", "https://", "ftp://host/x", "-- --help"} {
		if err := CheckURL(u); !errors.Is(err, ErrNotHTTP) {
			t.Errorf("CheckURL(%q) = %v, want ErrNotHTTP", u, err)
		}
	}
}

// TestOpenRunsConfiguredCommand uses a real shell script as the browser: it
// gets the URL as its one argument, and what it prints never reaches stdout.
func TestOpenRunsConfiguredCommand(t *testing.T) {
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	script := filepath.Join(dir, "browser")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho noise\nprintf '%s|%s' \"$#\" \"$1\" > "+got+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NCMCP_BROWSER": script, "BROWSER": "/nonexistent"}
	o := Opener{Getenv: func(k string) string { return env[k] }}
	u := "http://127.0.0.1:1/oauth/authorize?state=a b&x=$(touch /tmp/pwned)"
	if err := o.Open(u); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for i := 0; i < 200; i++ {
		if b, _ = os.ReadFile(got); len(b) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if string(b) != "1|"+u {
		t.Fatalf("browser got %q, want one argument %q", b, u)
	}
	if err := o.Open("javascript:alert(1)"); !errors.Is(err, ErrNotHTTP) {
		t.Fatalf("Open(javascript:) = %v", err)
	}
}

func TestCommandPrecedence(t *testing.T) {
	env := map[string]string{"BROWSER": "firefox --new-window"}
	o := Opener{Getenv: func(k string) string { return env[k] }}
	if c := strings.Join(o.Command(), " "); c != "firefox --new-window" {
		t.Errorf("BROWSER: %q", c)
	}
	env["NCMCP_BROWSER"] = "chromium"
	if c := strings.Join(o.Command(), " "); c != "chromium" {
		t.Errorf("NCMCP_BROWSER wins: %q", c)
	}
	if (Opener{Getenv: func(string) string { return "" }}).Command() != nil {
		t.Error("no command configured")
	}
}

func TestOpenReportsMissingCommand(t *testing.T) {
	o := Opener{Getenv: func(k string) string {
		if k == "NCMCP_BROWSER" {
			return "/nonexistent/browser"
		}
		return ""
	}}
	if err := o.Open("https://example.com"); err == nil {
		t.Fatal("a missing browser command was not reported")
	}
}
