package devserver

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Paths of the Nextcloud Login Flow v2 stand-in, its login page and its OCS
// endpoint.
const (
	ncLoginPath     = "/index.php/login/v2"
	ncLoginPathBare = "/login/v2"
	ncPollPath      = "/index.php/login/v2/poll"
	ncFlowPath      = "/index.php/login/v2/flow/"
	ncPickerPath    = "/index.php/login/v2/flow"
	ncGrantPath     = "/index.php/login/v2/grant"
	ncUserLoginPath = "/index.php/login"
	ocsUserPath     = "/ocs/v2.php/cloud/user"
	ncSettingsPath  = "/settings/user/astrolabe"
)

// ncFlowTTL is how long a Login Flow v2 can be completed, as in Nextcloud.
const ncFlowTTL = 20 * time.Minute

// maxNCSessions bounds the browser sessions the stand-in keeps.
const maxNCSessions = 1000

// ncFlow is one Login Flow v2 at the stand-in.
type ncFlow struct {
	pollToken   string
	loginToken  string
	stateToken  string // the current one: every showing of the picker makes a new one
	clientName  string // the User-Agent of the client that started it
	user        string // the sub of the user the server's tool started it for, if any
	created     time.Time
	granted     bool
	loginName   string
	appPassword string
	server      string // the browser's origin at grant time
}

// ncSession is one browser's session at the stand-in's pages.
type ncSession struct {
	flow      *ncFlow // the flow whose login URL the browser opened
	user      *User   // logged in as, if at all
	loginName string  // as typed at the login form
	created   time.Time
	// requestTokens are the CSRF tokens of the pages shown, newest last:
	// every page has a new one, each valid for the session.
	requestTokens []string
}

// maxRequestTokens bounds the request tokens a session keeps.
const maxRequestTokens = 20

// newRequestTokenLocked issues a request token for a page of the session.
// The caller holds n.mu.
func (s *ncSession) newRequestTokenLocked() string {
	t := alnum(64)
	s.requestTokens = append(s.requestTokens, t)
	if len(s.requestTokens) > maxRequestTokens {
		s.requestTokens = s.requestTokens[1:]
	}
	return t
}

// validRequestTokenLocked tells whether t is a request token of the
// session. The caller holds n.mu.
func (s *ncSession) validRequestTokenLocked(t string) bool {
	for _, v := range s.requestTokens {
		if t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(v)) == 1 {
			return true
		}
	}
	return false
}

// ncAppPassword is an app password the stand-in issued.
type ncAppPassword struct {
	user      string // the Nextcloud user id (the test user's sub)
	loginName string
}

// ncStandIn stands in for Nextcloud's Login Flow v2 as a real Nextcloud 32
// shows it (testdata/recordings/nextcloud-32.0.1): POST /index.php/login/v2
// starts a flow, with its URLs on the host the request named; the login URL
// answers 303 to a "Connect to your account" page whose "Log in" link
// carries a new stateToken at every showing; the "Account access" page
// grants with that stateToken and a request token; the poll endpoint
// answers 404 [] until then, then once the app password, the login name
// and the browser's origin at grant time, then 404 again. The browser
// counts as logged in as the user the flow is for, unless
// Options.NextcloudLoginForm, where it logs in through a form and the login
// name is what was typed. OCS /ocs/v2.php/cloud/user answers for the app
// passwords it issued. With AutoApprove the page after the login URL
// grants at once.
//
// It is Nextcloud, not the MCP server: RestartServer leaves it alone.
type ncStandIn struct {
	m *mcpServer

	// cookie names the browser session of the pages: like Nextcloud's
	// "oc" and the instance id, so that browsers keep the sessions of
	// two stand-ins on one host apart.
	cookie string

	mu           sync.Mutex
	flows        map[string]*ncFlow // by poll token
	sessions     map[string]*ncSession
	appPasswords map[string]ncAppPassword
}

func newNCStandIn(m *mcpServer) *ncStandIn {
	return &ncStandIn{m: m, cookie: "oc" + strings.ToLower(alnum(12)), flows: make(map[string]*ncFlow), sessions: make(map[string]*ncSession),
		appPasswords: make(map[string]ncAppPassword)}
}

