package devserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nextcloudRecordings are the recordings of a real Nextcloud, in their own
// format (entries of steps by actor), held to the stand-in by
// runNextcloudRecording.
var nextcloudRecordings = map[string]bool{"nextcloud-32.0.1/login-flow-v2.json": true}

// ncRecording is a real Nextcloud's recorded Login Flow v2.
type ncRecording struct {
	FlowUser string    `json:"flow_user"`
	Entries  []ncEntry `json:"entries"`
}

type ncEntry struct {
	Step    int    `json:"step"`
	Actor   string `json:"actor"`
	Label   string `json:"label"`
	Request struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Form    map[string]string `json:"form"`
		Body    *string           `json:"body"`
	} `json:"request"`
	Response struct {
		Status   int               `json:"status"`
		Headers  map[string]string `json:"headers"`
		BodyJSON any               `json:"body_json"`
		HTML     *struct {
			Headings   []string `json:"headings"`
			Paragraphs []string `json:"paragraphs"`
		} `json:"html"`
	} `json:"response"`
}

// ncStandInGaps are the answers of the real Nextcloud that the stand-in
// gives only in part, by step: only the status is compared there.
var ncStandInGaps = map[string]string{
	"without format and without Accept": "OCS answers JSON only, never XML",
	"with a wrong password":             "OCS keeps the stand-in recording's 401 answer (no WWW-Authenticate)",
	"poll without a token":              "a plain 500, not Nextcloud's HTML error page",
}

// ncPlaceholderRE matches the recording's placeholders.
var ncPlaceholderRE = regexp.MustCompile(`<([a-z0-9-]+)>`)

// ncReplay replays a real Nextcloud's Login Flow v2 at the stand-in.
type ncReplay struct {
	t       *testing.T
	srv     *Server
	clock   *testClock
	local   string // the stand-in as http://localhost:PORT
	bound   map[string]string
	clients map[string]*http.Client // one browser (cookie jar) per actor
	pages   map[string]string       // the last HTML page each actor saw
}

// runNextcloudRecording drives the Login Flow stand-in through every
// request of the recorded client and browsers, in order, and compares the
// answers: status, redirect target, JSON bodies (the recorded placeholders
// bind; two placeholders never bind the same value, so every showing of
// the picker must make a new stateToken), the main heading of HTML pages
// and their message where access is refused. The browsers keep cookies
// and log in with the form; the recording's user bob is the test user
// SecondUser; "created N s ago" moves the clock. The recorded OCS user
// has more fields than the stand-in's: only its id is compared (the test
// user's sub).
func runNextcloudRecording(t *testing.T, raw []byte) {
	var rec ncRecording
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.FlowUser != SecondUser.Username || len(rec.Entries) == 0 {
		t.Fatalf("recording of user %q with %d entries: the replay knows bob", rec.FlowUser, len(rec.Entries))
	}
	clock := &testClock{}
	srv := startServer(t, Options{Generation: 2, NextcloudLoginForm: true, Now: clock.Now})
	u, _ := url.Parse(srv.NextcloudURL())
	_, port, _ := net.SplitHostPort(u.Host)
	r := &ncReplay{t: t, srv: srv, clock: clock, local: "http://localhost:" + port,
		bound: map[string]string{}, clients: map[string]*http.Client{}, pages: map[string]string{}}
	for _, e := range rec.Entries {
		t.Run(fmt.Sprintf("%02d %s", e.Step, e.Label), func(t *testing.T) {
			r.t = t
			r.replay(e)
		})
	}
}

var ageRE = regexp.MustCompile(`created (\d+) s ago`)

