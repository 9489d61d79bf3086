package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/devserver"
)

// Messages of the benchmark's host: what an MCP client sends.
const (
	benchInitialize  = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`
	benchInitialized = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	benchCallFormat  = `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"nc_auth_check_status","arguments":{}}}`
)

// stdioHost drives a stdio MCP server process as an MCP client does, with
// raw lines: the cheapest host there is, so that what is measured is the
// server process.
type stdioHost struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// spawnHost starts argv and returns it with the time from the start to
// the initialize result.
func spawnHost(b *testing.B, env []string, argv ...string) (*stdioHost, time.Duration) {
	b.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	h := &stdioHost{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if _, err := io.WriteString(in, benchInitialize+"\n"); err != nil {
		b.Fatal(err)
	}
	h.await(b, 0, &stderr)
	took := time.Since(start)
	if _, err := io.WriteString(in, benchInitialized+"\n"); err != nil {
		b.Fatal(err)
	}
	return h, took
}

// await reads lines until the response with the id.
func (h *stdioHost) await(b *testing.B, id int, stderr *bytes.Buffer) {
	b.Helper()
	want := `"id":` + strconv.Itoa(id) + `,`
	want2 := `"id":` + strconv.Itoa(id) + `}`
	for {
		line, err := h.out.ReadString('\n')
		if err != nil {
			msg := ""
			if stderr != nil {
				msg = stderr.String()
			}
			b.Fatalf("%s: no answer %d: %v\n%s", h.cmd.Path, id, err, msg)
		}
		if strings.Contains(line, want) || strings.Contains(line, want2) {
			if strings.Contains(line, `"error"`) {
				b.Fatalf("%s: error answer: %s", h.cmd.Path, line)
			}
			return
		}
	}
}

// call sends one tools/call and returns how long its answer took.
func (h *stdioHost) call(b *testing.B, id int) time.Duration {
	b.Helper()
	start := time.Now()
	if _, err := fmt.Fprintf(h.in, benchCallFormat+"\n", id); err != nil {
		b.Fatal(err)
	}
	h.await(b, id, nil)
	return time.Since(start)
}

// peakRSS is the process's peak resident set (VmHWM), in MB.
func (h *stdioHost) peakRSS(b *testing.B) float64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

func (h *stdioHost) close() {
	h.in.Close()
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = h.cmd.Process.Kill()
		<-done
	}
}

// directClient is the floor: a Go HTTP client that talks Streamable HTTP
// to the server itself, with the token.
type directClient struct {
	url, token, session string
	hc                  *http.Client
}

func (d *directClient) post(b *testing.B, body string, id int) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if d.session != "" {
		req.Header.Set("Mcp-Session-Id", d.session)
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b.Fatalf("direct: HTTP %d", resp.StatusCode)
	}
	if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
		d.session = s
	}
	if id < 0 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return
	}
	want := `"id":` + strconv.Itoa(id)
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, "data:") && strings.Contains(line, want) {
			return
		}
		if err != nil {
			b.Fatalf("direct: no answer %d", id)
		}
	}
}

func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Millisecond)
}

// BenchmarkProxy: 'ncmcp proxy' and mcp-remote (npm, the stdio bridge
// users pick today, with the same token in a header file so that it does
// no OAuth of its own) side by side against the dev server, and a direct
// Go HTTP client as the floor: time from spawn to the initialize result,
// tools/call latency (p50, p99) through the process, and its peak RSS.
func BenchmarkProxy(b *testing.B) {
	node, modules := nodeClients(b)
	remote := filepath.Join(modules, "mcp-remote", "dist", "proxy.js")
	const spawns, calls = 20, 300
	dev := startDev(b, devserver.Options{AutoApprove: true, Generation: 2})
	ncmcp := buildStripped(b, "github.com/ncmcp/ncmcp/cmd/ncmcp", "ncmcp")
	e := newEnv(b).set("NCMCP_STORAGE", "file")
	e.mustRun(loginArgs(dev)...)
	token := tokensInFile(b, e, dev.URL(), devserver.DefaultUser.Subject).AccessToken
	headers := filepath.Join(b.TempDir(), "headers")
	if err := os.WriteFile(headers, []byte("Authorization: Bearer "+token+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	endpoint := dev.URL() + "/mcp"
	proxyArgv := []string{ncmcp, "proxy", "--server", dev.URL(), "--no-login", "--log-file", filepath.Join(b.TempDir(), "proxy.log")}
	remoteArgv := []string{node, remote, endpoint, "--header-file", headers, "--transport", "http-only", "--silent"}

	var spawnProxy, spawnRemote, spawnDirect, callProxy, callRemote, callDirect []time.Duration
	var rssProxy, rssRemote float64
	for range b.N {
		for range spawns {
			h, d := spawnHost(b, e.list(), proxyArgv...)
			spawnProxy = append(spawnProxy, d)
			h.close()
			h, d = spawnHost(b, e.list(), remoteArgv...)
			spawnRemote = append(spawnRemote, d)
			h.close()
			dc := &directClient{url: endpoint, token: token, hc: &http.Client{}}
			start := time.Now()
			dc.post(b, benchInitialize, 0)
			spawnDirect = append(spawnDirect, time.Since(start))
		}
		hp, _ := spawnHost(b, e.list(), proxyArgv...)
		hr, _ := spawnHost(b, e.list(), remoteArgv...)
		dc := &directClient{url: endpoint, token: token, hc: &http.Client{}}
		dc.post(b, benchInitialize, 0)
		dc.post(b, benchInitialized, -1)
		for i := 1; i <= calls; i++ {
			callProxy = append(callProxy, hp.call(b, i))
			callRemote = append(callRemote, hr.call(b, i))
			start := time.Now()
			dc.post(b, fmt.Sprintf(benchCallFormat, i), i)
			callDirect = append(callDirect, time.Since(start))
		}
		rssProxy, rssRemote = hp.peakRSS(b), hr.peakRSS(b)
		hp.close()
		hr.close()
	}
	b.ReportMetric(median(spawnProxy), "proxy-init-ms")
	b.ReportMetric(median(spawnRemote), "mcp-remote-init-ms")
	b.ReportMetric(median(spawnDirect), "direct-init-ms")
	b.ReportMetric(median(spawnRemote)/median(spawnProxy), "init-x-faster")
	b.ReportMetric(percentile(callProxy, 0.5), "proxy-call-p50-ms")
	b.ReportMetric(percentile(callProxy, 0.99), "proxy-call-p99-ms")
	b.ReportMetric(percentile(callRemote, 0.5), "mcp-remote-call-p50-ms")
	b.ReportMetric(percentile(callRemote, 0.99), "mcp-remote-call-p99-ms")
	b.ReportMetric(percentile(callDirect, 0.5), "direct-call-p50-ms")
	b.ReportMetric(percentile(callDirect, 0.99), "direct-call-p99-ms")
	b.ReportMetric(percentile(callProxy, 0.5)-percentile(callDirect, 0.5), "proxy-overhead-p50-ms")
	b.ReportMetric(rssProxy, "proxy-rss-MB")
	b.ReportMetric(rssRemote, "mcp-remote-rss-MB")
	b.ReportMetric(0, "ns/op")
}
