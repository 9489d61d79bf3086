//go:build linux

package loopback

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// otherUserRole makes the test binary fetch a URL and print the status, as
// another user's process.
const otherUserRole = "NCMCP_LOOPBACK_TEST_GET"

func TestMain(m *testing.M) {
	if u := os.Getenv(otherUserRole); u != "" {
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(u)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// need skips t when a part is missing, or fails it when NCMCP_TEST_REQUIRE
// names that part.
func need(t *testing.T, part, why string) {
	t.Helper()
	if slices.Contains(strings.Split(os.Getenv("NCMCP_TEST_REQUIRE"), ","), part) {
		t.Fatalf("%s is required (NCMCP_TEST_REQUIRE) but not available: %s", part, why)
	}
	t.Skipf("skipping: %s not available: %s (set NCMCP_TEST_REQUIRE=%s to make this a failure)", part, why, part)
}

// asOtherUser fetches u from a process of uid 65534 (nobody) and returns
// the status it got.
func asOtherUser(t *testing.T, u string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ncmcp-other-user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "get")
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{otherUserRole + "=" + u}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the other user's request: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestOtherUsersAreRefused: a process of another user who knows the
// listener's address, the state and even the start link cannot use them:
// the start page and the callback answer it 403, and the login goes on for
// its own user.
func TestOtherUsersAreRefused(t *testing.T) {
	if os.Getuid() != 0 {
		need(t, "root", "running a process as another user needs root")
	}
	s, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	start := s.Start("https://idp.example/authorize")
	base := "http://127.0.0.1:" + itoa(s.Port())
	done := make(chan string, 1)
	go func() {
		_, _ = s.Wait(context.Background(), "the-state", func(_ context.Context, code string) Result {
			done <- code
			return Result{OK: true}
		})
	}()
	waitListening(t, base)
	if got := asOtherUser(t, start); got != "403" {
		t.Fatalf("another user's start: %s, want 403", got)
	}
	if got := asOtherUser(t, base+"/callback?code=bobs-code&state=the-state"); got != "403" {
		t.Fatalf("another user's callback: %s, want 403", got)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("the user's own start after the refusals: %d", resp.StatusCode)
	}
	if code, _ := get(t, base+"/callback?code=alices-code&state=the-state"); code != http.StatusOK {
		t.Fatalf("the user's own callback: %d", code)
	}
	select {
	case code := <-done:
		if code != "alices-code" {
			t.Fatalf("completed with %q", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the login did not complete")
	}
}
