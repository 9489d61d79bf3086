package devserver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingsDir is the copy of the recordings kept with the tests, so that
// they run in any clone; TestRecordingsCopyIsCurrent holds it to
// ../shared/recordings where that is beside the checkout.
const recordingsDir = "testdata/recordings"

// TestRecordings holds the dev server to the recordings of the real servers
// (testdata/recordings, or $NCMCP_RECORDINGS): for every file and every
// exchange in it, a dev server of the file's generation is driven through
// the same requests, and its answers are compared with the recorded ones:
// status, the recorded headers (present and equal, or absent), JSON bodies
// key by key, SSE bodies message by message, locations by path and query,
// the claims of JWTs, and the key phrases of HTML pages. Placeholders bind
// to the first value seen; see match. What happens between exchanges (a
// login at the IdP, waiting for a code to expire, ...) is the glue of the
// file's scenario in recordingScenarios. The real Nextcloud's Login Flow
// v2, recorded in a format of its own, is held to what a client and a
// browser see of it (see runNextcloudRecording).
func TestRecordings(t *testing.T) {
	dir := os.Getenv("NCMCP_RECORDINGS")
	if dir == "" {
		dir = recordingsDir
	}
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no recordings in %s", dir)
	}
	seen := make(map[string]bool)
	for _, path := range files {
		name := filepath.ToSlash(filepath.Join(filepath.Base(filepath.Dir(path)), filepath.Base(path)))
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if nextcloudRecordings[name] {
				runNextcloudRecording(t, raw)
				return
			}
			sc, ok := recordingScenarios[name]
			if !ok {
				t.Fatalf("no scenario for %s: add one to recordingScenarios", name)
			}
			var rec recording
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&rec); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			runRecording(t, name, &rec, sc)
		})
	}
	for name := range recordingScenarios {
		if !seen[name] {
			t.Errorf("scenario %s has no recording in %s", name, dir)
		}
	}
	for name := range nextcloudRecordings {
		if !seen[name] {
			t.Errorf("%s is not in %s", name, dir)
		}
	}
}

// TestRecordingsCopyIsCurrent fails when the recordings beside the
// checkout (../shared/recordings) differ from the copy the tests use, so
// that an update there is noticed: copy it over and make the dev server
// follow. It skips where there are none beside the checkout.
func TestRecordingsCopyIsCurrent(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "recordings")
	if _, err := os.Stat(shared); err != nil {
		need(t, "recordings", "no "+shared+" beside the checkout to compare testdata/recordings with")
	}
	list := func(dir string) map[string][]byte {
		files := map[string][]byte{}
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			rel, _ := filepath.Rel(dir, path)
			files[filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	want, got := list(shared), list(recordingsDir)
	var diffs []string
	for name, b := range want {
		switch c, ok := got[name]; {
		case !ok:
			diffs = append(diffs, name+": new in "+shared)
		case !bytes.Equal(b, c):
			diffs = append(diffs, name+": changed in "+shared)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, name+": gone from "+shared)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("the recordings changed: copy them (rm -r pkg/devserver/%s && cp -r %s pkg/devserver/testdata/) and make the dev server follow TestRecordings:\n%s",
			recordingsDir, filepath.Join("..", "shared", "recordings"), strings.Join(diffs, "\n"))
	}
}

// recording is one file of recordings (see the recordings' README).
type recording struct {
	Title      string             `json:"title"`
	Generation int                `json:"generation"`
	Source     string             `json:"source"`
	Exchanges  []recordedExchange `json:"exchanges"`
}

type recordedExchange struct {
	Request          recordedRequest  `json:"request"`
	Response         recordedResponse `json:"response"`
	Case             string           `json:"case"`
	Observed         map[string]any   `json:"observed"`
	UpstreamRequests []string         `json:"upstream_requests"`
}

type recordedRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	URL     string            `json:"url"`
	Query   map[string]string `json:"query"`
	Headers map[string]string `json:"headers"`
	Form    map[string]string `json:"form"`
	JSON    any               `json:"json"`
	Body    *string           `json:"body"`
}

