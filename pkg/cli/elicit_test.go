package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// elicitForm is a form with a field of each kind, listed out of
// alphabetical order, and a message with terminal control sequences.
const elicitForm = `{"type":"object","properties":{
	"title":{"type":"string","title":"Title","description":"What the note is called"},
	"priority":{"type":"string","enum":["low","normal","high"],"default":"normal"},
	"size":{"type":"string","oneOf":[{"const":"s","title":"Small"},{"const":"l","title":"Large"}]},
	"count":{"type":"integer","minimum":1,"maximum":10},
	"ratio":{"type":"number"},
	"urgent":{"type":"boolean","default":false}
},"required":["title","count"]}`

// answered is an elicitation's answer as the server got it.
type answered struct {
	Action  string
	Content map[string]any
	// Caps are the elicitation modes the client declared.
	Caps string
}

// elicitingServer is an MCP server whose tool "form" elicits elicitForm
// and "page" a page to open; each answer goes to the channel. "caps"
// reports the modes the client declared.
func elicitingServer(t *testing.T) (string, chan answered) {
	got := make(chan answered, 4)
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
	caps := func(req *mcp.CallToolRequest) string {
		var modes []string
		if c := req.Session.InitializeParams().Capabilities; c != nil && c.Elicitation != nil {
			if c.Elicitation.Form != nil {
				modes = append(modes, "form")
			}
			if c.Elicitation.URL != nil {
				modes = append(modes, "url")
			}
		}
		return strings.Join(modes, " ")
	}
	// A server waits for the answer; this one until the test ends.
	stop := make(chan struct{})
	elicit := func(ctx context.Context, req *mcp.CallToolRequest, p *mcp.ElicitParams) (*mcp.CallToolResult, error) {
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
			got <- answered{Action: "error: " + err.Error(), Caps: caps(req)}
			return nil, err
		}
		got <- answered{Action: res.Action, Content: res.Content, Caps: caps(req)}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "answered " + res.Action}}}, nil
	}
	server.AddTool(&mcp.Tool{Name: "form", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return elicit(ctx, req, &mcp.ElicitParams{Mode: "form", Message: "Describe the note\x1b]0;pwned\x07 please\x1b[2J", RequestedSchema: json.RawMessage(elicitForm)})
	})
	server.AddTool(&mcp.Tool{Name: "page", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return elicit(ctx, req, &mcp.ElicitParams{Mode: "url", Message: "Sign in to the calendar", URL: "https://cloud.example/login?flow=1", ElicitationID: "e1"})
	})
	server.AddTool(&mcp.Tool{Name: "caps", InputSchema: map[string]any{"type": "object"}}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "elicitation: " + caps(req)}}}, nil
	})
	url := mcpServer(t, server, nil)
	t.Cleanup(func() { close(stop) }) // before the server's Close, which waits for its tools
	return url, got
}

// receive returns the answer the server got, waiting for it up to 10s.
func receive(t *testing.T, got chan answered) answered {
	t.Helper()
	select {
	case a := <-got:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("the server got no answer within 10s")
	}
	return answered{}
}

// fakeTerminal is stdin and stderr of an ncmcp that believes both are a
// terminal: the test answers each question once it is shown.
type fakeTerminal struct {
	t *testing.T
	// in is a pipe, as a terminal buffers what is typed: typing does not
	// wait for ncmcp to read.
	in *os.File
	// exited is closed when ncmcp has returned.
	exited chan struct{}

	mu   sync.Mutex
	out  bytes.Buffer
	seen int // the output up to here has been answered
}

func (f *fakeTerminal) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.Write(p)
}

func (f *fakeTerminal) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.String()
}

// answer waits for the question to be shown after the last one answered,
// then types the answer (if any: "" only waits).
func (f *fakeTerminal) answer(question, text string) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Once ncmcp has returned, all of its output is in.
		ended := false
		select {
		case <-f.exited:
			ended = true
		default:
		}
		f.mu.Lock()
		i := strings.Index(f.out.String()[f.seen:], question)
		if i >= 0 {
			f.seen += i + len(question)
		}
		f.mu.Unlock()
		if i >= 0 {
			break
		}
		if ended {
			f.t.Fatalf("ncmcp ended without the question %q:\n%s", question, f.String())
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no question %q within 10s:\n%s", question, f.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if text == "" {
		return
	}
	if _, err := io.WriteString(f.in, text); err != nil {
		f.t.Fatal(err)
	}
}

// onTerminal runs ncmcp in the background on a fake terminal; wait
// returns its exit code and stdout.
func onTerminal(t *testing.T, terminal bool, opened *[]string, args ...string) (*fakeTerminal, func() (int, string)) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	term := &fakeTerminal{t: t, in: w, exited: make(chan struct{})}
	var stdout bytes.Buffer
	deps := testDeps(t, &stdout, nil)
	deps.Stdin, deps.Stderr = r, term
	isTerm := func() bool { return terminal }
	deps.StdinIsTerminal, deps.StderrIsTerminal = isTerm, isTerm
	if opened != nil {
		deps.OpenURL = func(u string) error { *opened = append(*opened, u); return nil }
	}
	done := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel) // before the server's Close, which waits for ncmcp's requests
	go func() {
		done <- Run(ctx, args, deps)
		close(term.exited)
	}()
	return term, func() (int, string) {
		defer cancel()
		code := <-done
		w.Close()
		t.Logf("ncmcp %s -> exit %d\nterminal:\n%s", strings.Join(args, " "), code, term.String())
		return code, stdout.String()
	}
}

