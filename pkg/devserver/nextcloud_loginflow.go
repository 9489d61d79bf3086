package devserver

import (
	"crypto/rand"
	"crypto/subtle"
	"html/template"
	"net/http"
	"sync"
	"time"
)

// Paths of the Nextcloud Login Flow v2 stand-in and its OCS endpoint.
const (
	ncLoginPath = "/index.php/login/v2"
	ncPollPath  = "/index.php/login/v2/poll"
	ncFlowPath  = "/index.php/login/v2/flow/"
	ncGrantPath = "/index.php/login/v2/grant"
	ocsUserPath = "/ocs/v2.php/cloud/user"
)

// ncFlowTTL is how long a Login Flow v2 can be completed, as in Nextcloud.
const ncFlowTTL = 20 * time.Minute

// ncFlow is one Login Flow v2 at the stand-in.
type ncFlow struct {
	pollToken    string
	loginToken   string
	stateToken   string
	requestToken string
	clientName   string // the User-Agent of the client that started it
	user         string // the sub of the user logged in at the pages, if known
	created      time.Time
	used         bool // the login URL was used to grant access
	granted      bool
	loginName    string
	appPassword  string
}

// ncStandIn stands in for Nextcloud's Login Flow v2 (documented protocol,
// on the MCP server's own origin, as in the recordings where server and
// Nextcloud host coincide): POST /index.php/login/v2 starts a flow; the user
// opens the login URL, sees an "Account access" page and grants access
// (AutoApprove grants on the first GET); the poll endpoint answers 404 []
// until then, then once the app password, then 404 again. OCS
// /ocs/v2.php/cloud/user answers for the app passwords it issued.
//
// It is Nextcloud, not the MCP server: RestartServer leaves it alone.
type ncStandIn struct {
	m *mcpServer

	mu           sync.Mutex
	flows        map[string]*ncFlow // by poll token
	appPasswords map[string]string  // app password -> login name (sub)
}

func newNCStandIn(m *mcpServer) *ncStandIn {
	return &ncStandIn{m: m, flows: make(map[string]*ncFlow), appPasswords: make(map[string]string)}
}

func (n *ncStandIn) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+ncLoginPath, n.initiate)
	mux.HandleFunc("POST "+ncPollPath, n.poll)
	mux.HandleFunc("GET "+ncFlowPath+"{token}", n.page)
	mux.HandleFunc("POST "+ncGrantPath, n.grant)
	mux.HandleFunc("GET "+ocsUserPath, n.ocsUser)
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

// purgeLocked drops expired flows. The caller holds n.mu.
func (n *ncStandIn) purgeLocked(now time.Time) {
	for pt, f := range n.flows {
		if now.Sub(f.created) > ncFlowTTL {
			delete(n.flows, pt)
		}
	}
}

// initiate is POST /index.php/login/v2.
func (n *ncStandIn) initiate(w http.ResponseWriter, r *http.Request) {
	f := &ncFlow{
		pollToken:    alnum(128),
		loginToken:   alnum(128),
		stateToken:   alnum(64),
		requestToken: alnum(64),
		clientName:   r.UserAgent(),
		created:      n.m.s.now(),
	}
	if f.clientName == "" {
		f.clientName = "unknown client"
	}
	n.mu.Lock()
	n.purgeLocked(f.created)
	n.flows[f.pollToken] = f
	n.mu.Unlock()
	writeJSON(w, http.StatusOK, object{
		{"poll", object{{"token", f.pollToken}, {"endpoint", n.m.url + ncPollPath}}},
		{"login", n.m.url + ncFlowPath + f.loginToken},
	})
}

// setUser records who is logged in at the pages of the flow with that
// poll token: the server's tools know the user they start a flow for.
func (n *ncStandIn) setUser(pollToken, sub string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f, ok := n.flows[pollToken]; ok {
		f.user = sub
	}
}

// poll is POST /index.php/login/v2/poll.
func (n *ncStandIn) poll(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	token := r.PostForm.Get("token")
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
		{"server", n.m.url},
		{"loginName", f.loginName},
		{"appPassword", f.appPassword},
	})
}

