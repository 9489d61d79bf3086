package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keyringSession is a private D-Bus session bus with an unlocked
// gnome-keyring (Secret Service), owned by one test. It never touches the
// user's own session.
type keyringSession struct {
	t       testing.TB
	Address string
	env     []string
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// startBus starts a private session bus without a Secret Service.
func startBus(t testing.TB) *keyringSession {
	t.Helper()
	if !isLinux() {
		need(t, "keyring", "the Secret Service tests run on Linux only")
	}
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		need(t, "keyring", "dbus-daemon is not installed")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	// A bus configuration without service activation: nothing answers for
	// org.freedesktop.secrets unless a test starts it.
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	daemon := exec.CommandContext(ctx, "dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	out, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		cancel()
		need(t, "keyring", "dbus-daemon does not start: "+err.Error())
	}
	t.Cleanup(func() { cancel(); _ = daemon.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	k := &keyringSession{t: t, Address: strings.TrimSpace(line)}
	k.env = []string{
		"DBUS_SESSION_BUS_ADDRESS=" + k.Address,
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_RUNTIME_DIR=" + dir,
		"HOME=" + dir,
		"PATH=" + os.Getenv("PATH"),
	}
	return k
}

// startKeyring starts a private bus with an unlocked gnome-keyring.
func startKeyring(t testing.TB) *keyringSession {
	t.Helper()
	if _, err := exec.LookPath("gnome-keyring-daemon"); err != nil {
		need(t, "keyring", "gnome-keyring-daemon is not installed (apt-get install gnome-keyring libsecret-tools)")
	}
	if _, err := exec.LookPath("secret-tool"); err != nil {
		need(t, "keyring", "secret-tool is not installed (apt-get install libsecret-tools)")
	}
	k := startBus(t)
	cmd := exec.Command("gnome-keyring-daemon", "--unlock", "--components=secrets")
	cmd.Env = k.env
	cmd.Stdin = strings.NewReader("test-keyring-password")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gnome-keyring-daemon: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !k.nameHasOwner("org.freedesktop.secrets") {
		if time.Now().After(deadline) {
			t.Fatal("gnome-keyring did not take org.freedesktop.secrets within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return k
}

func (k *keyringSession) dbusSend(args ...string) (string, error) {
	cmd := exec.Command("dbus-send", append([]string{"--session", "--print-reply"}, args...)...)
	cmd.Env = k.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (k *keyringSession) nameHasOwner(name string) bool {
	out, err := k.dbusSend("--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:"+name)
	return err == nil && strings.Contains(out, "boolean true")
}

// lock locks the login collection, as a screen locker would.
func (k *keyringSession) lock() {
	k.t.Helper()
	if out, err := k.dbusSend("--dest=org.freedesktop.secrets", "/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock",
		"array:objpath:/org/freedesktop/secrets/collection/login"); err != nil {
		k.t.Fatalf("lock the keyring: %v\n%s", err, out)
	}
}

// items returns the account names of the ncmcp items in the keyring.
func (k *keyringSession) items() []string {
	k.t.Helper()
	cmd := exec.Command("secret-tool", "search", "--all", "service", "ncmcp")
	cmd.Env = k.env
	out, _ := cmd.CombinedOutput()
	var users []string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "attribute.username = "); ok {
			users = append(users, v)
		}
	}
	return users
}

// secret reads one ncmcp item with secret-tool.
func (k *keyringSession) secret(user string) string {
	k.t.Helper()
	cmd := exec.Command("secret-tool", "lookup", "service", "ncmcp", "username", user)
	cmd.Env = k.env
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// use points an env at this session.
func (k *keyringSession) use(e *env) *env {
	for _, kv := range k.env {
		name, v, _ := strings.Cut(kv, "=")
		if name == "HOME" || name == "PATH" {
			continue
		}
		e.set(name, v)
	}
	return e
}
