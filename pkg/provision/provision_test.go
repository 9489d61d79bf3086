package provision

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
)

func TestCheckPage(t *testing.T) {
	const server = "https://mcp.example.com"
	cases := []struct {
		url            string
		same, insecure bool
		origin         string
		ok             bool
	}{
		{"https://mcp.example.com/index.php/login/v2/flow/x", true, false, "https://mcp.example.com", true},
		{"https://MCP.example.com:443/x", true, false, "https://mcp.example.com", true},
		{"https://cloud.example.com/index.php/login/v2/flow/x", false, false, "https://cloud.example.com", true},
		{"http://localhost:8080/index.php/login/v2/flow/x", false, false, "http://localhost:8080", true},
		{"http://127.0.0.1:8080/x", false, false, "http://127.0.0.1:8080", true},
		{"http://cloud.example.com/login/v2/flow/x", false, true, "http://cloud.example.com", true},
		{"https://mcp.example.com:8443/x", false, false, "https://mcp.example.com:8443", true},
		{"https://user:pw@cloud.example.com/x", false, false, "", false},
		{"https://cloud.example.com/x\x1b[2J", false, false, "", false},
		{"https://cloud.example.com/x\u009b", false, false, "", false},
		{"javascript:alert(1)", false, false, "", false},
		{"file:///etc/passwd", false, false, "", false},
		{"//cloud.example.com/x", false, false, "", false},
		{"", false, false, "", false},
	}
	for _, c := range cases {
		p, err := CheckPage(c.url, server, "login-flow")
		var pe *PageError
		if (err == nil) != c.ok || (!c.ok && !errors.As(err, &pe)) ||
			(c.ok && (p.SameOrigin != c.same || p.Insecure != c.insecure || p.Origin != c.origin)) {
			t.Errorf("CheckPage(%q) = %+v, %v", c.url, p, err)
		}
	}
}

