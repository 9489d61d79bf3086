package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

func TestStartFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	srv, err := start([]string{
		"--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--quiet",
		"--generation", "2", "--code-ttl", "5s", "--register-rate-limit", "4",
		"--no-offline-access", "--no-registration", "--no-revocation",
		"--registration-fault", "refuse", "--registered-secret-ttl", "1h", "--provision-url", "https://evil.example/x",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, stderr.String())
	}
	defer srv.Close()
	if got := strings.TrimSpace(stdout.String()); got != srv.URL() {
		t.Errorf("stdout = %q, want the server URL %q", got, srv.URL())
	}
	o := srv.Options()
	want := devserver.Options{Generation: 2, CodeTTL: 5 * time.Second, RegisterRateLimit: 4, NoOfflineAccess: true,
		NoRegistration: true, NoRevocation: true, RegistrationFault: "refuse", RegisteredSecretTTL: time.Hour,
		ProvisionURL: "https://evil.example/x"}
	if o.Generation != want.Generation || o.CodeTTL != want.CodeTTL || o.RegisterRateLimit != want.RegisterRateLimit ||
		o.NoOfflineAccess != want.NoOfflineAccess || o.NoRegistration != want.NoRegistration || o.NoRevocation != want.NoRevocation ||
		o.RegistrationFault != want.RegistrationFault || o.RegisteredSecretTTL != want.RegisteredSecretTTL || o.ProvisionURL != want.ProvisionURL {
		t.Errorf("options = %+v", o)
	}
	if !strings.Contains(stderr.String(), "generation 2") {
		t.Errorf("stderr does not name generation 2:\n%s", stderr.String())
	}
}

func TestStartRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--generation", "3"},
		{"--registration-fault", "sometimes"},
		{"--addr", "0.0.0.0:0"},
	} {
		var stdout, stderr bytes.Buffer
		args = append([]string{"--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--quiet"}, args...)
		if srv, err := start(args, &stdout, &stderr); err == nil {
			srv.Close()
			t.Errorf("start(%v) succeeded", args)
		}
	}
}