func (n *ncStandIn) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+ncLoginPath, n.initiate)
	mux.HandleFunc("POST "+ncLoginPathBare, n.initiate)
	mux.HandleFunc("POST "+ncPollPath, n.poll)
	// Nextcloud answers other methods there with 405.
	mux.HandleFunc(ncLoginPath, methodNotAllowed)
	mux.HandleFunc(ncPollPath, methodNotAllowed)
	mux.HandleFunc("GET "+ncFlowPath+"{token}", n.open)
	mux.HandleFunc("GET "+ncPickerPath, n.picker)
	mux.HandleFunc("GET "+ncGrantPath, n.grantPage)
	mux.HandleFunc("POST "+ncGrantPath, n.grant)
	mux.HandleFunc("GET "+ncUserLoginPath, n.loginPage)
	mux.HandleFunc("POST "+ncUserLoginPath, n.login)
	mux.HandleFunc("GET "+ocsUserPath, n.ocsUser)
	mux.HandleFunc("GET "+ncSettingsPath, n.settings)
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusMethodNotAllowed)
}

// alnum returns n random letters and digits, like Nextcloud's tokens.
func alnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// origin is the scheme and host the request was sent to: Nextcloud builds
// its URLs from the host the client named.
func origin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// purgeLocked drops expired flows and sessions. The caller holds n.mu.
func (n *ncStandIn) purgeLocked(now time.Time) {
	for pt, f := range n.flows {
		if now.Sub(f.created) > ncFlowTTL {
			delete(n.flows, pt)
		}
	}
	for id, s := range n.sessions {
		if now.Sub(s.created) > ncFlowTTL {
			delete(n.sessions, id)
		}
	}
}

// initiate is POST /index.php/login/v2 (or /login/v2).
func (n *ncStandIn) initiate(w http.ResponseWriter, r *http.Request) {
	f := &ncFlow{
		pollToken:  alnum(128),
		loginToken: alnum(128),
		clientName: r.UserAgent(),
		created:    n.m.s.now(),
	}
	if f.clientName == "" {
		f.clientName = "unknown client"
	}
	n.mu.Lock()
	n.purgeLocked(f.created)
	n.flows[f.pollToken] = f
	n.mu.Unlock()
	base := origin(r)
	writeJSON(w, http.StatusOK, object{
		{"poll", object{{"token", f.pollToken}, {"endpoint", base + ncPollPath}}},
		{"login", base + ncFlowPath + f.loginToken},
	})
}

// setUser records who the flow with that poll token is for: the server's
// tools know the user they start a flow for.
func (n *ncStandIn) setUser(pollToken, sub string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f, ok := n.flows[pollToken]; ok {
		f.user = sub
	}
}