type recordedResponse struct {
	Status        int                    `json:"status"`
	Headers       map[string]string      `json:"headers"`
	BodyFormat    string                 `json:"body_format"`
	Body          any                    `json:"body"`
	LocationQuery map[string]string      `json:"location_query"`
	DecodedClaims map[string]recordedJWT `json:"decoded_claims"`
}

type recordedJWT struct {
	Header map[string]any `json:"header"`
	Claims map[string]any `json:"claims"`
}

// recordedHeaders are the response headers the recordings keep: those a
// recorded answer has must be there with the same value, the others must be
// absent.
var recordedHeaders = []string{"content-type", "www-authenticate", "location", "retry-after", "cache-control", "pragma", "mcp-session-id", "allow"}

// scenario is the glue of one recording: options, and what happens before
// an exchange that the recording does not show.
type scenario struct {
	// opts sets options beyond the generation (from the file) and the clock.
	opts func(*Options)
	// before runs before the first exchange.
	before func(h *harness)
	// step[i] runs before exchange i.
	step map[int]func(h *harness)
	// phrases[i] are the key phrases of exchange i's HTML answer. The pages
	// are held to their meaning, not to their wording.
	phrases map[int][]string
	// discovery marks Dex's discovery document: compared on the protocol
	// (see matchDiscovery), not on Dex's own features.
	discovery bool
	// toolNames[i] marks an exchange whose tools/list result the recording
	// reduced to the tools' names.
	toolNames map[int]bool
	// browser[i] marks an exchange of the user's browser that the real
	// Nextcloud answers with more steps than the stand-in recorded: the
	// browser follows the redirects and the "Log in" link (see browse),
	// and the page it ends on is compared.
	browser map[int]bool
}

// harness drives one dev server through one recording.
type harness struct {
	t     *testing.T
	name  string
	rec   *recording
	srv   *Server
	clock *testClock

	bound      map[string]string // placeholder -> value (numbers as their JSON text)
	clientPort string
	// client sends the requests, keeping cookies (the browser session of
	// the Login Flow pages) and answering redirects as they are.
	client *http.Client

	// the last exchange's answer, for glue
	lastHeader http.Header
	lastBody   []byte

	obsMu    sync.Mutex
	observed []string
}

// testClock is a clock that tests move forward.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func runRecording(t *testing.T, name string, rec *recording, sc scenario) {
	clock := &testClock{}
	opts := Options{Generation: rec.Generation, Now: clock.Now}
	if sc.opts != nil {
		sc.opts(&opts)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Timeout: 20 * time.Second, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	h := &harness{t: t, name: name, rec: rec, srv: startServer(t, opts), clock: clock,
		bound: make(map[string]string), clientPort: freePort(t), client: client}
	h.srv.setObserver(func(line string) {
		h.obsMu.Lock()
		defer h.obsMu.Unlock()
		h.observed = append(h.observed, line)
	})
	if sc.before != nil {
		sc.before(h)
	}
	for i, ex := range rec.Exchanges {
		label := ex.Case
		if label == "" {
			label = "#" + strconv.Itoa(i)
		}
		t.Run(label, func(t *testing.T) {
			h.t = t
			if f := sc.step[i]; f != nil {
				f(h)
			}
			h.runExchange(i, ex, sc)
		})
		h.t = t
	}
}

// Placeholders.

