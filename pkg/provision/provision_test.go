package provision

import (
	"context"
	"encoding/json"
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

func TestCheckLoginFlowURL(t *testing.T) {
	const server = "https://mcp.example.com"
	cases := []struct {
		url   string
		place Placement
		ok    bool
	}{
		{"https://mcp.example.com/login/v2/flow/x", OpenIt, true},
		{"https://cloud.example.com/login/v2/flow/x", ShowIt, true},
		{"http://cloud.example.com/login/v2/flow/x", 0, false},
		{"javascript:alert(1)", 0, false},
	}
	for _, c := range cases {
		p, err := CheckLoginFlowURL(c.url, server)
		if (err == nil) != c.ok || (c.ok && p != c.place) {
			t.Errorf("CheckLoginFlowURL(%q) = %v, %v", c.url, p, err)
		}
	}
}

func TestDetectAndArguments(t *testing.T) {
	seed := []mcpclient.Tool{{Name: ToolProvision, Args: []string{"user_id"}}, {Name: ToolCheck, Args: []string{"user_id"}}, {Name: ToolRevoke}}
	ts, err := Detect(seed)
	if err != nil || ts.LoginFlow || !ts.CanRevoke() || ts.PollInterval() != 2*time.Second {
		t.Fatalf("seed tools: %+v, %v", ts, err)
	}
	if a := args(ts.provision, "sub-1"); a["user_id"] != "sub-1" {
		t.Errorf("declared user_id not sent: %v", a)
	}
	if a := args(ts.revoke, "sub-1"); len(a) != 0 {
		t.Errorf("undeclared user_id sent: %v", a)
	}
	newer := []mcpclient.Tool{{Name: "search"}, {Name: ToolNCAuthProvision}, {Name: ToolNCAuthCheck}}
	if ts, err := Detect(newer); err != nil || !ts.LoginFlow || ts.CanRevoke() || ts.PollInterval() != 5*time.Second {
		t.Fatalf("newer tools: %+v, %v", ts, err)
	}
	if _, err := Detect([]mcpclient.Tool{{Name: ToolProvision}, {Name: "search"}}); !errors.Is(err, ErrNoTools) {
		t.Fatalf("half a toolset: %v", err)
	}
}

// fakeCaller answers tool calls with fixed JSON results; the MCP transport
// itself is exercised by the e2e tests against the dev server.
type fakeCaller map[string]string

func (f fakeCaller) Call(_ context.Context, tool string, _ map[string]any, out any) error {
	return jsonInto(f[tool], out)
}

func TestLoginFlowStates(t *testing.T) {
	ts, _ := Detect([]mcpclient.Tool{{Name: ToolNCAuthProvision}, {Name: ToolNCAuthCheck}})
	c := fakeCaller{
		ToolNCAuthProvision: `{"status":"login_required","login_url":"https://cloud.example.com/login/v2/flow/t"}`,
		ToolNCAuthCheck:     `{"status":"provisioned","credential_type":"app_password"}`,
	}
	s, err := ts.Start(context.Background(), c, "u")
	if err != nil || s.AlreadyProvisioned || s.URL() != "https://cloud.example.com/login/v2/flow/t" {
		t.Fatalf("Start = %+v, %v", s, err)
	}
	st, err := ts.Status(context.Background(), c, "u")
	if err != nil || !st.IsProvisioned || st.FlowType != "app_password" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	c[ToolNCAuthProvision] = `{"status":"error","message":"Nextcloud unreachable"}`
	if _, err := ts.Start(context.Background(), c, "u"); err == nil {
		t.Fatal("a start without URL or provisioned state was accepted")
	}
}

func TestWaitRetriesFailedPolls(t *testing.T) {
	n := 0
	s, err := Wait(context.Background(), time.Millisecond, func(context.Context) (*Status, error) {
		n++
		if n < 3 {
			return nil, errors.New("connection reset")
		}
		return &Status{IsProvisioned: true}, nil
	}, nil)
	if err != nil || !s.IsProvisioned || n != 3 {
		t.Fatalf("Wait = %+v, %v after %d polls", s, err, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = Wait(ctx, time.Millisecond, func(context.Context) (*Status, error) { return nil, errors.New("server gone") }, nil)
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a vanished server = %v", err)
	}
	_, err = Wait(context.Background(), time.Millisecond, func(context.Context) (*Status, error) {
		return nil, &mcpclient.UnauthorizedError{}
	}, nil)
	var ue *mcpclient.UnauthorizedError
	if !errors.As(err, &ue) {
		t.Fatalf("a refused token must end the wait: %v", err)
	}
}

func jsonInto(s string, out any) error { return json.Unmarshal([]byte(s), out) }