// poll is POST /index.php/login/v2/poll, with the token as a form field or
// in a JSON body.
func (n *ncStandIn) poll(w http.ResponseWriter, r *http.Request) {
	token := ""
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		var body struct {
			Token string `json:"token"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body)
		token = body.Token
	} else {
		_ = r.ParseForm()
		token = r.PostForm.Get("token")
	}
	if token == "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "Internal Server Error")
		return
	}
	n.mu.Lock()
	n.purgeLocked(n.m.s.now())
	f, ok := n.flows[token]
	if ok && f.granted {
		delete(n.flows, token)
	}
	n.mu.Unlock()
	if !ok || !f.granted {
		writeJSON(w, http.StatusNotFound, []string{})
		return
	}
	writeJSON(w, http.StatusOK, object{
		{"server", f.server},
		{"loginName", f.loginName},
		{"appPassword", f.appPassword},
	})
}

// flowByLoginTokenLocked returns the open flow of a login token. The
// caller holds n.mu.
func (n *ncStandIn) flowByLoginTokenLocked(token string) (*ncFlow, bool) {
	n.purgeLocked(n.m.s.now())
	for _, f := range n.flows {
		if subtle.ConstantTimeCompare([]byte(f.loginToken), []byte(token)) == 1 {
			return f, true
		}
	}
	return nil, false
}

// sessionLocked returns the browser's session with a flow still open, if
// any. The caller holds n.mu.
func (n *ncStandIn) sessionLocked(r *http.Request) (*ncSession, bool) {
	c, err := r.Cookie(n.cookie)
	if err != nil {
		return nil, false
	}
	n.purgeLocked(n.m.s.now())
	s, ok := n.sessions[c.Value]
	if !ok || s.flow == nil || n.flows[s.flow.pollToken] != s.flow {
		return nil, false
	}
	return s, true
}

// flowUserLocked returns the user a flow is for: the user the server's
// tool started it for, else Options.NextcloudUser.
func (n *ncStandIn) flowUserLocked(f *ncFlow) User {
	for _, u := range n.m.s.store.users {
		if f.user != "" && u.Subject == f.user {
			return u
		}
	}
	for _, u := range n.m.s.store.users {
		if u.Username == n.m.s.opts.NextcloudUser {
			return u
		}
	}
	return DefaultUser
}

// loggedInLocked returns who the browser is logged in as: the user of the
// login form, or without NextcloudLoginForm the user the flow is for.
func (n *ncStandIn) loggedInLocked(s *ncSession) (*User, bool) {
	if s.user == nil && !n.m.s.opts.NextcloudLoginForm {
		u := n.flowUserLocked(s.flow)
		s.user, s.loginName = &u, u.Subject
	}
	return s.user, s.user != nil
}

// grantLocked grants access: an app password for the browser's user. The
// caller holds n.mu.
func (n *ncStandIn) grantLocked(s *ncSession, server string) {
	f := s.flow
	f.granted = true
	f.loginName = s.loginName
	f.server = server
	f.appPassword = alnum(72)
	n.appPasswords[f.appPassword] = ncAppPassword{user: s.user.Subject, loginName: s.loginName}
}

type ncPage struct {
	Title, Heading string
	Text           []string
	User           *User
	Client         string
	// Link is the "Log in" link of the picker.
	Link string
	// Grant shows the grant form; Login the login form.
	Grant, Login bool
	StateToken   string
	RequestToken string
	Redirect     string
}

var ncPageTemplate = template.Must(template.New("nc").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}} - Nextcloud (ncmcp development server stand-in)</title></head>
<body>
<h1>{{.Heading}}</h1>
{{range .Text}}<p>{{.}}</p>
{{end}}{{if .Link}}<p><a id="login" href="{{.Link}}">Log in</a></p>
{{end}}{{if .Grant}}<p>Currently logged in as {{.User.Name}} ({{.User.Subject}}).</p>
<p>You are about to grant "{{.Client}}" access to your Nextcloud account.</p>
<form method="post" action="` + ncGrantPath + `">
<input type="hidden" name="stateToken" value="{{.StateToken}}">
<input type="hidden" name="requesttoken" value="{{.RequestToken}}">
<button type="submit" id="grant">Grant access</button>
</form>
{{end}}{{if .Login}}<form method="post" action="` + ncUserLoginPath + `">
<label>Account name or email <input name="user" autocomplete="username"></label>
<label>Password <input name="password" type="password"></label>
<input type="hidden" name="requesttoken" value="{{.RequestToken}}">
<input type="hidden" name="redirect_url" value="{{.Redirect}}">
<button type="submit" id="submit">Log in</button>
</form>
{{end}}</body>
</html>
`))

func ncText(title string, text ...string) ncPage {
	return ncPage{Title: title, Heading: title, Text: text}
}

var (
	ncConnected = ncText("Account connected", "Your client should now be connected! You can close this window.")
	ncForbidden = ncText("Access forbidden", "Your login token is invalid or has expired")
	ncBadState  = ncText("Access forbidden", "State token does not match")
	ncBadCSRF   = ncText("Access forbidden", "CSRF check failed")
)