// flowByLoginToken returns the open flow of a login token. The caller
// holds n.mu.
func (n *ncStandIn) flowByLoginTokenLocked(token string) (*ncFlow, bool) {
	n.purgeLocked(n.m.s.now())
	for _, f := range n.flows {
		if !f.used && subtle.ConstantTimeCompare([]byte(f.loginToken), []byte(token)) == 1 {
			return f, true
		}
	}
	return nil, false
}

// userLocked returns the user logged in at the flow's pages: the user the
// server's tool started it for, else Options.NextcloudUser.
func (n *ncStandIn) userLocked(f *ncFlow) User {
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

// grantLocked grants access: an app password for the user. The caller
// holds n.mu.
func (n *ncStandIn) grantLocked(f *ncFlow) {
	f.used, f.granted = true, true
	f.loginName = n.userLocked(f).Subject
	f.appPassword = alnum(72)
	n.appPasswords[f.appPassword] = f.loginName
}

type ncPage struct {
	Title, Heading, Text string
	User                 User
	Client               string
	StateToken           string
	RequestToken         string
	Form                 bool
}

var ncPageTemplate = template.Must(template.New("nc").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}} - Nextcloud (ncmcp development server stand-in)</title></head>
<body>
<h1>{{.Heading}}</h1>
{{if .Form}}<p>Currently logged in as {{.User.Name}} ({{.User.Subject}}).</p>
<p>You are about to grant "{{.Client}}" access to your Nextcloud account.</p>
<form method="post" action="` + ncGrantPath + `">
<input type="hidden" name="stateToken" value="{{.StateToken}}">
<input type="hidden" name="requesttoken" value="{{.RequestToken}}">
<button type="submit" id="grant">Grant access</button>
</form>{{else}}<p>{{.Text}}</p>{{end}}
</body>
</html>
`))

var (
	ncConnected = ncPage{Title: "Account connected", Heading: "Account connected", Text: "Your client should now be connected! You can close this window."}
	ncForbidden = ncPage{Title: "Access forbidden", Heading: "Access forbidden", Text: "Your login token is invalid or has expired"}
)

// page is GET /index.php/login/v2/flow/{token}: the "Account access" page,
// or with AutoApprove the grant at once; a used or unknown token is
// forbidden.
func (n *ncStandIn) page(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	f, ok := n.flowByLoginTokenLocked(r.PathValue("token"))
	var p ncPage
	switch {
	case !ok:
		p = ncForbidden
	case n.m.s.opts.AutoApprove:
		n.grantLocked(f)
		p = ncConnected
	default:
		p = ncPage{Title: "Account access", Heading: "Account access", User: n.userLocked(f), Client: f.clientName,
			StateToken: f.stateToken, RequestToken: f.requestToken, Form: true}
	}
	n.mu.Unlock()
	status := http.StatusOK
	if !ok {
		status = http.StatusForbidden
	}
	writeHTML(w, status, ncPageTemplate, p)
}

// grant is POST /index.php/login/v2/grant, the "Grant access" button.
func (n *ncStandIn) grant(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	state, request := r.PostForm.Get("stateToken"), r.PostForm.Get("requesttoken")
	n.mu.Lock()
	n.purgeLocked(n.m.s.now())
	var found *ncFlow
	for _, f := range n.flows {
		if !f.used && state != "" && f.stateToken == state && f.requestToken == request {
			found = f
		}
	}
	if found != nil {
		n.grantLocked(found)
	}
	n.mu.Unlock()
	if found == nil {
		writeHTML(w, http.StatusForbidden, ncPageTemplate, ncForbidden)
		return
	}
	writeHTML(w, http.StatusOK, ncPageTemplate, ncConnected)
}

// ocsUser is GET /ocs/v2.php/cloud/user, authenticated with an app password.
func (n *ncStandIn) ocsUser(w http.ResponseWriter, r *http.Request) {
	login, password, ok := r.BasicAuth()
	n.mu.Lock()
	owner, known := n.appPasswords[password]
	n.mu.Unlock()
	var user User
	if ok && known && owner == login {
		user, known = n.m.s.store.userBySubject(owner)
	}
	if !ok || !known || owner != login {
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
