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