// open is GET /index.php/login/v2/flow/{token}, the login URL: the
// browser's session (kept, with its login, from an earlier flow) turns to
// this flow, and 303 to the picker; an unknown, expired or polled flow's
// token is forbidden.
func (n *ncStandIn) open(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	f, ok := n.flowByLoginTokenLocked(r.PathValue("token"))
	var id string
	if ok {
		var s *ncSession
		if c, err := r.Cookie(n.cookie); err == nil && n.sessions[c.Value] != nil {
			id, s = c.Value, n.sessions[c.Value]
		} else {
			id, s = alnum(32), &ncSession{}
			n.sessions[id] = s
			n.boundSessionsLocked()
		}
		s.flow, s.created = f, n.m.s.now()
		if !n.m.s.opts.NextcloudLoginForm {
			// logged in as the user this flow is for
			s.user, s.loginName = nil, ""
		}
	}
	n.mu.Unlock()
	if !ok {
		writeHTML(w, http.StatusForbidden, ncPageTemplate, ncForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: n.cookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Location", origin(r)+ncPickerPath+"?user=&direct=0")
	w.WriteHeader(http.StatusSeeOther)
}

// boundSessionsLocked drops the oldest sessions beyond maxNCSessions.
func (n *ncStandIn) boundSessionsLocked() {
	for len(n.sessions) > maxNCSessions {
		var oldest string
		for id, s := range n.sessions {
			if oldest == "" || s.created.Before(n.sessions[oldest].created) {
				oldest = id
			}
		}
		delete(n.sessions, oldest)
	}
}

// picker is GET /index.php/login/v2/flow: "Connect to your account", whose
// "Log in" link carries a new stateToken; with AutoApprove the grant at
// once.
func (n *ncStandIn) picker(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	s, ok := n.sessionLocked(r)
	var p ncPage
	switch {
	case !ok:
		p = ncForbidden
	case s.flow.granted:
		p = ncConnected
	case n.m.s.opts.AutoApprove:
		if _, in := n.loggedInLocked(s); !in {
			u := n.flowUserLocked(s.flow)
			s.user, s.loginName = &u, u.Subject
		}
		n.grantLocked(s, origin(r))
		p = ncConnected
	default:
		s.flow.stateToken = alnum(64)
		p = ncText("Connect to your account",
			"Please log in before granting "+s.flow.clientName+" access to your Nextcloud account.",
			"Security warning: if you are not trying to set up a new device or app, someone is trying to trick you into granting them access to your data. In this case do not proceed and instead contact your system administrator.")
		p.Link = ncGrantPath + "?" + url.Values{"stateToken": {s.flow.stateToken}, "user": {""}, "direct": {"0"}}.Encode()
	}
	n.mu.Unlock()
	status := http.StatusOK
	if !ok {
		status = http.StatusForbidden
	}
	writeHTML(w, status, ncPageTemplate, p)
}

// grantPage is GET /index.php/login/v2/grant?stateToken=...: "Account
// access", or 303 to the login form when the browser is not logged in.
func (n *ncStandIn) grantPage(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	s, ok := n.sessionLocked(r)
	var (
		p        ncPage
		status   = http.StatusOK
		redirect string
	)
	switch {
	case !ok:
		n.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, object{{"message", "Current user is not logged in"}})
		return
	case s.flow.stateToken == "" || subtle.ConstantTimeCompare([]byte(s.flow.stateToken), []byte(r.URL.Query().Get("stateToken"))) != 1:
		p, status = ncBadState, http.StatusForbidden
	default:
		if u, in := n.loggedInLocked(s); in {
			p = ncPage{Title: "Account access", Heading: "Account access", User: u, Client: s.flow.clientName,
				Grant: true, StateToken: s.flow.stateToken, RequestToken: s.newRequestTokenLocked()}
		} else {
			redirect = ncUserLoginPath + "?" + url.Values{"redirect_url": {r.URL.RequestURI()}}.Encode()
		}
	}
	n.mu.Unlock()
	if redirect != "" {
		w.Header().Set("Location", redirect)
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	writeHTML(w, status, ncPageTemplate, p)
}

// loginPage is GET /index.php/login: the login form.
func (n *ncStandIn) loginPage(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	s, ok := n.sessionLocked(r)
	var p ncPage
	if ok {
		p = ncPage{Title: "Login", Heading: "Log in to Nextcloud", Login: true, RequestToken: s.newRequestTokenLocked(), Redirect: r.URL.Query().Get("redirect_url")}
	}
	n.mu.Unlock()
	if !ok {
		writeHTML(w, http.StatusForbidden, ncPageTemplate, ncForbidden)
		return
	}
	writeHTML(w, http.StatusOK, ncPageTemplate, p)
}

// login is POST /index.php/login: a test user's username or sub, in any
// case, and password. The login name is kept as typed.
func (n *ncStandIn) login(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	typed, password := r.PostForm.Get("user"), r.PostForm.Get("password")
	n.mu.Lock()
	s, ok := n.sessionLocked(r)
	var user *User
	for _, u := range n.m.s.store.users {
		if typed != "" && (strings.EqualFold(typed, u.Username) || strings.EqualFold(typed, u.Subject)) &&
			subtle.ConstantTimeCompare([]byte(password), []byte(u.Password)) == 1 {
			user = &u
			break
		}
	}
	var p ncPage
	switch {
	case !ok:
		p = ncForbidden
	case !s.validRequestTokenLocked(r.PostForm.Get("requesttoken")):
		n.mu.Unlock()
		writeHTML(w, http.StatusPreconditionFailed, ncPageTemplate, ncBadCSRF)
		return
	case user == nil:
		p = ncPage{Title: "Login", Heading: "Log in to Nextcloud", Text: []string{"Wrong login or password."}, Login: true,
			RequestToken: s.newRequestTokenLocked(), Redirect: r.PostForm.Get("redirect_url")}
	default:
		s.user, s.loginName = user, typed
	}
	n.mu.Unlock()
	if !ok {
		writeHTML(w, http.StatusForbidden, ncPageTemplate, p)
		return
	}
	if user == nil {
		writeHTML(w, http.StatusOK, ncPageTemplate, p)
		return
	}
	back := r.PostForm.Get("redirect_url")
	if !strings.HasPrefix(back, "/index.php/") || strings.HasPrefix(back, "//") {
		back = ncPickerPath + "?user=&direct=0"
	}
	w.Header().Set("Location", origin(r)+back)
	w.WriteHeader(http.StatusSeeOther)
}

// grant is POST /index.php/login/v2/grant, the "Grant access" button.
func (n *ncStandIn) grant(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	state, request := r.PostForm.Get("stateToken"), r.PostForm.Get("requesttoken")
	n.mu.Lock()
	s, ok := n.sessionLocked(r)
	var (
		p      = ncConnected
		status = http.StatusOK
	)
	switch {
	case !ok:
		p, status = ncForbidden, http.StatusForbidden
	case !s.validRequestTokenLocked(request):
		p, status = ncBadCSRF, http.StatusPreconditionFailed
	case s.flow.granted:
	case s.flow.stateToken == "" || subtle.ConstantTimeCompare([]byte(state), []byte(s.flow.stateToken)) != 1:
		p, status = ncBadState, http.StatusForbidden
	default:
		if _, in := n.loggedInLocked(s); in {
			n.grantLocked(s, origin(r))
		} else {
			p, status = ncForbidden, http.StatusForbidden
		}
	}
	n.mu.Unlock()
	writeHTML(w, status, ncPageTemplate, p)
}

// ocsUser is GET /ocs/v2.php/cloud/user, authenticated with an app
// password and its login name (in any case) or user id.
func (n *ncStandIn) ocsUser(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("OCS-APIRequest") != "true" {
		writeJSON(w, http.StatusPreconditionFailed, object{{"message", "CSRF check failed"}})
		return
	}
	login, password, ok := r.BasicAuth()
	n.mu.Lock()
	pw, known := n.appPasswords[password]
	n.mu.Unlock()
	var user User
	if ok && known && (strings.EqualFold(login, pw.loginName) || login == pw.user) {
		user, known = n.m.s.store.userBySubject(pw.user)
	} else {
		known = false
	}
	if !known {
		writeJSON(w, http.StatusUnauthorized, object{{"ocs", object{
			{"meta", object{{"status", "failure"}, {"statuscode", 997}, {"message", "Current user is not logged in"}}},
			{"data", []string{}},
		}}})
		return
	}
	writeJSON(w, http.StatusOK, object{{"ocs", object{
		{"meta", object{{"status", "ok"}, {"statuscode", 200}, {"message", "OK"}}},
		{"data", object{{"id", user.Subject}, {"display-name", user.Name}, {"email", user.Email}, {"enabled", true}}},
	}}})
}

// settings is GET /settings/user/astrolabe, the page newer servers'
// provision_nextcloud_access names: where a user would set up the
// server's background access by hand.
func (n *ncStandIn) settings(w http.ResponseWriter, _ *http.Request) {
	writeHTML(w, http.StatusOK, ncPageTemplate, ncText("Astrolabe settings",
		"Background sync: give the MCP server access to your Nextcloud with an app password (stand-in page: nothing to do here)."))
}
