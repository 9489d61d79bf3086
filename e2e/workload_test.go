package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/store"
)

const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// workloadIssuer signs workloads' JWTs, as a CI platform's or a
// Kubernetes cluster's OIDC issuer does.
type workloadIssuer struct {
	t   *testing.T
	key *rsa.PrivateKey
}

func newWorkloadIssuer(t *testing.T) *workloadIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &workloadIssuer{t: t, key: key}
}

// jwt signs a JWT for workload sub with audience aud, expiring after ttl.
func (w *workloadIssuer) jwt(sub, aud string, ttl time.Duration) string {
	w.t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: w.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		w.t.Fatal(err)
	}
	now := time.Now()
	s, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: "https://token.actions.githubusercontent.com", Subject: sub, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(ttl)), ID: rand.Text(),
	}).Serialize()
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// writeWorkloadJWT writes a JWT file as platforms do: readable by all
// (Kubernetes mounts service account tokens 0644), with a newline.
func writeWorkloadJWT(t *testing.T, path, v string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// workloadDev is a dev server whose OP trusts the issuer's workload JWTs,
// and an environment with file storage, where expireTokensInFile makes
// the access token look expired.
func workloadDev(t *testing.T, iss *workloadIssuer) (*devserver.Server, *env) {
	t.Helper()
	dev := startDev(t, devserver.Options{WorkloadKey: &iss.key.PublicKey})
	return dev, newEnv(t).set("NCMCP_STORAGE", "file").set("NCMCP_SERVER", dev.URL())
}

// noJWTIn checks that no output and no stored file holds the JWT.
func noJWTIn(t *testing.T, e *env, jwt string, results ...result) {
	t.Helper()
	for _, r := range results {
		if strings.Contains(r.Stdout, jwt) || strings.Contains(r.Stderr, jwt) {
			t.Errorf("the JWT is in ncmcp's output")
		}
	}
	for _, name := range []string{"config.json", "secrets.json"} {
		b, _ := os.ReadFile(filepath.Join(e.configDir(), name))
		if strings.Contains(string(b), jwt) {
			t.Errorf("the JWT is stored in %s", name)
		}
	}
}

// TestWorkloadIdentityLogin: 'ncmcp login --jwt-bearer-file' exchanges the
// workload's JWT (no browser, no client), and once the access token has
// expired 'ncmcp token' reads the file again, which the platform has
// rewritten meanwhile, and exchanges the new JWT.
func TestWorkloadIdentityLogin(t *testing.T) {
	t.Parallel()
	iss := newWorkloadIssuer(t)
	dev, e := workloadDev(t, iss)
	file := filepath.Join(t.TempDir(), "token")
	first := iss.jwt("alice", dev.IssuerURL(), 5*time.Minute)
	writeWorkloadJWT(t, file, first)
	e.set("NCMCP_BROWSER", "false")

	login := e.mustRun("login", "--jwt-bearer-file", file)
	if login.Stdout != "" || !strings.Contains(login.Stderr, "workload identity") || !strings.Contains(login.Stderr, file) {
		t.Errorf("login said:\n%s%s", login.Stdout, login.Stderr)
	}
	c := loadConfig(t, e)
	a := c.Servers[dev.URL()].FindAccount("")
	if a == nil || a.Grant != store.GrantWorkloadIdentity || a.AssertionFile != file || a.Username != "alice" || a.ClientID != "" {
		t.Fatalf("stored account %+v", a)
	}
	if n := len(c.Servers[dev.URL()].Clients); n != 0 {
		t.Errorf("%d clients stored for a login without a client", n)
	}

	second := iss.jwt("alice", dev.IssuerURL(), 5*time.Minute)
	writeWorkloadJWT(t, file, second)
	expireTokensInFile(t, e) // as it is once the access token has expired
	tok := e.mustRun("token")
	token := strings.TrimSpace(tok.Stdout)
	if !mcpAccepts(t, dev, token) {
		t.Error("the MCP server refuses the renewed token")
	}
	if got := dev.WorkloadAssertions(); len(got) != 2 || got[0] != first || got[1] != second {
		t.Errorf("the OP got %d assertions; want the first file's, then the rewritten file's", len(got))
	}
	if dev.TokenRequests("refresh_token") != 0 || dev.TokenRequests("authorization_code") != 0 {
		t.Error("another grant was used")
	}
	tools := e.mustRun("tools", "list")
	noJWTIn(t, e, first, login, tok, tools)
	noJWTIn(t, e, second)
}

// TestWorkloadIdentityFailures: a missing file and one without a JWT are
// usage errors that name the file and send nothing; a JWT the
// authorization server refuses is sent once, with no other grant after
// it, and the error names the file and the server's error but not the
// JWT; a JWT given on stdin cannot be read again, so its token is not
// renewed.
func TestWorkloadIdentityFailures(t *testing.T) {
	t.Parallel()
	iss := newWorkloadIssuer(t)

	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		dev, e := workloadDev(t, iss)
		file := filepath.Join(t.TempDir(), "nonexistent")
		e.expectCode(2, file, "login", "--jwt-bearer-file", file)
		if len(dev.WorkloadAssertions()) != 0 {
			t.Error("a token request was made")
		}
	})
	t.Run("no JWT", func(t *testing.T) {
		t.Parallel()
		dev, e := workloadDev(t, iss)
		file := filepath.Join(t.TempDir(), "token")
		writeWorkloadJWT(t, file, "ghp_notajwt")
		r := e.expectCode(2, "does not hold a JWT", "login", "--jwt-bearer-file", file)
		if !strings.Contains(r.Stderr, file) || strings.Contains(r.Stderr, "ghp_notajwt") {
			t.Errorf("stderr:\n%s", r.Stderr)
		}
		if len(dev.WorkloadAssertions()) != 0 {
			t.Error("a token request was made")
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		dev, e := workloadDev(t, iss)
		file := filepath.Join(t.TempDir(), "token")
		bad := newWorkloadIssuer(t).jwt("alice", dev.IssuerURL(), 5*time.Minute) // an issuer the OP does not trust
		writeWorkloadJWT(t, file, bad)
		r := e.expectCode(4, "invalid_grant", "login", "--jwt-bearer-file", file)
		if !strings.Contains(r.Stderr, file) {
			t.Errorf("the error does not name the file:\n%s", r.Stderr)
		}
		noJWTIn(t, e, bad, r)
		if n := dev.TokenRequests(jwtBearer); n != 1 {
			t.Errorf("%d jwt-bearer requests, want 1: no retry", n)
		}
		if dev.TokenRequests("authorization_code")+dev.TokenRequests("refresh_token")+dev.TokenRequests("client_credentials") != 0 {
			t.Error("another grant was tried after the refusal")
		}
		if a := loadConfig(t, e).Servers[dev.URL()]; a != nil && len(a.Accounts) > 0 {
			t.Error("an account was stored")
		}
	})
	t.Run("refused at renewal", func(t *testing.T) {
		t.Parallel()
		dev, e := workloadDev(t, iss)
		file := filepath.Join(t.TempDir(), "token")
		writeWorkloadJWT(t, file, iss.jwt("alice", dev.IssuerURL(), 5*time.Minute))
		e.mustRun("login", "--jwt-bearer-file", file)
		writeWorkloadJWT(t, file, iss.jwt("alice", "https://wrong.example", 5*time.Minute))
		expireTokensInFile(t, e)
		r := e.expectCode(4, "invalid_grant", "token")
		if !strings.Contains(r.Stderr, file) || r.Stdout != "" {
			t.Errorf("stdout %q, stderr:\n%s", r.Stdout, r.Stderr)
		}
		if n := dev.TokenRequests(jwtBearer); n != 2 {
			t.Errorf("%d jwt-bearer requests, want 2 (the login's, the renewal's)", n)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		t.Parallel()
		dev, e := workloadDev(t, iss)
		jwt := iss.jwt("bob", dev.IssuerURL(), 5*time.Minute)
		login := e.runIn(strings.NewReader(jwt+"\n"), "login", "--jwt-bearer-file", "-")
		if login.Code != 0 || !strings.Contains(login.Stderr, "stdin") {
			t.Fatalf("login: exit %d\n%s", login.Code, login.Stderr)
		}
		if a := loadConfig(t, e).Servers[dev.URL()].FindAccount(""); a == nil || a.AssertionFile != "" || a.Grant != store.GrantWorkloadIdentity {
			t.Fatalf("stored account %+v", a)
		}
		expireTokensInFile(t, e)
		r := e.expectCode(4, "stdin", "token")
		if !strings.Contains(r.Stderr, "log in again") {
			t.Errorf("stderr:\n%s", r.Stderr)
		}
		noJWTIn(t, e, jwt, login, r)
		if n := dev.TokenRequests(jwtBearer); n != 1 {
			t.Errorf("%d jwt-bearer requests, want only the login's", n)
		}
	})
}
