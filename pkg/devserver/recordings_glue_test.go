package devserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// recordingScenarios is the glue of every recording: what happens between
// the recorded exchanges (logins at the IdP, a code left to expire, the
// user's browser on the Login Flow page, ...), keyed by file.
//
// The idp-dex files are Dex's own answers (generation 1's clients talk to
// the IdP). The dev IdP is zitadel's OP shaped like Dex: it is held to
// their protocol (status codes, error codes, token response fields, claim
// keys, and in discovery what ncmcp reads), not to Dex's features. The
// stand-in files are a stand-in for Nextcloud's Login Flow v2: held to the
// protocol and the pages' meaning, not to the pages' wording.
var recordingScenarios = map[string]scenario{
	// Generation 1 (v0.31.0).
	"gen1-v0.31.0/authorize-errors.json":                         {},
	"gen1-v0.31.0/authorize-success-redirect.json":               {},
	"gen1-v0.31.0/discovery-as-metadata.json":                    {},
	"gen1-v0.31.0/discovery-openid-configuration-on-server.json": {},
	"gen1-v0.31.0/discovery-prm-mcp.json":                        {},
	"gen1-v0.31.0/discovery-prm-root.json":                       {},
	"gen1-v0.31.0/flow2.json": {
		before:  func(h *harness) { h.bindFlow2State() },
		step:    map[int]func(*harness){1: (*harness).idpCodeFromLastLocation},
		phrases: map[int][]string{1: {"Nextcloud Access Provisioned"}, 2: {"Login Failed", "invalid_grant"}},
	},
	"gen1-v0.31.0/idp-openid-configuration.json": {discovery: true},
	"gen1-v0.31.0/idp-token-authorization-code.json": {
		before: func(h *harness) { h.bound["code"] = h.code() },
	},
	"gen1-v0.31.0/idp-token-refresh.json": {
		before: func(h *harness) { h.bound["refresh_token"] = h.tokens(h.code())["refresh_token"] },
		step: map[int]func(*harness){
			1: func(h *harness) { h.clock.advance(DefaultRefreshReuseInterval + 500*time.Millisecond) },
			2: func(h *harness) { h.clock.advance(DefaultRefreshReuseInterval + 500*time.Millisecond) },
		},
	},
	"gen1-v0.31.0/mcp-401-without-token.json": {},
	"gen1-v0.31.0/mcp-delete-session.json":    {before: sessionGlue("refreshed2_access_token")},
	"gen1-v0.31.0/mcp-initialize.json":        {before: tokenGlue("refreshed2_access_token")},
	"gen1-v0.31.0/mcp-tools-list.json":        {before: sessionGlue("refreshed2_access_token")},
	"gen1-v0.31.0/tools-call-after-flow2.json": {
		before: func(h *harness) {
			sessionGlue("refreshed2_access_token")(h)
			h.flow2()
		},
	},
	"gen1-v0.31.0/tools-call-not-provisioned.json": {before: sessionGlue("refreshed2_access_token")},

	// Generation 2 (v0.181.0).
	"gen2-v0.181.0/authorize-error-invalid-scope-relayed.json": {
		step: map[int]func(*harness){1: (*harness).idpRefusesUnknownScope},
	},
	"gen2-v0.181.0/authorize-errors.json": {},
	"gen2-v0.181.0/authorize-success-redirect.json": {
		step: map[int]func(*harness){1: (*harness).idpCodeFromLastLocation},
	},
	"gen2-v0.181.0/discovery-as-metadata.json":                    {},
	"gen2-v0.181.0/discovery-openid-configuration-on-server.json": {},
	"gen2-v0.181.0/discovery-prm-mcp.json":                        {},
	"gen2-v0.181.0/discovery-prm-root.json":                       {},
	"gen2-v0.181.0/flow2.json": {
		before:  func(h *harness) { h.bindFlow2State() },
		step:    map[int]func(*harness){1: (*harness).idpCodeFromLastLocation},
		phrases: map[int][]string{1: {"Nextcloud Access Provisioned"}, 2: {"Unknown or expired session"}},
	},
	"gen2-v0.181.0/mcp-401-without-token.json":  {},
	"gen2-v0.181.0/mcp-delete-session.json":     {before: sessionGlue("refreshed2_access_token")},
	"gen2-v0.181.0/mcp-initialize.json":         {before: tokenGlue("refreshed2_access_token")},
	"gen2-v0.181.0/mcp-tools-list.json":         {before: sessionGlue("refreshed2_access_token")},
	"gen2-v0.181.0/register-not-supported.json": {},
	"gen2-v0.181.0/register-rate-limited.json": {
		// The attempts before the recorded ones: the recorded 6th of the
		// burst is the 10th in the window.
		before: func(h *harness) {
			for range DefaultRegisterRateLimit - 1 {
				h.register(http.StatusCreated)
			}
		},
	},
	"gen2-v0.181.0/register-success.json": {},
	"gen2-v0.181.0/standin-login-flow-v2-browser.json": {
		opts:   recordedNextcloudUser,
		before: (*harness).startLoginFlow,
		// The stand-in answered the login URL with its page; a real
		// Nextcloud answers 303 to "Connect to your account", whose "Log
		// in" link leads there.
		browser: map[int]bool{0: true},
		step:    map[int]func(*harness){1: (*harness).bindGrantForm},
		phrases: map[int][]string{
			0: {"Account access", "Currently logged in as Kilgore Trout (" + RecordedUser.Subject + ")", ServerClientID, "Grant access"},
			1: {"Account connected"},
		},
	},
	"gen2-v0.181.0/standin-login-flow-v2-protocol.json": {
		opts: recordedNextcloudUser,
		step: map[int]func(*harness){
			2: func(h *harness) { h.browserGrant(h.srv.NextcloudURL() + ncFlowPath + h.bound["login_token"]) },
			5: func(h *harness) { h.basicAuth(RecordedUser.Subject, h.bound["app_password"]) },
			6: func(h *harness) { h.basicAuth(RecordedUser.Subject, "not-the-app-password") },
		},
		phrases: map[int][]string{4: {"Access forbidden", "Your login token is invalid or has expired"}},
	},
	"gen2-v0.181.0/token-authorization-code.json": {
		before: func(h *harness) { h.bound["code"] = h.code() },
	},
	"gen2-v0.181.0/token-error-code-reuse.json": {
		before: func(h *harness) {
			h.bound["code"] = h.code()
			h.tokensFor(h.bound["code"])
		},
	},
	"gen2-v0.181.0/token-error-expired-code.json": {
		before: func(h *harness) {
			h.bound["code_issued_61s_earlier"] = h.code()
			h.clock.advance(DefaultCodeTTL + time.Second)
		},
	},
	"gen2-v0.181.0/token-error-refresh-after-newer-login.json": {
		before: func(h *harness) {
			rt := h.tokens(h.code())["refresh_token"]
			h.clock.advance(DefaultRefreshReuseInterval + 500*time.Millisecond)
			h.bound["rotated_refresh_token"] = h.refresh(rt)["refresh_token"]
			h.code() // login 2
			h.code() // login 3
		},
	},
	"gen2-v0.181.0/token-error-refresh.json": {
		before: func(h *harness) {
			rt := h.tokens(h.code())["refresh_token"]
			h.bound["refresh_token"] = rt
			h.clock.advance(DefaultRefreshReuseInterval + 500*time.Millisecond)
			if rotated := h.refresh(rt)["refresh_token"]; rotated == rt {
				h.t.Fatal("glue: the refresh after the reuse interval did not rotate")
			}
			h.clock.advance(DefaultRefreshReuseInterval + 500*time.Millisecond)
		},
	},
	"gen2-v0.181.0/token-error-wrong-verifier.json": {
		before: func(h *harness) { h.bound["code"] = h.code() },
	},
	"gen2-v0.181.0/token-errors.json": {
		before: func(h *harness) { h.bound["code"] = h.code() },
	},
	"gen2-v0.181.0/token-refresh.json": {
		before: func(h *harness) { h.bound["refresh_token"] = h.tokens(h.code())["refresh_token"] },
		step: map[int]func(*harness){
			1: func(h *harness) { h.clock.advance(DefaultRefreshReuseInterval + 500*time.Millisecond) },
		},
	},
	"gen2-v0.181.0/tools-call-after-flow2.json": {
		before: func(h *harness) {
			sessionGlue("refreshed2_access_token")(h)
			h.flow2()
		},
	},
	"gen2-v0.181.0/tools-call-login-flow-v2-pending.json": {before: sessionGlue("refreshed2_access_token")},
	"gen2-v0.181.0/tools-call-login-flow-v2-provisioned.json": {
		before: func(h *harness) {
			sessionGlue("refreshed2_access_token")(h)
			res := h.callTool(ToolNCAuthProvision, map[string]any{})
			loginURL, _ := res["login_url"].(string)
			h.browserGrant(loginURL)
		},
		// the browser grant of the scope-update flow
		step: map[int]func(*harness){9: func(h *harness) { h.browserGrant(h.srv.NextcloudURL() + ncFlowPath + h.bound["login_token_2"]) }},
	},
	"gen2-v0.181.0/tools-call-not-provisioned.json": {before: sessionGlue("refreshed2_access_token")},
	"gen2-v0.181.0/tools-call-scope-denied.json": {
		opts:      func(o *Options) { o.StrictScopeClaim = true },
		before:    sessionGlue("access_token"),
		toolNames: map[int]bool{0: true},
	},
}

