package credential

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/store"
)

// workloadJWT is a well-formed JWT for subject sub (its signature is not
// checked here: the authorization server checks it).
func workloadJWT(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(`{"iss":"https://k8s.example","sub":"`+sub+`","aud":"https://as.example"}`)) + ".c2ln"
}

func writeJWT(t *testing.T, path, content string) {
	t.Helper()
	// 0644, as Kubernetes mounts service account tokens.
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWorkloadRenewalRereadsTheFile: each renewal reads the JWT from the
// account's file again (the platform rewrote it) and exchanges that one,
// without a client when the login had none.
func TestWorkloadRenewalRereadsTheFile(t *testing.T) {
	e := newEndpoint(t, rotating)
	file := filepath.Join(t.TempDir(), "token")
	writeJWT(t, file, workloadJWT("first")+"\n")
	acct := store.Account{Subject: "system:serviceaccount:ci:runner", Grant: store.GrantWorkloadIdentity, AssertionFile: file}
	s := setup(t, e, acct, store.Tokens{AccessToken: "at0", Expiry: time.Now().Add(-time.Minute)})
	s.ClientSecret = "ignored without a client"
	tok, err := s.Token(context.Background(), time.Minute)
	if err != nil || tok.AccessToken != "at1" {
		t.Fatalf("%+v, %v", tok, err)
	}
	writeJWT(t, file, workloadJWT("second"))
	if tok, err = s.Refresh(context.Background(), time.Minute, "at1"); err != nil || tok.AccessToken != "at2" {
		t.Fatalf("%+v, %v", tok, err)
	}
	for i, want := range []string{workloadJWT("first"), workloadJWT("second")} {
		f := e.forms[i]
		if f["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer" || f["assertion"] != want || f["resource"] != server+"/mcp" {
			t.Errorf("request %d: %v", i+1, f)
		}
		if _, ok := f["client_id"]; ok || f["basic"] != "" {
			t.Errorf("request %d authenticates a client: %v", i+1, f)
		}
		if _, ok := f["refresh_token"]; ok {
			t.Errorf("request %d uses the refresh token", i+1)
		}
	}
}

// TestWorkloadRenewalFailures: a refused JWT is one request, reported with
// its file and the authorization server's error; a file that is gone or
// holds no JWT sends nothing; a JWT that came on stdin cannot be read
// again.
func TestWorkloadRenewalFailures(t *testing.T) {
	refuse := func(int, map[string]string) (int, string) {
		return 400, `{"error":"invalid_grant","error_description":"the JWT expired"}`
	}
	dir := t.TempDir()
	expired := store.Tokens{AccessToken: "at0", RefreshToken: "rt0", Expiry: time.Now().Add(-time.Minute)}

	t.Run("refused", func(t *testing.T) {
		e := newEndpoint(t, refuse)
		file := filepath.Join(dir, "refused")
		writeJWT(t, file, workloadJWT("w"))
		s := setup(t, e, store.Account{Subject: "w", Grant: store.GrantWorkloadIdentity, AssertionFile: file}, expired)
		_, err := s.Token(context.Background(), time.Minute)
		var lr *LoginRequiredError
		if !errors.As(err, &lr) || lr.Reason != AssertionRefused || lr.File != file {
			t.Fatalf("got %v", err)
		}
		if msg := err.Error(); !strings.Contains(msg, file) || !strings.Contains(msg, "invalid_grant") || strings.Contains(msg, workloadJWT("w")) {
			t.Errorf("message %q", msg)
		}
		if e.requests() != 1 {
			t.Errorf("%d requests, want 1: no retry, no refresh token instead", e.requests())
		}
	})
	for name, content := range map[string]string{"missing": "", "empty": "\n", "not a JWT": "password123"} {
		t.Run(name, func(t *testing.T) {
			e := newEndpoint(t, rotating)
			file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			if name != "missing" {
				writeJWT(t, file, content)
			}
			s := setup(t, e, store.Account{Subject: "w", Grant: store.GrantWorkloadIdentity, AssertionFile: file}, expired)
			_, err := s.Token(context.Background(), time.Minute)
			var fe *AssertionFileError
			if !errors.As(err, &fe) || fe.Path != file || !strings.Contains(err.Error(), file) {
				t.Fatalf("got %v", err)
			}
			if c := strings.TrimSpace(content); c != "" && strings.Contains(err.Error(), c) {
				t.Errorf("the error quotes the file: %v", err)
			}
			if e.requests() != 0 {
				t.Errorf("%d requests", e.requests())
			}
		})
	}
	t.Run("stdin", func(t *testing.T) {
		e := newEndpoint(t, rotating)
		s := setup(t, e, store.Account{Subject: "w", Grant: store.GrantWorkloadIdentity}, expired)
		_, err := s.Token(context.Background(), time.Minute)
		var lr *LoginRequiredError
		if !errors.As(err, &lr) || lr.Reason != AssertionFromStdin || !strings.Contains(err.Error(), "stdin") {
			t.Fatalf("got %v", err)
		}
		if e.requests() != 0 {
			t.Errorf("%d requests", e.requests())
		}
	})
}
