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
		"--strict-scope-claim", "--multiple-refresh-tokens", "--elicitation-url-mode", "--login-flow-tools", "--nextcloud-user", "kilgore",
		"--auto-approve",
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
		ProvisionURL: "https://evil.example/x", StrictScopeClaim: true, MultipleRefreshTokens: true, ElicitationURLMode: true,
		LoginFlowTools: true, NextcloudUser: "kilgore", AutoApprove: true}
	if o.Generation != want.Generation || o.CodeTTL != want.CodeTTL || o.RegisterRateLimit != want.RegisterRateLimit ||
		o.NoOfflineAccess != want.NoOfflineAccess || o.NoRegistration != want.NoRegistration || o.NoRevocation != want.NoRevocation ||
		o.RegistrationFault != want.RegistrationFault || o.RegisteredSecretTTL != want.RegisteredSecretTTL || o.ProvisionURL != want.ProvisionURL ||
		o.StrictScopeClaim != want.StrictScopeClaim || o.MultipleRefreshTokens != want.MultipleRefreshTokens ||
		o.ElicitationURLMode != want.ElicitationURLMode || o.LoginFlowTools != want.LoginFlowTools || o.NextcloudUser != want.NextcloudUser ||
		o.AutoApprove != want.AutoApprove {
		t.Errorf("options = %+v", o)
	}
	for _, want := range []string{"generation 2", srv.URL() + "/api/v1/status", "Login Flow v2", "STRICT SCOPE CLAIM", "kilgore / kilgore"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not name %q:\n%s", want, stderr.String())
		}
	}
}

func TestStartRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--generation", "3"},
		{"--registration-fault", "sometimes"},
		{"--addr", "0.0.0.0:0"},
		{"--nextcloud-user", "nobody"},
	} {
		var stdout, stderr bytes.Buffer
		args = append([]string{"--addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0", "--quiet"}, args...)
		if srv, err := start(args, &stdout, &stderr); err == nil {
			srv.Close()
			t.Errorf("start(%v) succeeded", args)
		}
	}
}

// TestDefaults: generation 2, as every current server; --addr with port 0
// alone gives every listener a free port, Nextcloud on an origin of its
// own; the same-origin layout on request.
func TestDefaults(t *testing.T) {
	var stdout, stderr bytes.Buffer
	srv, err := start([]string{"--addr", "127.0.0.1:0", "--quiet"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, stderr.String())
	}
	defer srv.Close()
	if g := srv.Options().Generation; g != 2 {
		t.Errorf("generation %d by default, want 2", g)
	}
	urls := []string{srv.URL(), srv.IssuerURL(), srv.NextcloudURL()}
	for i, u := range urls {
		if strings.HasSuffix(u, ":8765") || strings.HasSuffix(u, ":8766") || strings.HasSuffix(u, ":8767") {
			t.Errorf("listener %d took a fixed port: %s", i, u)
		}
		for _, v := range urls[:i] {
			if u == v {
				t.Errorf("two listeners at %s", u)
			}
		}
	}
	if !strings.Contains(stderr.String(), srv.NextcloudURL()+" (its own origin)") {
		t.Errorf("stderr does not name Nextcloud's origin:\n%s", stderr.String())
	}
	same, err := start([]string{"--addr", "127.0.0.1:0", "--quiet", "--nextcloud-same-origin", "--nextcloud-login-form"}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	if o := same.Options(); same.NextcloudURL() != same.URL() || !o.NextcloudLoginForm {
		t.Errorf("same origin: %s, server %s, options %+v", same.NextcloudURL(), same.URL(), o)
	}
}

func TestNextAddr(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:8765": "127.0.0.1:8767", "127.0.0.1:0": "127.0.0.1:0", "localhost:9000": "localhost:9002"} {
		if got := nextAddr(in, 2); got != want {
			t.Errorf("nextAddr(%q, 2) = %q, want %q", in, got, want)
		}
	}
}