// recordedNextcloudUser makes RecordedUser the user logged in at the
// Login Flow stand-in, as in the recordings.
func recordedNextcloudUser(o *Options) { o.NextcloudUser = RecordedUser.Username }

// tokenGlue logs RecordedUser in and binds the access token to name.
func tokenGlue(name string) func(*harness) {
	return func(h *harness) {
		h.bound["mcp_token"] = h.tokens(h.code())["access_token"]
		h.bound[name] = h.bound["mcp_token"]
	}
}

// sessionGlue logs RecordedUser in, binds the access token to name and
// opens an MCP session (bound to mcp-session-id).
func sessionGlue(name string) func(*harness) {
	return func(h *harness) {
		tokenGlue(name)(h)
		h.mcpSession()
	}
}

// get sends a GET without following redirects.
func (h *harness) get(target string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.send(req)
}

// postForm sends a form.
func (h *harness) postForm(target string, form url.Values) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.send(req)
}

// location returns the redirect of an answer, resolved.
func (h *harness) location(resp *http.Response, body []byte) *url.URL {
	h.t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("glue: %s %s answered %d, want a redirect: %.300s", resp.Request.Method, resp.Request.URL.Redacted(), resp.StatusCode, body)
	}
	u, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

// throughIdP follows a browser from start through the OP, logging in as
// RecordedUser on its login page, and returns the first URL off the OP.
func (h *harness) throughIdP(start *url.URL) *url.URL {
	h.t.Helper()
	idp, _ := url.Parse(h.srv.IssuerURL())
	cur := start
	for range 10 {
		if cur.Host != idp.Host {
			return cur
		}
		if cur.Path == loginPath {
			cur = h.location(h.postForm(h.srv.IssuerURL()+loginPath, url.Values{
				"id": {cur.Query().Get("id")}, "username": {RecordedUser.Username},
				"password": {RecordedUser.Password}, "action": {"approve"},
			}))
			continue
		}
		cur = h.location(h.get(cur.String()))
	}
	h.t.Fatalf("glue: too many redirects at the IdP")
	return nil
}