var (
	placeholderRE = regexp.MustCompile(`<([^<>]+)>`)
	timestampRE   = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})`)
	// a placeholder or a timestamp inside a longer string
	embeddedRE = regexp.MustCompile(`<[^<>]+>|` + timestampRE.String())
	plusRE     = regexp.MustCompile(`^(\w+) \+ (\d+)$`)
)

// tokenScoped are the JWT placeholders that stand for a value of one token:
// each token binds them anew.
var tokenScoped = []string{"iat", "jti", "at_hash", "c_hash"}

// numeric are the placeholders that stood for JSON integers.
var numeric = []string{"iat", "auth_time"}

// value returns the live or bound value of a placeholder.
func (h *harness) value(name string) (string, bool) {
	switch name {
	case "server":
		return h.srv.URL(), true
	case "issuer":
		return h.srv.IssuerURL(), true
	case "nextcloud":
		// Nextcloud is its own origin in every real deployment, and so in
		// the recordings.
		if h.srv.NextcloudURL() == h.srv.URL() {
			h.t.Fatalf("the Nextcloud stand-in is on the MCP server's origin %s; the recordings have it on its own (<nextcloud>)", h.srv.URL())
		}
		return h.srv.NextcloudURL(), true
	case "client_port":
		return h.clientPort, true
	}
	v, ok := h.bound[name]
	return v, ok
}

// bind binds a placeholder to the value seen first, or checks it against
// the bound one, and returns a complaint or "". The token-scoped
// placeholders bind in scope, the others for the whole recording.
func (h *harness) bind(name, actual string, scope map[string]string) string {
	scoped := scope != nil && slices.Contains(tokenScoped, name)
	if m := plusRE.FindStringSubmatch(name); m != nil {
		base, ok := h.bound[m[1]]
		if scope != nil && slices.Contains(tokenScoped, m[1]) {
			base, ok = scope[m[1]]
		}
		if !ok {
			return fmt.Sprintf("<%s> before <%s> was seen", name, m[1])
		}
		b, _ := strconv.ParseInt(base, 10, 64)
		n, _ := strconv.ParseInt(m[2], 10, 64)
		if want := strconv.FormatInt(b+n, 10); actual != want {
			return fmt.Sprintf("<%s> = %s, want %s", name, actual, want)
		}
		return ""
	}
	v, ok := h.value(name)
	if scoped {
		v, ok = scope[name]
	}
	if ok {
		if v != actual {
			return fmt.Sprintf("<%s> = %q, but it was %q before", name, actual, v)
		}
		return ""
	}
	if scoped {
		scope[name] = actual
	} else {
		h.bound[name] = actual
	}
	return ""
}

// generate makes up the client's own values for the placeholders of
// requests.
func (h *harness) generate(name string) (string, bool) {
	switch name {
	case "state":
		return "st-" + randomID()[:12], true
	case "code_verifier", "wrong_code_verifier":
		return randomToken(), true
	case "code_challenge":
		v, _ := h.fillPlaceholder("code_verifier")
		return s256(v), true
	case "non-loopback-host":
		return "mcp-client.example.com", true
	}
	return "", false
}

func (h *harness) fillPlaceholder(name string) (string, bool) {
	if v, ok := h.value(name); ok {
		return v, true
	}
	if v, ok := h.generate(name); ok {
		h.bound[name] = v
		return v, true
	}
	return "", false
}

// fill replaces the placeholders of a request string by their values.
func (h *harness) fill(s string) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(p string) string {
		name := p[1 : len(p)-1]
		v, ok := h.fillPlaceholder(name)
		if !ok {
			h.t.Fatalf("the request needs %s, which nothing bound", p)
		}
		return v
	})
}

func (h *harness) fillJSON(v any) any {
	switch x := v.(type) {
	case string:
		return h.fill(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = h.fillJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = h.fillJSON(e)
		}
		return out
	}
	return v
}

// Sending.

func (h *harness) request(r recordedRequest) *http.Request {
	target := h.srv.URL() + h.fill(r.Path)
	if r.URL != "" {
		target = h.fill(r.URL)
	}
	if len(r.Query) > 0 {
		q := url.Values{}
		for k, v := range r.Query {
			q.Set(k, h.fill(v))
		}
		target += "?" + q.Encode()
	}
	var body io.Reader
	switch {
	case r.Form != nil:
		f := url.Values{}
		for k, v := range r.Form {
			f.Set(k, h.fill(v))
		}
		body = strings.NewReader(f.Encode())
	case r.JSON != nil:
		b, err := json.Marshal(h.fillJSON(r.JSON))
		if err != nil {
			h.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	case r.Body != nil:
		body = strings.NewReader(*r.Body)
	}
	req, err := http.NewRequest(r.Method, target, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range r.Headers {
		req.Header.Set(k, h.fill(v))
	}
	return req
}

func (h *harness) send(req *http.Request) (*http.Response, []byte) {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL.Redacted(), err)
	}
	return resp, body
}

// Comparing.

func (h *harness) runExchange(i int, ex recordedExchange, sc scenario) {
	h.obsMu.Lock()
	h.observed = nil
	h.obsMu.Unlock()
	req := h.request(ex.Request)
	var resp *http.Response
	var body []byte
	if sc.browser[i] {
		resp, body = h.browse(req)
	} else {
		resp, body = h.send(req)
	}
	h.lastHeader, h.lastBody = resp.Header, body
	want := ex.Response
	if resp.StatusCode != want.Status {
		h.t.Errorf("status %d, want %d; body: %.400s", resp.StatusCode, want.Status, body)
	}
	h.matchHeaders(want, resp.Header)

	switch want.BodyFormat {
	case "json":
		act, err := decodeJSON(body)
		if err != nil {
			h.t.Errorf("body is not JSON (%v): %.400s", err, body)
			break
		}
		if sc.discovery {
			h.matchDiscovery(want.Body, act)
		} else {
			h.match("body", want.Body, act, nil)
		}
		for key, jwt := range want.DecodedClaims {
			raw, _ := act.(map[string]any)[key].(string)
			h.matchJWT("decoded_claims."+key, jwt, raw)
		}
	case "sse":
		events, err := parseSSE(body)
		if err != nil {
			h.t.Errorf("body: %v: %.400s", err, body)
			break
		}
		if sc.toolNames[i] {
			reduceToolNames(events)
		}
		h.match("body", want.Body, events, nil)
	case "html":
		text := visibleText(string(body))
		phrases := sc.phrases[i]
		if len(phrases) == 0 {
			h.t.Errorf("the scenario names no key phrases for this HTML answer (recorded: %q)", want.Body.(map[string]any)["visible_text"])
		}
		for _, p := range phrases {
			if !strings.Contains(text, p) {
				h.t.Errorf("page lacks %q: %q", p, text)
			}
		}
	case "text":
		if string(body) != want.Body {
			h.t.Errorf("body %q, want %q", body, want.Body)
		}
	case "empty":
		if len(body) != 0 {
			h.t.Errorf("body %q, want none", body)
		}
	default:
		h.t.Fatalf("unknown body_format %q", want.BodyFormat)
	}

	if same, ok := ex.Observed["refresh_token_same_as_sent"].(bool); ok {
		var tok struct {
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.Unmarshal(body, &tok)
		sent := h.fill(ex.Request.Form["refresh_token"])
		if (tok.RefreshToken == sent) != same {
			h.t.Errorf("observed refresh_token_same_as_sent: got %t, want %t", tok.RefreshToken == sent, same)
		}
	}
	if !strings.HasPrefix(h.rec.Source, "stand-in") {
		h.matchUpstream(ex.UpstreamRequests)
	}
}

// matchHeaders compares the recorded headers.
func (h *harness) matchHeaders(want recordedResponse, got http.Header) {
	for _, name := range recordedHeaders {
		exp, inRecording := want.Headers[name]
		act, inAnswer := got[http.CanonicalHeaderKey(name)]
		switch {
		case !inRecording && inAnswer:
			h.t.Errorf("header %s: %q, which the real server does not send", name, act)
		case inRecording && !inAnswer:
			h.t.Errorf("header %s missing (recorded %q)", name, exp)
		case inRecording && name == "location":
			h.matchLocation(exp, act[0], want.LocationQuery)
		case inRecording && name == "content-type":
			if act[0] != exp {
				h.t.Errorf("header content-type: %q, want %q", act[0], exp)
			}
		case inRecording:
			h.match("headers."+name, exp, act[0], nil)
		}
	}
}

// matchLocation compares a redirect: the URL without its query, and the
// decoded query key by key.
func (h *harness) matchLocation(exp, act string, wantQuery map[string]string) {
	expBase, _, _ := strings.Cut(exp, "?")
	u, err := url.Parse(act)
	if err != nil {
		h.t.Errorf("location %q: %v", act, err)
		return
	}
	actBase := *u
	actBase.RawQuery = ""
	h.match("location", expBase, actBase.String(), nil)
	got := make(map[string]any)
	for k, v := range u.Query() {
		got[k] = v[len(v)-1]
		if len(v) > 1 {
			h.t.Errorf("location_query.%s: repeated %d times", k, len(v))
		}
	}
	want := make(map[string]any, len(wantQuery))
	for k, v := range wantQuery {
		want[k] = v
	}
	h.match("location_query", want, got, nil)
}

// matchUpstream compares the requests the server sent on its own during
// the recordedExchange with the recorded ones: every request to the Login Flow
// stand-in, and token requests at the IdP. The recorded GETs of the IdP's
// discovery and keys and its introspection are left out: the dev server
// knows the IdP's endpoints and keys without asking.
func (h *harness) matchUpstream(recorded []string) {
	var want []string
	for _, line := range recorded {
		fields := strings.Fields(line)
		if len(fields) < 4 {
			h.t.Fatalf("upstream request %q: not PARTY: METHOD URL STATUS", line)
		}
		party, method, target, status := strings.TrimSuffix(fields[0], ":"), fields[1], h.fill(fields[2]), fields[3]
		if party == "idp" && target != h.srv.IssuerURL()+idpTokenPath {
			continue
		}
		if party == partyNextcloud {
			// These lines name the stand-in's origin as <server>, left
			// over from when it shared the server's: the recordings'
			// README and answers have Nextcloud on its own origin, so
			// the server's requests must go there.
			target = h.srv.NextcloudURL() + strings.TrimPrefix(target, h.srv.URL())
		}
		want = append(want, fmt.Sprintf("%s: %s %s %s", party, method, target, status))
	}
	h.obsMu.Lock()
	var got []string
	for _, line := range h.observed {
		if strings.HasPrefix(line, partyNextcloud+": ") || strings.Contains(line, " "+h.srv.IssuerURL()+idpTokenPath+" ") {
			got = append(got, line)
		}
	}
	h.obsMu.Unlock()
	if !slices.Equal(got, want) {
		h.t.Errorf("upstream requests:\n got %q\nwant %q", got, want)
	}
}

// matchJWT decodes a JWT without verifying it and compares its header and
// claims; the token-scoped placeholders bind per token.
func (h *harness) matchJWT(path string, want recordedJWT, raw string) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		h.t.Errorf("%s: not a JWT: %q", path, raw)
		return
	}
	scope := make(map[string]string)
	for i, want := range []map[string]any{want.Header, want.Claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			h.t.Errorf("%s: %v", path, err)
			return
		}
		act, err := decodeJSON(b)
		if err != nil {
			h.t.Errorf("%s: %v", path, err)
			return
		}
		h.match(path+[]string{".header", ".claims"}[i], want, act, scope)
	}
}

// match compares a recorded value with the dev server's, reporting each
// difference with its JSON path. Objects must have the same keys; a
// recorded string that is a placeholder matches any value of its kind and
// binds it (numeric placeholders stood for integers); placeholders and
// timestamps inside strings are matched as patterns (see matchString).
func (h *harness) match(path string, exp, act any, scope map[string]string) {
	h.t.Helper()
	switch e := exp.(type) {
	case map[string]any:
		a, ok := act.(map[string]any)
		if !ok {
			h.t.Errorf("%s: %s, want an object", path, show(act))
			return
		}
		for _, k := range bindingOrder(e) {
			if _, ok := a[k]; !ok {
				h.t.Errorf("%s.%s: missing (recorded %s)", path, k, show(e[k]))
				continue
			}
			h.match(path+"."+k, e[k], a[k], scope)
		}
		for _, k := range sortedKeys(a) {
			if _, ok := e[k]; !ok {
				h.t.Errorf("%s.%s: %s, which the real server does not send", path, k, show(a[k]))
			}
		}
	case []any:
		a, ok := act.([]any)
		if !ok {
			h.t.Errorf("%s: %s, want an array", path, show(act))
			return
		}
		if len(a) != len(e) {
			h.t.Errorf("%s: %d elements, want %d: %s", path, len(a), len(e), show(act))
			return
		}
		for i := range e {
			h.match(fmt.Sprintf("%s[%d]", path, i), e[i], a[i], scope)
		}
	case string:
		h.matchString(path, e, act, scope)
	case json.Number:
		a, ok := act.(json.Number)
		switch {
		case !ok:
			h.t.Errorf("%s: %s, want the number %s", path, show(act), e)
		case strings.HasSuffix(path, ".client_id_issued_at"):
			// The server's start time.
			n, err := a.Int64()
			if start := h.srv.started.Unix(); err != nil || n < start-1 || n > start+1 {
				h.t.Errorf("%s: %s, want the server's start time %d", path, a, start)
			}
		case a != e:
			h.t.Errorf("%s: %s, want %s", path, a, e)
		}
	default: // bool, nil
		if exp != act {
			h.t.Errorf("%s: %s, want %s", path, show(act), show(exp))
		}
	}
}

// matchString compares a recorded string with a value.
func (h *harness) matchString(path, exp string, act any, scope map[string]string) {
	h.t.Helper()
	if m := placeholderRE.FindStringSubmatch(exp); m != nil && m[0] == exp {
		name := m[1]
		if strings.HasPrefix(name, "description, ") {
			if s, ok := act.(string); !ok || s == "" {
				h.t.Errorf("%s: %s, want a description", path, show(act))
			}
			return
		}
		var v string
		base := name
		if p := plusRE.FindStringSubmatch(name); p != nil {
			base = p[1]
		}
		if slices.Contains(numeric, base) {
			n, ok := act.(json.Number)
			if _, err := strconv.ParseInt(string(n), 10, 64); !ok || err != nil {
				h.t.Errorf("%s: %s, want an integer for %s", path, show(act), exp)
				return
			}
			v = string(n)
		} else {
			s, ok := act.(string)
			if !ok || s == "" {
				h.t.Errorf("%s: %s, want a string for %s", path, show(act), exp)
				return
			}
			v = s
		}
		if complaint := h.bind(name, v, scope); complaint != "" {
			h.t.Errorf("%s: %s", path, complaint)
		}
		return
	}
	s, ok := act.(string)
	if !ok {
		h.t.Errorf("%s: %s, want the string %q", path, show(act), exp)
		return
	}
	if !embeddedRE.MatchString(exp) {
		if s != exp {
			h.t.Errorf("%s: %q, want %q", path, s, exp)
		}
		return
	}
	h.matchPattern(path, exp, s, scope)
}

// matchPattern matches a string with placeholders or timestamps inside:
// known placeholders become their values, others capture and bind, and
// timestamps match by layout.
func (h *harness) matchPattern(path, exp, act string, scope map[string]string) {
	h.t.Helper()
	type capture struct {
		placeholder string // or
		layout      string // of a timestamp
	}
	var re strings.Builder
	var caps []capture
	re.WriteString("^")
	last := 0
	for _, loc := range embeddedRE.FindAllStringIndex(exp, -1) {
		re.WriteString(regexp.QuoteMeta(exp[last:loc[0]]))
		tok := exp[loc[0]:loc[1]]
		last = loc[1]
		if strings.HasPrefix(tok, "<") {
			name := tok[1 : len(tok)-1]
			if v, ok := h.value(name); ok {
				re.WriteString(regexp.QuoteMeta(v))
				continue
			}
			re.WriteString(`([^\s"\\]+?)`)
			caps = append(caps, capture{placeholder: name})
			continue
		}
		re.WriteString("(" + regexp.MustCompile(`\d`).ReplaceAllString(regexp.QuoteMeta(tok), `\d`) + ")")
		caps = append(caps, capture{layout: timestampLayout(tok)})
	}
	re.WriteString(regexp.QuoteMeta(exp[last:]) + "$")
	m := regexp.MustCompile(re.String()).FindStringSubmatch(act)
	if m == nil {
		h.t.Errorf("%s: %q does not match the recorded %q", path, act, exp)
		if e, err := decodeJSON([]byte(exp)); err == nil {
			if a, err := decodeJSON([]byte(act)); err == nil {
				h.match(path+"(json)", e, a, scope)
			}
		}
		return
	}
	for i, c := range caps {
		if c.placeholder != "" {
			if complaint := h.bind(c.placeholder, m[i+1], scope); complaint != "" {
				h.t.Errorf("%s: %s", path, complaint)
			}
			continue
		}
		if _, err := time.Parse(c.layout, m[i+1]); err != nil {
			h.t.Errorf("%s: timestamp %q: %v", path, m[i+1], err)
		}
	}
}

