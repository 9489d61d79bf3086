package provision

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
)

func TestCheckURL(t *testing.T) {
	const server = "https://mcp.example.com"
	for _, u := range []string{"https://mcp.example.com/oauth/authorize-nextcloud?state=x", "https://MCP.example.com/x"} {
		if err := CheckURL(u, server); err != nil {
			t.Errorf("CheckURL(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"javascript:alert(1)", "http://mcp.example.com/x", "https://mcp.example.com:8443/x", "https://evil.example/x",
		"https://user@mcp.example.com/x", "file:///etc/passwd", "//mcp.example.com/x", ""} {
		if err := CheckURL(u, server); err == nil {
			t.Errorf("CheckURL(%q) accepted", u)
		}
	}
}

func TestCheckPage(t *testing.T) {
	const server = "https://mcp.example.com"
	cases := []struct {
		url  string
		open bool
		ok   bool
	}{
		{"https://mcp.example.com/index.php/login/v2/flow/x", true, true},
		{"https://cloud.example.com/index.php/login/v2/flow/x", false, true},
		{"http://cloud.example.com/login/v2/flow/x", false, false},
		{"https://user:pw@cloud.example.com/x", false, false},
		{"javascript:alert(1)", false, false},
	}
	for _, c := range cases {
		p, err := CheckPage(c.url, server, "login-flow")
		if (err == nil) != c.ok || (c.ok && p.Open != c.open) {
			t.Errorf("CheckPage(%q) = %+v, %v", c.url, p, err)
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