// clientRedirect is the client's redirect URI.
func (h *harness) clientRedirect() string {
	return "http://127.0.0.1:" + h.clientPort + "/callback"
}

// code logs RecordedUser in as the client test-mcp-client, through the
// server's /oauth/authorize and the IdP, and returns the code that arrives
// at the client's redirect URI (the IdP's in generation 1, the server's in
// generation 2, where the server's nonce is bound to <nonce>).
func (h *harness) code() string {
	h.t.Helper()
	state := h.fill("<state>")
	q := url.Values{
		"response_type": {"code"}, "client_id": {PublicClientID}, "redirect_uri": {h.clientRedirect()},
		"state": {state}, "code_challenge": {h.fill("<code_challenge>")}, "code_challenge_method": {"S256"},
	}
	toIdP := h.location(h.get(h.srv.URL() + "/oauth/authorize?" + q.Encode()))
	if _, ok := h.bound["nonce"]; !ok && h.rec.Generation == 2 {
		h.bound["nonce"] = toIdP.Query().Get("nonce")
	}
	back := h.throughIdP(toIdP)
	if h.rec.Generation == 2 {
		if back.Path != "/oauth/callback" {
			h.t.Fatalf("glue: the IdP returned to %s, want the server's callback", back.Redacted())
		}
		back = h.location(h.get(back.String()))
	}
	if !strings.HasPrefix(back.String(), h.clientRedirect()+"?") || back.Query().Get("state") != state || back.Query().Get("code") == "" {
		h.t.Fatalf("glue: the login ended at %s", back.Redacted())
	}
	return back.Query().Get("code")
}

// tokenRequest posts a form to the token endpoint the client uses (the
// IdP's in generation 1, the server's in generation 2).
func (h *harness) tokenRequest(form url.Values) (*http.Response, map[string]string) {
	h.t.Helper()
	endpoint := h.srv.IssuerURL() + idpTokenPath
	if h.rec.Generation == 2 {
		endpoint = h.srv.URL() + "/oauth/token"
	}
	resp, body := h.postForm(endpoint, form)
	out := make(map[string]string)
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	for k, v := range raw {
		out[k] = fmt.Sprint(v)
	}
	return resp, out
}

