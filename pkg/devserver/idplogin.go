package devserver

import (
	"context"
	"html/template"
	"net/http"
	"slices"
	"strings"
)

// loginPath is where the OP sends the browser to log in, with the auth
// request id in the "id" query parameter.
const loginPath = "/login"

// loginUI is the OP's login page. A successful login completes the auth
// request and sends the browser back to the OP's authorize callback, which
// redirects to the client with the code.
type loginUI struct {
	store       *storage
	autoApprove bool
	autoDeny    bool
	denyClients []string
	// deny answers the client that the user refused (access_denied).
	deny func(w http.ResponseWriter, r *http.Request, ar *authRequest)
	// callbackURL returns the OP's authorize callback for an auth request id.
	callbackURL func(ctx context.Context, id string) string
}

type loginPage struct {
	ID       string
	ClientID string
	Scopes   string
	Username string
	Error    string
	Users    []User
}

var loginTemplate = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - ncmcp development server</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 26rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
.dev { background: #fff3cd; border: 1px solid #e0c36a; padding: .5rem .75rem; font-size: .9rem; }
.error { color: #a40000; font-weight: bold; }
label { display: block; margin: .75rem 0; }
input[type=text], input[type=password] { display: block; width: 100%; padding: .4rem; box-sizing: border-box; }
button { padding: .5rem 1.25rem; }
code { background: #eee; padding: 0 .2rem; }
</style>
</head>
<body>
<p class="dev">ncmcp development server: a test identity provider, not for production.</p>
<h1>Sign in</h1>
<p>Client <strong>{{.ClientID}}</strong> asks for the scopes <code>{{.Scopes}}</code>.</p>
{{if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="` + loginPath + `">
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username
<input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username" autofocus required></label>
<label for="password">Password
<input type="password" id="password" name="password" autocomplete="current-password" required></label>
<button type="submit" id="submit" name="action" value="approve">Sign in</button>
<button type="submit" id="deny" name="action" value="deny" formnovalidate>Deny</button>
</form>
<p>Test users:{{range .Users}} <code>{{.Username}}</code> / <code>{{.Password}}</code>{{end}}</p>
</body>
</html>
`))

func (l *loginUI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		l.show(w, r)
	case http.MethodPost:
		l.submit(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (l *loginUI) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	ar, ok := l.store.pendingAuthRequest(id)
	if !ok {
		http.Error(w, "unknown or expired login request: start the login again", http.StatusBadRequest)
		return
	}
	if l.autoDeny || slices.Contains(l.denyClients, ar.clientID) {
		l.deny(w, r, ar)
		return
	}
	if l.autoApprove {
		l.complete(w, r, id, DefaultUser)
		return
	}
	l.render(w, http.StatusOK, l.page(ar, "", ""))
}

func (l *loginUI) submit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("id")
	ar, ok := l.store.pendingAuthRequest(id)
	if !ok {
		http.Error(w, "unknown or expired login request: start the login again", http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("action") == "deny" {
		l.deny(w, r, ar)
		return
	}
	username := r.PostForm.Get("username")
	user, ok := l.store.checkCredentials(username, r.PostForm.Get("password"))
	if !ok {
		l.render(w, http.StatusUnauthorized, l.page(ar, username, "Wrong username or password."))
		return
	}
	l.complete(w, r, id, user)
}

func (l *loginUI) complete(w http.ResponseWriter, r *http.Request, id string, user User) {
	if err := l.store.completeAuthRequest(id, user.Subject); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, l.callbackURL(r.Context(), id), http.StatusFound)
}

func (l *loginUI) page(ar *authRequest, username, errMsg string) loginPage {
	return loginPage{
		ID:       ar.id,
		ClientID: ar.clientID,
		Scopes:   strings.Join(ar.scopes, " "),
		Username: username,
		Error:    errMsg,
		Users:    l.store.users,
	}
}

func (l *loginUI) render(w http.ResponseWriter, status int, p loginPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = loginTemplate.Execute(w, p)
}
