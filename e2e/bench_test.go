package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// Benchmarks run whole processes, as scripts do. Run them with
//
//	go test -run '^$' -bench . -benchtime 1x ./e2e/
//
// (scripts/bench.sh does that). Each reports medians in milliseconds,
// measured in the same run as its floor. See docs/benchmarks.md.

const benchRounds = 40

// buildStripped builds a package as a release would.
func buildStripped(b *testing.B, pkg, name string) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// timeRun runs argv in env and returns how long the whole process took.
func timeRun(b *testing.B, env []string, argv ...string) time.Duration {
	b.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return d
}

func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return float64(m) / float64(time.Millisecond)
}

// BenchmarkTokenCached: 'ncmcp token' on a valid cached token, with the real
// keyring and with file storage, against the floors (a bare Go program doing
// one go-keyring Get, and one reading a 0600 file), A/B alternated. The dev
// server is stopped before measuring: a token served without any server up
// made no network request.
func BenchmarkTokenCached(b *testing.B) {
	k := startKeyring(b)
	dev, err := devserver.Start(devserver.Options{AutoApprove: true})
	if err != nil {
		b.Fatal(err)
	}
	ncmcp := buildStripped(b, "github.com/ncmcp/ncmcp/cmd/ncmcp", "ncmcp")
	floorKeyring := buildStripped(b, "./testdata/floor/keyring", "floor-keyring")
	floorFile := buildStripped(b, "./testdata/floor/file", "floor-file")

	ek := k.use(newEnv(b)).set("NCMCP_STORAGE", "keyring")
	ef := k.use(newEnv(b)).set("NCMCP_STORAGE", "file")
	ek.mustRun(loginArgs(dev)...)
	ef.mustRun(loginArgs(dev)...)
	_ = dev.Close() // from here on, any network request would fail

	item := store.TokenKey(dev.URL(), devserver.DefaultUser.Subject)
	var tk, fk, tf, ff []time.Duration
	for range b.N {
		for range benchRounds {
			tk = append(tk, timeRun(b, ek.list(), ncmcp, "token"))
			fk = append(fk, timeRun(b, ek.list(), floorKeyring, item))
			tf = append(tf, timeRun(b, ef.list(), ncmcp, "token"))
			ff = append(ff, timeRun(b, ef.list(), floorFile, store.SecretsPath(ef.configDir())))
		}
	}
	b.ReportMetric(median(tk), "keyring-token-ms")
	b.ReportMetric(median(fk), "keyring-floor-ms")
	b.ReportMetric(median(tk)/median(fk), "keyring-x-floor")
	b.ReportMetric(median(tf), "file-token-ms")
	b.ReportMetric(median(ff), "file-floor-ms")
	b.ReportMetric(median(tf)/median(ff), "file-x-floor")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRefreshStorm: 32 concurrent 'ncmcp token' on an expired access
// token in the real keyring: exactly one refresh at the OP, 32 valid tokens.
func BenchmarkRefreshStorm(b *testing.B) {
	const n = 32
	k := startKeyring(b)
	ncmcp := buildStripped(b, "github.com/ncmcp/ncmcp/cmd/ncmcp", "ncmcp")
	var walls []time.Duration
	for range b.N {
		dev, err := devserver.Start(devserver.Options{AutoApprove: true})
		if err != nil {
			b.Fatal(err)
		}
		e := k.use(newEnv(b)).set("NCMCP_STORAGE", "keyring")
		e.mustRun(loginArgs(dev)...)
		expireStoredToken(b, e, k, dev.URL())
		outs := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(ncmcp, "token")
				cmd.Env = e.list()
				out, err := cmd.Output()
				outs[i], errs[i] = strings.TrimSpace(string(out)), err
			}()
		}
		wg.Wait()
		walls = append(walls, time.Since(start))
		valid := 0
		for i := range n {
			if errs[i] == nil && outs[i] != "" && mcpAccepts(b, dev, outs[i]) {
				valid++
			}
		}
		refreshes := dev.TokenRequests("refresh_token")
		_ = dev.Close()
		if refreshes != 1 || valid != n {
			b.Fatalf("%d refreshes at the OP (want 1), %d/%d valid tokens", refreshes, valid, n)
		}
		b.ReportMetric(float64(refreshes), "refreshes")
		b.ReportMetric(float64(valid), "valid-tokens")
	}
	b.ReportMetric(median(walls), "wall-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkHelp: 'ncmcp --help' start-up against a Go hello-world, and the
// stripped binary's size.
func BenchmarkHelp(b *testing.B) {
	ncmcp := buildStripped(b, "github.com/ncmcp/ncmcp/cmd/ncmcp", "ncmcp")
	hello := buildStripped(b, "./testdata/floor/hello", "hello")
	env := newEnv(b).list()
	var h, w []time.Duration
	for range b.N {
		for range benchRounds {
			h = append(h, timeRun(b, env, ncmcp, "--help"))
			w = append(w, timeRun(b, env, hello))
		}
	}
	fi, err := os.Stat(ncmcp)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(median(h), "help-ms")
	b.ReportMetric(median(w), "hello-ms")
	b.ReportMetric(float64(fi.Size())/1e6, "binary-MB")
	b.ReportMetric(0, "ns/op")
}