// tokensFor redeems a code and returns the token response.
func (h *harness) tokensFor(code string) map[string]string {
	h.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {h.clientRedirect()}, "client_id": {PublicClientID}}
	if h.rec.Generation == 2 {
		form.Set("code_verifier", h.fill("<code_verifier>"))
	}
	resp, tok := h.tokenRequest(form)
	if resp.StatusCode != http.StatusOK || tok["access_token"] == "" || tok["refresh_token"] == "" {
		h.t.Fatalf("glue: code exchange: %d %v", resp.StatusCode, tok)
	}
	return tok
}

// tokens is tokensFor.
func (h *harness) tokens(code string) map[string]string { return h.tokensFor(code) }

// refresh uses a refresh token.
func (h *harness) refresh(rt string) map[string]string {
	h.t.Helper()
	resp, tok := h.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {PublicClientID}})
	if resp.StatusCode != http.StatusOK || tok["refresh_token"] == "" {
		h.t.Fatalf("glue: refresh: %d %v", resp.StatusCode, tok)
	}
	return tok
}

// mcpPost sends a JSON-RPC message to /mcp in the session, if there is one.
func (h *harness) mcpPost(msg map[string]any) (*http.Response, []byte) {
	h.t.Helper()
	b, _ := json.Marshal(msg)
	req, err := http.NewRequest(http.MethodPost, h.srv.URL()+"/mcp", strings.NewReader(string(b)))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.bound["mcp_token"])
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	if sid := h.bound["mcp-session-id"]; sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", protocolVersions[h.rec.Generation][0])
	}
	return h.send(req)
}

// mcpSession opens an MCP session and binds its id to <mcp-session-id>.
func (h *harness) mcpSession() {
	h.t.Helper()
	resp, body := h.mcpPost(map[string]any{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": map[string]any{
		"protocolVersion": protocolVersions[h.rec.Generation][0], "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "glue", "version": "0"},
	}})
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		h.t.Fatalf("glue: initialize: %d %.300s", resp.StatusCode, body)
	}
	h.bound["mcp-session-id"] = sid
	if resp, body := h.mcpPost(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}); resp.StatusCode != http.StatusAccepted {
		h.t.Fatalf("glue: notifications/initialized: %d %.300s", resp.StatusCode, body)
	}
}

// callTool calls a tool in the session and returns its structured result.
func (h *harness) callTool(name string, args map[string]any) map[string]any {
	h.t.Helper()
	resp, body := h.mcpPost(map[string]any{"jsonrpc": "2.0", "id": 1000, "method": "tools/call",
		"params": map[string]any{"name": name, "arguments": args}})
	events, err := parseSSE(body)
	if resp.StatusCode != http.StatusOK || err != nil || len(events) != 1 {
		h.t.Fatalf("glue: %s: %d %v %.300s", name, resp.StatusCode, err, body)
	}
	data, _ := events[0].(map[string]any)["data"].(map[string]any)
	result, _ := data["result"].(map[string]any)
	structured, ok := result["structuredContent"].(map[string]any)
	if !ok {
		h.t.Fatalf("glue: %s: no structured result: %.300s", name, body)
	}
	return structured
}

// bindFlow2State binds <flow2_state> to a new Flow 2 URL's state.
func (h *harness) bindFlow2State() string {
	u, err := url.Parse(h.srv.Flow2URL())
	if err != nil || u.Query().Get("state") == "" {
		h.t.Fatalf("glue: Flow2URL %q", h.srv.Flow2URL())
	}
	h.bound["flow2_state"] = u.Query().Get("state")
	return u.String()
}

// flow2 provisions RecordedUser through Flow 2.
func (h *harness) flow2() {
	h.t.Helper()
	back := h.throughIdP(h.location(h.get(h.bindFlow2State())))
	if resp, body := h.get(back.String()); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Nextcloud Access Provisioned") {
		h.t.Fatalf("glue: Flow 2 callback: %d %.300s", resp.StatusCode, body)
	}
}

