package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// elicitTestForm asks for a field of each type: text, a choice, a whole
// number with a default, a number and a yes/no.
const elicitTestForm = `{"type":"object","properties":{
	"title":{"type":"string","title":"Title"},
	"priority":{"type":"string","enum":["low","normal","high"]},
	"count":{"type":"integer","minimum":1,"default":2},
	"ratio":{"type":"number"},
	"urgent":{"type":"boolean"}
},"required":["title","urgent"]}`

// elicitServer is an MCP server of the official Go SDK, without OAuth (so
// that 'ncmcp tools call --server' calls it with no login), whose tool
// "form" elicits elicitTestForm and "page" a page on the server's own
// origin. Each answer goes to the channel.
func elicitServer(t *testing.T) (*httptest.Server, chan *mcp.ElicitResult) {
	got := make(chan *mcp.ElicitResult, 2)
	server := mcp.NewServer(&mcp.Implementation{Name: "elicit", Version: "0"}, nil)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// A server waits for the answer; this one until the test ends.
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // before the server's Close, which waits for its tools
	answer := func(ctx context.Context, req *mcp.CallToolRequest, p *mcp.ElicitParams) (*mcp.CallToolResult, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		res, err := req.Session.Elicit(ctx, p)
		if err != nil {
			return nil, err
		}
		got <- res
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "answered " + res.Action}}}, nil
	}
	server.AddTool(&mcp.Tool{Name: "form", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return answer(ctx, req, &mcp.ElicitParams{Mode: "form", Message: "Describe the note", RequestedSchema: json.RawMessage(elicitTestForm)})
	})
	visited := make(chan struct{}, 1)
	server.AddTool(&mcp.Tool{Name: "page", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := answer(ctx, req, &mcp.ElicitParams{Mode: "url", Message: "Sign in", URL: srv.URL + "/signin", ElicitationID: "e1"})
		if err != nil {
			return nil, err
		}
		// As a server does, it waits for the page to be done with (here:
		// visited), which also keeps ncmcp, and so its browser, running.
		select {
		case <-visited:
			res.Content = append(res.Content, &mcp.TextContent{Text: "page visited"})
		case <-time.After(30 * time.Second):
		}
		return res, nil
	})
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	mux.HandleFunc("/signin", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "signed in")
		select {
		case visited <- struct{}{}:
		default:
		}
	})
	return srv, got
}

// received returns the server's answer, waiting for it up to a minute.
func received(t *testing.T, got chan *mcp.ElicitResult) *mcp.ElicitResult {
	t.Helper()
	select {
	case res := <-got:
		return res
	case <-time.After(time.Minute):
		t.Fatal("the server got no answer within a minute")
	}
	return nil
}

// dialogue is ncmcp running on a pseudo-terminal.
type dialogue struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	done chan struct{}

	mu   sync.Mutex
	out  bytes.Buffer
	seen int
}

// startOnTerminal runs ncmcp on a pseudo-terminal (stdin, stdout and
// stderr).
func startOnTerminal(t *testing.T, e *env, args ...string) *dialogue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, ncmcpBin, args...)
	cmd.Env = e.list()
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	d := &dialogue{t: t, cmd: cmd, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			d.mu.Lock()
			d.out.Write(buf[:n])
			d.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return d
}

// answer waits for the question after the last one answered, then types
// the answer (if any: "" only waits).
func (d *dialogue) answer(question, text string) {
	d.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		// Once ncmcp has ended, all of its output is in.
		ended := false
		select {
		case <-d.done:
			ended = true
		default:
		}
		d.mu.Lock()
		i := strings.Index(d.out.String()[d.seen:], question)
		if i >= 0 {
			d.seen += i + len(question)
		}
		out := d.out.String()
		d.mu.Unlock()
		if i >= 0 {
			break
		}
		if ended {
			d.t.Fatalf("ncmcp ended without the question %q:\n%s", question, out)
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no question %q within a minute:\n%s", question, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if text == "" {
		return
	}
	if _, err := io.WriteString(d.tty, text); err != nil {
		d.t.Fatal(err)
	}
}

// wait returns all output (line ends as written) and the exit code.
func (d *dialogue) wait() (string, int) {
	d.t.Helper()
	err := d.cmd.Wait()
	<-d.done
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := strings.ReplaceAll(d.out.String(), "\r\n", "\n")
	d.t.Logf("ncmcp %s (on a terminal) -> exit %d\n%s", strings.Join(d.cmd.Args[1:], " "), code, s)
	return s, code
}

// TestToolsCallFormOnTerminal: 'ncmcp tools call' on a terminal answers a
// tool's form elicitation with what the user types, field by field (a
// choice by its number, Enter for a default, a wrong answer asked again),
// and the server receives those values.
func TestToolsCallFormOnTerminal(t *testing.T) {
	t.Parallel()
	srv, got := elicitServer(t)
	e := newEnv(t)
	d := startOnTerminal(t, e, "tools", "call", "form", "--server", srv.URL)
	d.answer("[a]ccept and fill in 5 fields, [d]ecline or [c]ancel? [a] ", "a\n")
	d.answer("Title (text, required): ", "Groceries for Sunday\n")
	d.answer("priority (1-3, Enter: none): ", "3\n")
	d.answer("count (whole number, at least 1, Enter: 2): ", "\n")
	d.answer("ratio (number, Enter: none): ", "0.75\n")
	d.answer("urgent (yes/no, required): ", "perhaps\n")
	d.answer("answer yes or no; try again", "")
	d.answer("urgent (yes/no, required): ", "yes\n")
	out, code := d.wait()
	if code != 0 || !strings.Contains(out, "answered accept") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	res := received(t, got)
	want := map[string]any{"title": "Groceries for Sunday", "priority": "high", "count": 2.0, "ratio": 0.75, "urgent": true}
	if res.Action != "accept" || !reflect.DeepEqual(res.Content, want) {
		t.Errorf("the server received %s %v, want accept %v", res.Action, res.Content, want)
	}
	if !strings.Contains(out, "The tool form asks for input:\n  Describe the note\n") || !strings.Contains(out, "    1) low\n    2) normal\n    3) high\n") {
		t.Errorf("the message or the choices are not shown:\n%s", out)
	}
}

// TestToolsCallPageOnTerminal: a page a tool asks to open is shown with
// its host and opened in the browser after a yes.
func TestToolsCallPageOnTerminal(t *testing.T) {
	t.Parallel()
	srv, got := elicitServer(t)
	e := newEnv(t)
	log := filepath.Join(t.TempDir(), "browser.log")
	e.set("NCMCP_E2E_BROWSER_LOG", log)
	d := startOnTerminal(t, e, "tools", "call", "page", "--server", srv.URL)
	d.answer("Open URL in your browser? [Y/n] ", "y\n")
	out, code := d.wait()
	if res := received(t, got); code != 0 || res.Action != "accept" || !strings.Contains(out, "page visited") {
		t.Fatalf("exit %d, answered %s, the page not visited:\n%s", code, res.Action, out)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if !strings.Contains(out, "  "+srv.URL+"/signin\n  (on "+host+", the MCP server's own origin)\n") {
		t.Errorf("the page and its host are not shown:\n%s", out)
	}
	if b := browserLog(t, log); !strings.Contains(b, "open "+srv.URL+"/signin") {
		t.Errorf("browser log %q", b)
	}
}