func (r *ncReplay) replay(e ncEntry) {
	if m := ageRE.FindStringSubmatch(e.Label); m != nil {
		n, _ := strconv.Atoi(m[1])
		r.clock.advance(time.Duration(n) * time.Second)
	}
	var body io.Reader
	ct := ""
	switch {
	case e.Request.Form != nil:
		f := url.Values{}
		for k, v := range e.Request.Form {
			f.Set(k, r.fill(e.Actor, v))
		}
		body, ct = strings.NewReader(f.Encode()), "application/x-www-form-urlencoded"
	case e.Request.Body != nil:
		body = strings.NewReader(r.fill(e.Actor, *e.Request.Body))
	}
	req, err := http.NewRequest(e.Request.Method, r.fill(e.Actor, e.Request.URL), body)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range e.Request.Headers {
		switch strings.ToLower(k) {
		case "authorization":
			req.Header.Set(k, r.basic(e.Actor, v))
		case "accept", "ocs-apirequest", "content-type":
			req.Header.Set(k, v)
		}
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := r.client(e.Actor).Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := e.Response
	if resp.StatusCode != want.Status {
		r.t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, want.Status, got)
	}
	if why, gap := r.gap(e.Label); gap {
		r.t.Logf("status only: %s", why)
		return
	}
	if loc := want.Headers["Location"]; loc != "" {
		r.matchLocation(e.Actor, loc, resp.Header.Get("Location"))
	}
	switch {
	case want.BodyJSON != nil:
		var act any
		if err := json.Unmarshal(got, &act); err != nil {
			r.t.Fatalf("not JSON: %.300s", got)
		}
		r.match(e.Actor, "body", want.BodyJSON, act)
	case want.HTML != nil:
		page := string(got)
		r.pages[e.Actor] = page
		r.matchPage(want.HTML.Headings, want.HTML.Paragraphs, visibleText(page))
	}
}

func (r *ncReplay) gap(label string) (string, bool) {
	for k, why := range ncStandInGaps {
		if strings.Contains(label, k) {
			return why, true
		}
	}
	return "", false
}