// TestDecide: ncmcp opens a page on the server's origin or on the one the
// user approved for the server; it asks on a terminal, opens with --open,
// and otherwise only shows it; a new origin is reported with the old.
func TestDecide(t *testing.T) {
	nc := Page{Origin: "http://localhost:8080"}
	other := Page{Origin: "https://evil.example"}
	cases := []struct {
		name        string
		p           Page
		approved    string
		interactive bool
		open        bool
		want        Decision
	}{
		{"same origin", Page{SameOrigin: true, Origin: "https://mcp.example.com"}, "", false, false, Decision{Action: ActionOpen}},
		{"approved", nc, "http://localhost:8080", false, false, Decision{Action: ActionOpen}},
		{"first time, terminal", nc, "", true, false, Decision{Action: ActionAsk, Record: true}},
		{"first time, script", nc, "", false, false, Decision{Action: ActionShow, Record: true}},
		{"first time, --open", nc, "", false, true, Decision{Action: ActionOpen, Record: true}},
		{"changed, terminal", other, "http://localhost:8080", true, false, Decision{Action: ActionAsk, Record: true, Changed: "http://localhost:8080"}},
		{"changed, script", other, "http://localhost:8080", false, false, Decision{Action: ActionShow, Record: true, Changed: "http://localhost:8080"}},
		{"changed, --open", other, "http://localhost:8080", false, true, Decision{Action: ActionOpen, Record: true, Changed: "http://localhost:8080"}},
	}
	for _, c := range cases {
		if got := Decide(c.p, c.approved, c.interactive, c.open); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{"https://Cloud.example.com/index.php": "https://cloud.example.com", "http://localhost:8080": "http://localhost:8080", "http://h:80/": "http://h"} {
		if got, err := ParseOrigin(in); err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"cloud.example.com", "ftp://h", "https://u@h", ""} {
		if _, err := ParseOrigin(in); err == nil {
			t.Errorf("ParseOrigin(%q) accepted", in)
		}
	}
}

func TestFindURL(t *testing.T) {
	msg := "Please log in to Nextcloud to grant access:\n\nhttps://cloud.example.com/index.php/login/v2/flow/abc\n\nOpen this URL in your browser."
	if got := FindURL(msg); got != "https://cloud.example.com/index.php/login/v2/flow/abc" {
		t.Errorf("FindURL = %q", got)
	}
	if got := FindURL("see (https://x.example/p)."); got != "https://x.example/p" {
		t.Errorf("FindURL = %q", got)
	}
	if got := FindURL("no link here"); got != "" {
		t.Errorf("FindURL = %q", got)
	}
}

func TestDetectAndChoose(t *testing.T) {
	flow2 := []mcpclient.Tool{{Name: ToolProvision, Args: []string{"user_id"}}, {Name: ToolCheck, Args: []string{"user_id"}}, {Name: ToolRevoke}}
	ts, err := Detect(flow2)
	if err != nil || !ts.CanRevoke() || ts.CanUpdateScopes() {
		t.Fatalf("Flow 2 tools: %+v, %v", ts, err)
	}
	if m, err := ts.Choose(MethodAuto); err != nil || m != MethodFlow2 {
		t.Fatalf("auto on a Flow 2 server = %v, %v", m, err)
	}
	if _, err := ts.Choose(MethodLoginFlow); err == nil {
		t.Fatal("login-flow chosen on a server without its tools")
	}
	if a := userArgs(ts.provision, "sub-1"); a["user_id"] != "sub-1" {
		t.Errorf("declared user_id not sent: %v", a)
	}
	if a := userArgs(ts.revoke, "sub-1"); len(a) != 0 {
		t.Errorf("undeclared user_id sent: %v", a)
	}
	both := append(flow2, mcpclient.Tool{Name: "search"}, mcpclient.Tool{Name: ToolNCAuthProvision}, mcpclient.Tool{Name: ToolNCAuthCheck}, mcpclient.Tool{Name: ToolNCAuthUpdate})
	ts, err = Detect(both)
	if err != nil || !ts.CanUpdateScopes() {
		t.Fatalf("both toolsets: %+v, %v", ts, err)
	}
	if m, _ := ts.Choose(MethodAuto); m != MethodLoginFlow {
		t.Fatalf("auto with both toolsets = %v, want Login Flow v2", m)
	}
	if m, _ := ts.Choose(MethodFlow2); m != MethodFlow2 {
		t.Fatalf("an explicit flow2 = %v", m)
	}
	if _, err := Detect([]mcpclient.Tool{{Name: ToolProvision}, {Name: ToolNCAuthCheck}, {Name: "search"}}); !errors.Is(err, ErrNoTools) {
		t.Fatalf("half toolsets: %v", err)
	}
	if PollInterval(MethodLoginFlow) != 5*time.Second || PollInterval(MethodFlow2) != 2*time.Second {
		t.Fatal("poll intervals changed")
	}
}

func TestKindOf(t *testing.T) {
	cases := map[[2]string]string{
		{"app_password", "login_flow_v2"}: KindLoginFlow,
		{"refresh_token", "flow2"}:        KindFlow2,
		{"", "flow2"}:                     KindFlow2,
		{"", ""}:                          KindFlow2,
		{"", "something_new"}:             "something_new",
	}
	for in, want := range cases {
		if got := kindOf(in[0], in[1]); got != want {
			t.Errorf("kindOf(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

func TestWaitRetriesFailedPolls(t *testing.T) {
	n := 0
	s, err := Wait(context.Background(), time.Millisecond, func(context.Context) (*Status, error) {
		n++
		if n < 3 {
			return nil, errors.New("connection reset")
		}
		return &Status{Provisioned: true}, nil
	}, nil)
	if err != nil || !s.Provisioned || n != 3 {
		t.Fatalf("Wait = %+v, %v after %d polls", s, err, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = Wait(ctx, time.Millisecond, func(context.Context) (*Status, error) { return nil, errors.New("server gone") }, nil)
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a vanished server = %v", err)
	}
	for _, final := range []error{&mcpclient.UnauthorizedError{}, &mcpclient.ToolError{Tool: "t", Message: "m"}, &RefusedError{Tool: "t", State: "not_initiated"}} {
		_, err = Wait(context.Background(), time.Millisecond, func(context.Context) (*Status, error) { return nil, final }, nil)
		if !errors.Is(err, final) {
			t.Fatalf("%T must end the wait: %v", final, err)
		}
	}
}