// timestampLayout returns the Go layout of a recorded timestamp.
func timestampLayout(ts string) string {
	layout := "2006-01-02T15:04:05"
	if dot := strings.IndexByte(ts, '.'); dot > 0 {
		end := dot + 1
		for end < len(ts) && ts[end] >= '0' && ts[end] <= '9' {
			end++
		}
		layout += "." + strings.Repeat("0", end-dot-1)
	}
	if strings.HasSuffix(ts, "Z") {
		return layout + "Z"
	}
	return layout + "-07:00"
}

// matchDiscovery compares an OpenID Provider discovery document of Dex
// with the dev IdP's on what the protocol (and ncmcp) uses: the endpoints
// exactly, the lists of methods, types and scopes as sets; grant types must
// include authorization_code and refresh_token and be Dex's. Dex's own
// features (device flow, token recordedExchange, backchannel logout,
// introspection, its claims_supported) and the dev IdP's extras
// (registration, revocation) are not compared.
func (h *harness) matchDiscovery(exp, act any) {
	e, _ := exp.(map[string]any)
	a, ok := act.(map[string]any)
	if !ok {
		h.t.Errorf("body: %s, want an object", show(act))
		return
	}
	for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"} {
		h.match("body."+k, e[k], a[k], nil)
	}
	set := func(v any) []string {
		var out []string
		l, _ := v.([]any)
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
		sort.Strings(out)
		return out
	}
	for _, k := range []string{"response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
		"code_challenge_methods_supported", "scopes_supported", "token_endpoint_auth_methods_supported"} {
		if got, want := set(a[k]), set(e[k]); !slices.Equal(got, want) {
			h.t.Errorf("body.%s: %q, want %q", k, got, want)
		}
	}
	grants, dex := set(a["grant_types_supported"]), set(e["grant_types_supported"])
	for _, g := range grants {
		if !slices.Contains(dex, g) {
			h.t.Errorf("body.grant_types_supported: %q, which Dex does not have", g)
		}
	}
	for _, g := range []string{"authorization_code", "refresh_token"} {
		if !slices.Contains(grants, g) {
			h.t.Errorf("body.grant_types_supported: %q lacks %q", grants, g)
		}
	}
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// parseSSE parses an event stream into the recordings' form: a list of
// {"event", "data"} with data parsed.
func parseSSE(body []byte) ([]any, error) {
	var events []any
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	for _, block := range strings.Split(text, "\n\n") {
		if strings.TrimSpace(block) == "" {
			continue
		}
		var event string
		var data []string
		for _, line := range strings.Split(block, "\n") {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				event = value
			case "data":
				data = append(data, value)
			case "":
			default:
				return nil, fmt.Errorf("unexpected SSE field %q", field)
			}
		}
		d, err := decodeJSON([]byte(strings.Join(data, "\n")))
		if err != nil {
			return nil, fmt.Errorf("SSE data: %w", err)
		}
		events = append(events, map[string]any{"event": event, "data": d})
	}
	return events, nil
}