// TestToolsCallFormOnTerminal: on a terminal, 'tools call' asks for a
// form's fields in the server's order, with their choices and defaults,
// asks again after a wrong answer, and the server gets the values typed;
// the server's message reaches the terminal without its control
// sequences.
func TestToolsCallFormOnTerminal(t *testing.T) {
	url, got := elicitingServer(t)
	term, wait := onTerminal(t, true, nil, "tools", "call", "form", "--server", url)
	term.answer("[a]ccept and fill in 6 fields, [d]ecline or [c]ancel? [a] ", "\n")
	term.answer("Title (text, required): ", "Groceries\n")
	term.answer("priority (1-3, Enter: normal): ", "\n")
	term.answer("size (1-2, Enter: none): ", "2\n")
	term.answer("count (whole number, 1 to 10, required): ", "many\n")
	term.answer("not a number; try again", "")
	term.answer("count (whole number, 1 to 10, required): ", "4\n")
	term.answer("ratio (number, Enter: none): ", "\n")
	term.answer("urgent (yes/no, Enter: no): ", "y\n")
	code, stdout := wait()
	if code != ExitOK || stdout != "answered accept\n" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	a := receive(t, got)
	want := map[string]any{"title": "Groceries", "priority": "normal", "size": "l", "count": 4.0, "urgent": true}
	if a.Action != "accept" || !reflect.DeepEqual(a.Content, want) {
		t.Errorf("the server got %s %v, want accept %v", a.Action, a.Content, want)
	}
	out := term.String()
	for _, s := range []string{"The tool form asks for input:\n  Describe the note please\n", "  What the note is called\n", "    1) low\n    2) normal\n    3) high\n", "    2) Large (l)\n"} {
		if !strings.Contains(out, s) {
			t.Errorf("the terminal does not show %q:\n%s", s, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\x07") || strings.Contains(out, "pwned") {
		t.Errorf("the server's control sequences reached the terminal: %q", out)
	}
}

// TestToolsCallFormRefused: the user may decline or cancel a form, and
// the end of input (Ctrl-D) in the middle of it cancels it.
func TestToolsCallFormRefused(t *testing.T) {
	url, got := elicitingServer(t)
	for _, tt := range []struct{ answers []string }{
		{[]string{"d\n"}},
		{[]string{"c\n"}},
		{[]string{"\n", "Groceries\n"}},
	} {
		term, wait := onTerminal(t, true, nil, "tools", "call", "form", "--server", url)
		term.answer("[d]ecline or [c]ancel? [a] ", tt.answers[0])
		if len(tt.answers) > 1 {
			term.answer("Title (text, required): ", tt.answers[1])
			term.answer("priority (1-3, Enter: normal): ", "")
			term.in.Close()
		}
		code, stdout := wait()
		want := map[string]string{"d\n": "decline", "c\n": "cancel", "\n": "cancel"}[tt.answers[0]]
		if a := receive(t, got); code != ExitOK || a.Action != want || a.Content != nil || stdout != "answered "+want+"\n" {
			t.Errorf("answers %q: exit %d, the server got %+v, want %s", tt.answers, code, a, want)
		}
	}
}

// TestToolsCallPageOnTerminal: a page to open is shown with its host and
// opened after a yes (accept); after a no it is not opened (decline).
func TestToolsCallPageOnTerminal(t *testing.T) {
	url, got := elicitingServer(t)
	for _, answer := range []string{"y\n", "n\n"} {
		var opened []string
		term, wait := onTerminal(t, true, &opened, "tools", "call", "page", "--server", url)
		term.answer("Open URL in your browser? [Y/n] ", answer)
		code, _ := wait()
		a := receive(t, got)
		out := term.String()
		if !strings.Contains(out, "  Sign in to the calendar\n\n  https://cloud.example/login?flow=1\n  (on cloud.example, another host than the MCP server)\n") {
			t.Errorf("the page and its host are not shown:\n%s", out)
		}
		switch answer {
		case "y\n":
			if code != ExitOK || a.Action != "accept" || !reflect.DeepEqual(opened, []string{"https://cloud.example/login?flow=1"}) {
				t.Errorf("yes: exit %d, answered %+v, opened %v", code, a, opened)
			}
		case "n\n":
			if code != ExitOK || a.Action != "decline" || len(opened) != 0 {
				t.Errorf("no: exit %d, answered %+v, opened %v", code, a, opened)
			}
		}
	}
}

// TestToolsCallPageEndOfInput: the end of input (Ctrl-D) at the page's
// question cancels the elicitation and opens nothing; it is no yes.
func TestToolsCallPageEndOfInput(t *testing.T) {
	url, got := elicitingServer(t)
	var opened []string
	term, wait := onTerminal(t, true, &opened, "tools", "call", "page", "--server", url)
	term.answer("Open URL in your browser? [Y/n] ", "")
	term.in.Close()
	code, stdout := wait()
	a := receive(t, got)
	if code != ExitOK || a.Action != "cancel" || len(opened) != 0 || stdout != "answered cancel\n" {
		t.Errorf("Ctrl-D: exit %d, stdout %q, answered %+v, opened %v", code, stdout, a, opened)
	}
	if out := term.String(); !strings.Contains(out, "\nCancelled.\n") {
		t.Errorf("the terminal does not say the page was cancelled:\n%s", out)
	}
}

// TestToolsElicitationOnlyOnTerminal: 'tools call' declares form and url
// elicitation on a terminal only.
func TestToolsElicitationOnlyOnTerminal(t *testing.T) {
	url, _ := elicitingServer(t)
	for _, terminal := range []bool{true, false} {
		_, wait := onTerminal(t, terminal, nil, "tools", "call", "caps", "--server", url)
		code, stdout := wait()
		want := "elicitation: \n"
		if terminal {
			want = "elicitation: form url\n"
		}
		if code != ExitOK || stdout != want {
			t.Errorf("terminal %v: exit %d, %q, want %q", terminal, code, stdout, want)
		}
	}
}