// idpCodeFromLastLocation follows the last answer's redirect to the IdP,
// logs in, and binds the code the IdP sends to the server's callback to
// <idp_code>.
func (h *harness) idpCodeFromLastLocation() {
	h.t.Helper()
	start, err := url.Parse(h.lastHeader.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	back := h.throughIdP(start)
	if back.String() != h.srv.URL()+"/oauth/callback?"+back.RawQuery || back.Query().Get("code") == "" {
		h.t.Fatalf("glue: the IdP returned to %s, want the server's callback with a code", back.Redacted())
	}
	if state := start.Query().Get("state"); back.Query().Get("state") != state {
		h.t.Fatalf("glue: the IdP returned state %q, want %q", back.Query().Get("state"), state)
	}
	h.bound["idp_code"] = back.Query().Get("code")
}

// idpRefusesUnknownScope checks what the recorded request of the next
// exchange assumes: the IdP sends an unknown scope back to the server's
// callback as invalid_scope, with Dex's description, without a login.
func (h *harness) idpRefusesUnknownScope() {
	h.t.Helper()
	start, err := url.Parse(h.lastHeader.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	back := h.location(h.get(start.String()))
	q := back.Query()
	if !strings.HasPrefix(back.String(), h.srv.URL()+"/oauth/callback?") || q.Get("error") != "invalid_scope" ||
		q.Get("error_description") != `Unrecognized scope(s) ["notes.read"]` || q.Get("state") != h.bound["server_state"] {
		h.t.Errorf("glue: the IdP answered an unknown scope with %s", back.Redacted())
	}
}

// register sends a loopback registration to the generation-2 server.
func (h *harness) register(want int) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL()+"/oauth/register",
		strings.NewReader(`{"client_name":"glue","redirect_uris":["`+h.clientRedirect()+`"]}`))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if resp, body := h.send(req); resp.StatusCode != want {
		h.t.Fatalf("glue: registration: %d, want %d: %s", resp.StatusCode, want, body)
	}
}

// startLoginFlow starts a Login Flow at the stand-in and binds its tokens.
func (h *harness) startLoginFlow() {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.NextcloudURL()+ncLoginPath, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("User-Agent", ServerClientID)
	resp, body := h.send(req)
	var init struct {
		Poll struct {
			Token string `json:"token"`
		} `json:"poll"`
		Login string `json:"login"`
	}
	if err := json.Unmarshal(body, &init); err != nil || resp.StatusCode != http.StatusOK {
		h.t.Fatalf("glue: Login Flow: %d %s", resp.StatusCode, body)
	}
	h.bound["poll_token"] = init.Poll.Token
	h.bound["login_token"] = strings.TrimPrefix(init.Login, h.srv.NextcloudURL()+ncFlowPath)
}

var hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

// grantForm returns the hidden fields of an "Account access" page.
func (h *harness) grantForm(page []byte) url.Values {
	form := url.Values{}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], m[2])
	}
	if form.Get("stateToken") == "" || form.Get("requesttoken") == "" {
		h.t.Fatalf("glue: no grant form on the page: %.300s", page)
	}
	return form
}

// bindGrantForm binds the grant form of the last answer.
func (h *harness) bindGrantForm() {
	form := h.grantForm(h.lastBody)
	h.bound["stateToken"], h.bound["requesttoken"] = form.Get("stateToken"), form.Get("requesttoken")
}

// browserGrant is the user's browser on a Login Flow page: it grants access.
func (h *harness) browserGrant(loginURL string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, loginURL, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, page := h.browse(req)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("glue: Login Flow page: %d %.300s", resp.StatusCode, page)
	}
	if resp, body := h.postForm(h.srv.NextcloudURL()+ncGrantPath, h.grantForm(page)); resp.StatusCode != http.StatusOK {
		h.t.Fatalf("glue: grant: %d %.300s", resp.StatusCode, body)
	}
}

// loginLinkRE finds the "Log in" link of the Login Flow's picker page.
var loginLinkRE = regexp.MustCompile(`<a id="login" href="([^"]+)">`)

// browse sends req as the user's browser: it follows redirects on the
// request's origin, and the picker page's "Log in" link, as a person who
// is logged in at Nextcloud would, and returns the last answer.
func (h *harness) browse(req *http.Request) (*http.Response, []byte) {
	h.t.Helper()
	resp, body := h.send(req)
	for range 5 {
		next := ""
		switch {
		case resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusFound:
			next = resp.Header.Get("Location")
		case resp.StatusCode == http.StatusOK:
			if m := loginLinkRE.FindSubmatch(body); m != nil {
				next = html.UnescapeString(string(m[1]))
			}
		}
		if next == "" {
			return resp, body
		}
		u, err := req.URL.Parse(next)
		if err != nil || u.Host != req.URL.Host {
			h.t.Fatalf("glue: the browser is sent to %q, off %s", next, req.URL.Host)
		}
		resp, body = h.get(u.String())
	}
	h.t.Fatalf("glue: more than 5 steps from %s", req.URL.Redacted())
	return nil, nil
}

// basicAuth binds the HTTP Basic credential of the next request.
func (h *harness) basicAuth(user, password string) {
	h.bound["base64 of user:password"] = base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}