// reduceToolNames replaces the tools of tools/list results by their names,
// as one recording shows them.
func reduceToolNames(events []any) {
	for _, ev := range events {
		data, _ := ev.(map[string]any)["data"].(map[string]any)
		result, _ := data["result"].(map[string]any)
		tools, ok := result["tools"].([]any)
		if !ok {
			continue
		}
		names := make([]any, len(tools))
		for i, t := range tools {
			names[i], _ = t.(map[string]any)["name"]
		}
		result["tools"] = names
	}
}

var (
	scriptStyleRE = regexp.MustCompile(`(?is)<(script|style)[^>]*>.*?</(script|style)>`)
	tagRE         = regexp.MustCompile(`<[^>]*>`)
)

// visibleText returns the text of an HTML page, white space collapsed.
func visibleText(page string) string {
	text := tagRE.ReplaceAllString(scriptStyleRE.ReplaceAllString(page, " "), " ")
	return strings.Join(strings.Fields(html.UnescapeString(text)), " ")
}

// bindingOrder returns the keys of m sorted, those whose values refer to
// another placeholder ("<iat + 3600>") last.
func bindingOrder(m map[string]any) []string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool {
		return !isRelative(m[keys[i]]) && isRelative(m[keys[j]])
	})
	return keys
}

func isRelative(v any) bool {
	s, ok := v.(string)
	return ok && plusRE.MatchString(strings.Trim(s, "<>"))
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
