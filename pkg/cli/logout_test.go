package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/devserver/devlogin"
	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/revoke"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/spf13/cobra"
)

func TestLogoutServerSideFlag(t *testing.T) {
	var lo *LogoutOptions
	code, _, _ := parse(t, nil, func(g *globalOptions) *cobra.Command {
		return newLogoutCmd(g, func(_ context.Context, o *LogoutOptions) error { lo = o; return nil })
	}, "logout", "--server-side", "--revoke")
	if code != 0 || lo == nil || !lo.ServerSide || !lo.Revoke {
		t.Fatalf("logout --server-side --revoke: exit %d, opts %+v", code, lo)
	}
}

// loggedInDir logs in at a dev server of the generation and returns the
// server and the config directory of the file store that holds the login.
func loggedInDir(t *testing.T, o devserver.Options) (*devserver.Server, string) {
	t.Helper()
	dev, disc := devlogin.Start(t, o)
	st := devlogin.FileStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := devlogin.Login(ctx, st, disc, nil); err != nil {
		t.Fatal(err)
	}
	return dev, st.Dir
}

// runIn runs ncmcp with the file store in dir and nothing on stdin, and
// returns the exit code, stdout and stderr.
func runIn(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"NCMCP_CONFIG_DIR": dir, "NCMCP_STORAGE": "file"}
	code := Run(context.Background(), args, Deps{Stdout: &stdout, Stderr: &stderr, Stdin: strings.NewReader(""), Getenv: func(k string) string { return env[k] }})
	return code, stdout.String(), stderr.String()
}

// TestLogoutServerUnreachable: a plain logout does not need the server:
// it says that what the server holds is unknown, and that the tokens
// were not revoked, and exits 0. With --revoke and the IdP down nothing is
// forgotten, and it exits 1.
func TestLogoutServerUnreachable(t *testing.T) {
	dev, dir := loggedInDir(t, devserver.Options{AutoApprove: true})
	if err := dev.StopIdP(); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runIn(t, dir, "logout", "--revoke")
	t.Logf("logout --revoke -> exit %d\n%s", code, stderr)
	if code != ExitFailure || !strings.Contains(stderr, "refresh token:            NOT revoked: ") ||
		!strings.Contains(stderr, "stored account:           kept, with its tokens") ||
		!strings.Contains(stderr, "ncmcp: alice was not logged out from "+dev.URL()+": revoked: nothing; NOT revoked, still valid: the refresh token (still stored), the access token (still stored)") {
		t.Fatalf("logout --revoke with the IdP down: exit %d\n%s", code, stderr)
	}
	_ = dev.Close()
	code, _, stderr = runIn(t, dir, "logout")
	t.Logf("logout -> exit %d\n%s", code, stderr)
	for _, want := range []string{
		"server's own credential:  unknown: the server could not be asked (",
		"); if it holds one, it stays",
		"refresh token:            not revoked (not asked: --revoke); it stays valid until it expires",
		"stored account:           removed, with its tokens, from the file storage",
		"Logged out alice from " + dev.URL() + " (revoked: nothing; NOT revoked, still valid: the refresh token (not asked), the access token (not asked)).",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("logout lacks %q:\n%s", want, stderr)
		}
	}
	if code != ExitOK {
		t.Errorf("logout: exit %d", code)
	}
}

// TestLogoutServerTextIsSafe: the server's words (its answer, its kind
// of credential) reach the terminal without their control bytes.
func TestLogoutServerTextIsSafe(t *testing.T) {
	evil := "ok\x1b]0;pwned\x07\nline\x1b[2J"
	rep := &revoke.LogoutReport{
		Server:       &store.Server{URL: "https://mcp.example.com", Generation: 2},
		Account:      &store.Account{Subject: "s", Username: "alice", Storage: "file"},
		Asked:        revoke.LogoutOptions{Revoke: true, ServerSide: true},
		Held:         revoke.ServerCredential{State: revoke.Held, Kind: evil},
		ServerSide:   revoke.Credential{Fate: revoke.Failed, Err: &revoke.StillHeldError{Answer: evil, Now: revoke.ServerCredential{State: revoke.Held, Kind: evil}}},
		RefreshToken: revoke.Credential{Fate: revoke.Untried},
		AccessToken:  revoke.Credential{Fate: revoke.Untried},
	}
	var w bytes.Buffer
	printLogout(&w, time.Now(), rep)
	err := logoutResult(&w, rep)
	var e *Error
	if !errors.As(err, &e) || e.Code != ExitFailure {
		t.Fatalf("logoutResult: %v, want exit 1", err)
	}
	report(&w, err)
	t.Logf("%s", w.String())
	if out := w.String(); strings.ContainsAny(out, "\x1b\x07") || strings.Contains(out, "\nline") {
		t.Errorf("control bytes reached the terminal:\n%q", out)
	}
	if !strings.Contains(w.String(), "hint: the server's revoke_nextcloud_access did not remove it: its admin can, and its logs say why; then run") {
		t.Errorf("a server that keeps its credential after saying it ended it gets the wrong hint:\n%s", w.String())
	}
}

// TestLogoutNamesTheServersCredential: a credential that stays is named,
// with the ways to end it; the account is logged out all the same (exit 0:
// nothing asked for stayed).
func TestLogoutNamesTheServersCredential(t *testing.T) {
	rep := &revoke.LogoutReport{
		Server:       &store.Server{URL: "https://mcp.example.com", Generation: 2},
		Account:      &store.Account{Subject: "s", Username: "alice", Storage: "keyring"},
		Held:         revoke.ServerCredential{State: revoke.Held, Kind: provision.KindLoginFlow},
		ServerSide:   revoke.Credential{Fate: revoke.NotAsked},
		RefreshToken: revoke.Credential{Fate: revoke.NotAsked},
		AccessToken:  revoke.Credential{Fate: revoke.NotAsked},
		Removed:      true,
	}
	var w bytes.Buffer
	printLogout(&w, time.Now(), rep)
	if err := logoutResult(&w, rep); err != nil {
		t.Fatalf("logoutResult: %v", err)
	}
	for _, want := range []string{
		"server's own credential:  STAYS (not asked: --server-side): the server holds an app password (Nextcloud Login Flow v2) for alice, per its status tool",
		"The server's app password (Nextcloud Login Flow v2) for alice stays valid: the server keeps using it; to end it, log in again ('ncmcp login --server https://mcp.example.com') and run 'ncmcp logout --server-side', or delete the app password in Nextcloud (Settings > Security > Devices & sessions).",
		"NOT revoked, still valid: the server's app password (Nextcloud Login Flow v2) (not asked), the refresh token (not asked), the access token (not asked)",
	} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, w.String())
		}
	}
}