// client is the actor's HTTP client: a browser keeps cookies; nobody
// follows redirects, which are compared.
func (r *ncReplay) client(actor string) *http.Client {
	if c, ok := r.clients[actor]; ok {
		return c
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Timeout: 20 * time.Second, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r.clients[actor] = c
	return c
}

// value returns a placeholder's value: the stand-in's origins, bob's
// password, a bound value, or the field of that name on the last page the
// actor saw (the request token, the stateToken of the "Log in" link or
// the grant form).
func (r *ncReplay) value(actor, name string) (string, bool) {
	switch {
	case name == "base":
		return r.srv.NextcloudURL(), true
	case name == "base-localhost":
		return r.local, true
	case strings.HasPrefix(name, "user-password-"):
		return SecondUser.Password, true
	case strings.HasPrefix(name, "unknown-password-"):
		return "not-an-app-password", true
	}
	if v, ok := r.bound[name]; ok {
		return v, true
	}
	field := ""
	switch {
	case strings.HasPrefix(name, "requesttoken-"):
		field = "requesttoken"
	case strings.HasPrefix(name, "state-token-"):
		field = "stateToken"
	}
	if field != "" {
		if m := regexp.MustCompile(`name="` + field + `" value="([^"]+)"|[?&;]` + field + `=([A-Za-z0-9]+)`).FindStringSubmatch(r.pages[actor]); m != nil {
			v := m[1] + m[2]
			r.bind(name, v)
			return v, true
		}
	}
	return "", false
}

func (r *ncReplay) fill(actor, s string) string {
	return ncPlaceholderRE.ReplaceAllStringFunc(s, func(p string) string {
		v, ok := r.value(actor, p[1:len(p)-1])
		if !ok {
			r.t.Fatalf("%s: nothing bound it yet", p)
		}
		return v
	})
}

// basic fills "Basic base64(user:<app-password-N>)".
func (r *ncReplay) basic(actor, v string) string {
	m := regexp.MustCompile(`^Basic base64\((.*)\)$`).FindStringSubmatch(v)
	if m == nil {
		r.t.Fatalf("authorization %q", v)
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(r.fill(actor, m[1])))
}

// bind binds a placeholder; a value that another placeholder has is a
// failure: the recording saw two different values.
func (r *ncReplay) bind(name, v string) {
	for other, w := range r.bound {
		if w == v && other != name {
			r.t.Errorf("<%s> = <%s> = %q: the real Nextcloud gave two different values", name, other, v)
		}
	}
	r.bound[name] = v
}

// matchString compares a recorded string, whose placeholders bind, with
// an actual one.
func (r *ncReplay) matchString(actor, path, exp, act string) {
	var re strings.Builder
	re.WriteString("^")
	var names []string
	last := 0
	for _, loc := range ncPlaceholderRE.FindAllStringSubmatchIndex(exp, -1) {
		re.WriteString(regexp.QuoteMeta(exp[last:loc[0]]))
		name := exp[loc[2]:loc[3]]
		last = loc[1]
		if v, ok := r.value(actor, name); ok {
			re.WriteString(regexp.QuoteMeta(v))
			continue
		}
		re.WriteString(`([A-Za-z0-9]+)`)
		names = append(names, name)
	}
	re.WriteString(regexp.QuoteMeta(exp[last:]) + "$")
	m := regexp.MustCompile(re.String()).FindStringSubmatch(act)
	if m == nil {
		r.t.Errorf("%s: %q, want %q", path, act, exp)
		return
	}
	for i, name := range names {
		r.bind(name, m[i+1])
	}
}

// match compares recorded JSON with the stand-in's: the same keys, strings
// as patterns; of the OCS user data only the id (bob is SecondUser).
func (r *ncReplay) match(actor, path string, exp, act any) {
	switch e := exp.(type) {
	case map[string]any:
		a, ok := act.(map[string]any)
		if !ok {
			r.t.Errorf("%s: %s, want an object", path, show(act))
			return
		}
		if path == "body.ocs.data" {
			if id, _ := e["id"].(string); id != "" {
				if a["id"] != SecondUser.Subject {
					r.t.Errorf("%s.id: %v, want bob's id %s", path, a["id"], SecondUser.Subject)
				}
				return
			}
		}
		for k, v := range e {
			if _, ok := a[k]; !ok {
				r.t.Errorf("%s.%s: missing (recorded %s)", path, k, show(v))
				continue
			}
			r.match(actor, path+"."+k, v, a[k])
		}
		for k := range a {
			if _, ok := e[k]; !ok {
				r.t.Errorf("%s.%s: %s, which Nextcloud does not send", path, k, show(a[k]))
			}
		}
	case []any:
		a, ok := act.([]any)
		if !ok || len(a) != len(e) {
			r.t.Errorf("%s: %s, want %s", path, show(act), show(exp))
			return
		}
		for i := range e {
			r.match(actor, fmt.Sprintf("%s[%d]", path, i), e[i], a[i])
		}
	case string:
		s, ok := act.(string)
		if !ok {
			r.t.Errorf("%s: %s, want a string", path, show(act))
			return
		}
		r.matchString(actor, path, e, s)
	default:
		if fmt.Sprint(exp) != fmt.Sprint(act) {
			r.t.Errorf("%s: %s, want %s", path, show(act), show(exp))
		}
	}
}

// matchLocation compares a redirect by path and decoded query.
func (r *ncReplay) matchLocation(actor, exp, act string) {
	expBase, expQuery, _ := strings.Cut(exp, "?")
	a, err := url.Parse(act)
	if err != nil {
		r.t.Errorf("location %q: %v", act, err)
		return
	}
	base := a.Path
	if a.Host != "" {
		base = a.Scheme + "://" + a.Host + a.Path
	}
	r.matchString(actor, "location", expBase, base)
	want, err := url.ParseQuery(expQuery)
	if err != nil {
		r.t.Fatalf("recorded location %q: %v", exp, err)
	}
	got := a.Query()
	for k := range want {
		r.matchString(actor, "location?"+k, want.Get(k), got.Get(k))
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			r.t.Errorf("location?%s: %q, which Nextcloud does not send", k, got.Get(k))
		}
	}
}

// matchPage holds a page to the recorded one's meaning: its main heading,
// and where access is refused the reason.
func (r *ncReplay) matchPage(headings, paragraphs []string, text string) {
	var main string
	for _, h := range headings {
		if h != "Nextcloud" && h != "Security warning" {
			main = h
			break
		}
	}
	if main == "" {
		return // the login page: nothing but the product's name
	}
	if !strings.Contains(text, main) {
		r.t.Errorf("page lacks the heading %q: %q", main, text)
	}
	phrases := map[string]string{
		"Access forbidden":        paragraphs[0],
		"Account access":          "Currently logged in as",
		"Connect to your account": "Please log in before granting",
	}
	if p := phrases[main]; p != "" && !strings.Contains(text, p) {
		r.t.Errorf("page %q lacks %q: %q", main, p, text)
	}
}
