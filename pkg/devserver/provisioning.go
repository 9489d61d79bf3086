package devserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Flow types and credential types of stored credentials, as
// check_provisioning_status reports them.
const (
	// FlowType2 is the flow_type of a refresh token stored by Flow 2.
	FlowType2 = "flow2"
	// FlowTypeLoginFlowV2 is the flow_type of an app password obtained
	// through Nextcloud's Login Flow v2 (generation 2).
	FlowTypeLoginFlowV2 = "login_flow_v2"
	// CredentialRefreshToken is the credential_type of a Flow 2 refresh token.
	CredentialRefreshToken = "refresh_token"
	// CredentialAppPassword is the credential_type of a Login Flow app password.
	CredentialAppPassword = "app_password"
)

// generation1DefaultUser is the user generation 1's check_provisioning_status and
// provision_nextcloud_access look up when they are called without user_id.
const generation1DefaultUser = "default_user"

// allSupportedScopes are the app-password scopes the generation-2 server
// knows, sorted.
var allSupportedScopes = []string{
	"calendar.read", "calendar.write", "collectives.read", "collectives.write",
	"contacts.read", "contacts.write", "cookbook.read", "cookbook.write",
	"deck.read", "deck.write", "files.read", "files.write",
	"mail.read", "mail.send", "mail.write", "news.read", "news.write",
	"notes.read", "notes.write", "semantic.read", "sharing.read", "sharing.write",
	"tables.read", "tables.write", "talk.read", "talk.write", "todo.read", "todo.write",
}

// ProvisionedToken is a credential the MCP server holds for a user, as
// Server.ProvisionedToken reports it: a Flow 2 refresh token, or an app
// password from Nextcloud's Login Flow v2.
type ProvisionedToken struct {
	// CredentialType is CredentialRefreshToken or CredentialAppPassword.
	CredentialType string
	// RefreshToken is the refresh token the OP issued to the server's
	// client (Flow 2).
	RefreshToken string
	// AppPassword is the app password (Login Flow v2).
	AppPassword string
	// Username is the Nextcloud login name the app password belongs to.
	Username string
	// ProvisionedAt is when the server stored it (UTC; whole seconds for
	// Flow 2).
	ProvisionedAt time.Time
	// Scopes are the app password's scopes; nil means no restriction beyond
	// the OAuth token (and always for Flow 2).
	Scopes []string
	// ClientID is the client_id the server records for a Flow 2 token: the
	// state of the Flow 2 URL, as the real servers do.
	ClientID string
	// FlowType is FlowType2 or FlowTypeLoginFlowV2.
	FlowType string
}

// loginFlowSession is a Login Flow v2 the server started for a user and
// polls in nc_auth_check_status.
type loginFlowSession struct {
	pollToken       string
	pollEndpoint    string
	requestedScopes []string // nil: no restriction
	created         time.Time
}

// provisioning is what the server keeps per user in its database: Flow 2
// refresh tokens, app passwords, and the Login Flows in progress; and the
// tools that manage them.
type provisioning struct {
	m      *mcpServer
	client *http.Client // to the Login Flow stand-in

	mu           sync.Mutex
	flow2Tokens  map[string]ProvisionedToken
	appPasswords map[string]ProvisionedToken
	loginFlows   map[string]loginFlowSession
	// elicitations counts the answers to elicitations, by mode and action
	// ("form accept", "url decline", ...).
	elicitations map[string]int
}

func newProvisioning(m *mcpServer) *provisioning {
	return &provisioning{
		m:            m,
		client:       m.s.outgoingClient(partyNextcloud),
		flow2Tokens:  make(map[string]ProvisionedToken),
		appPasswords: make(map[string]ProvisionedToken),
		loginFlows:   make(map[string]loginFlowSession),
		elicitations: make(map[string]int),
	}
}

// countElicitation counts an answer to an elicitation.
func (p *provisioning) countElicitation(mode, action string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.elicitations[mode+" "+action]++
}

// Elicitations returns how many elicitations of that mode ("form" or "url")
// the provisioning tools sent and the client answered with that action
// ("accept", "decline" or "cancel").
func (s *Server) Elicitations(mode, action string) int {
	p := s.mcpSide.prov
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.elicitations[mode+" "+action]
}

// forgetLoginFlows forgets the Login Flows in progress (a restart).
func (p *provisioning) forgetLoginFlows() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loginFlows = make(map[string]loginFlowSession)
}

// storeFlow2 stores a Flow 2 refresh token for sub; the Flow 2 state is
// recorded as its client_id.
func (p *provisioning) storeFlow2(sub, refreshToken, state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flow2Tokens[sub] = ProvisionedToken{
		CredentialType: CredentialRefreshToken,
		RefreshToken:   refreshToken,
		ProvisionedAt:  p.m.s.now().UTC().Truncate(time.Second),
		ClientID:       state,
		FlowType:       FlowType2,
	}
}

// credential returns what the server holds for sub: the Flow 2 token,
// else the app password.
func (p *provisioning) credential(sub string) (ProvisionedToken, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.flow2Tokens[sub]
	if !ok {
		t, ok = p.appPasswords[sub]
	}
	t.Scopes = slices.Clone(t.Scopes)
	return t, ok
}

// provisionedAt formats a Flow 2 token's time as Python's isoformat does.
func provisionedAt(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }

// timestamp is the timestamp field of the nc_auth_* results.
func (p *provisioning) timestamp() string {
	return p.m.s.now().UTC().Format("2006-01-02T15:04:05.000000Z")
}

// nullable returns nil for an empty string, so that it becomes JSON null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullableList returns nil for a nil list, so that it becomes JSON null.
func nullableList(l []string) any {
	if l == nil {
		return nil
	}
	return l
}

// Generation 1's tools (optional user_id; Flow 2 only).

// provisionGen1 is generation 1's provision_nextcloud_access.
func (p *provisioning) provisionGen1(userID string) object {
	if userID == "" {
		userID = generation1DefaultUser
	}
	p.mu.Lock()
	t, ok := p.flow2Tokens[userID]
	p.mu.Unlock()
	if ok {
		return object{
			{"success", true},
			{"authorization_url", nil},
			{"message", fmt.Sprintf("Nextcloud access is already provisioned (since %s). Use 'revoke_nextcloud_access' if you want to re-provision.", provisionedAt(t.ProvisionedAt))},
			{"already_provisioned", true},
		}
	}
	u := p.m.s.opts.ProvisionURL
	if u == "" {
		u = p.m.flow2.authorizationURL()
	}
	return object{
		{"success", true},
		{"authorization_url", u},
		{"message", "Please visit the authorization URL to grant the MCP server offline access to your Nextcloud resources. This is a one-time setup that allows the server to access Nextcloud on your behalf even when you're not actively connected."},
		{"already_provisioned", false},
	}
}

// statusGen1 is generation 1's check_provisioning_status.
func (p *provisioning) statusGen1(userID string) object {
	if userID == "" {
		userID = generation1DefaultUser
	}
	p.mu.Lock()
	t, ok := p.flow2Tokens[userID]
	p.mu.Unlock()
	if !ok {
		return object{{"is_provisioned", false}, {"provisioned_at", nil}, {"client_id", nil}, {"scopes", nil}, {"flow_type", nil}}
	}
	return object{
		{"is_provisioned", true},
		{"provisioned_at", provisionedAt(t.ProvisionedAt)},
		{"client_id", t.ClientID},
		{"scopes", nullableList(t.Scopes)},
		{"flow_type", t.FlowType},
	}
}

// revokeGen1 is generation 1's revoke_nextcloud_access: it deletes the
// stored token and revokes it at the OP (unless the OP has no revocation).
func (p *provisioning) revokeGen1(ctx context.Context, userID string) object {
	p.mu.Lock()
	t, ok := p.flow2Tokens[userID]
	delete(p.flow2Tokens, userID)
	p.mu.Unlock()
	if !ok {
		return object{{"success", true}, {"message", "No Nextcloud access to revoke."}}
	}
	if !p.m.s.opts.NoRevocation {
		_ = p.m.s.up.revoke(ctx, t.RefreshToken, "refresh_token")
	}
	return object{{"success", true}, {"message", "Successfully revoked Nextcloud access. You can run 'provision_nextcloud_access' again if needed."}}
}

// Generation 2's Flow 2 tools (no arguments: the user is the token's sub).

// status2 returns what check_provisioning_status reports: an app password
// takes precedence over a Flow 2 row.
func (p *provisioning) status2(sub string) (ProvisionedToken, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.appPasswords[sub]; ok {
		return t, true
	}
	t, ok := p.flow2Tokens[sub]
	return t, ok
}

// statusGen2 is generation 2's check_provisioning_status.
func (p *provisioning) statusGen2(sub string) object {
	t, ok := p.status2(sub)
	if !ok {
		return object{{"is_provisioned", false}, {"provisioned_at", nil}, {"credential_type", nil}, {"client_id", nil}, {"scopes", nil}, {"flow_type", nil}}
	}
	var at any
	if t.CredentialType == CredentialRefreshToken {
		at = provisionedAt(t.ProvisionedAt)
	}
	return object{
		{"is_provisioned", true},
		{"provisioned_at", at},
		{"credential_type", t.CredentialType},
		{"client_id", nullable(t.ClientID)},
		{"scopes", nullableList(t.Scopes)},
		{"flow_type", t.FlowType},
	}
}

// provisionGen2 is generation 2's provision_nextcloud_access: it points at
// the Astrolabe settings page on the Nextcloud host (here the server's own
// origin) instead of a Flow 2 URL.
func (p *provisioning) provisionGen2(sub string) object {
	if t, ok := p.status2(sub); ok {
		since := "None"
		if t.CredentialType == CredentialRefreshToken {
			since = provisionedAt(t.ProvisionedAt)
		}
		return object{
			{"success", true},
			{"provisioning_url", nil},
			{"message", fmt.Sprintf("Nextcloud access is already provisioned (credential_type=%s, since %s). Use 'revoke_nextcloud_access' if you want to re-provision.", t.CredentialType, since)},
			{"already_provisioned", true},
		}
	}
	u := p.m.s.opts.ProvisionURL
	if u == "" {
		u = p.m.s.ncURL + "/settings/user/astrolabe#background-sync"
	}
	return object{
		{"success", true},
		{"provisioning_url", u},
		{"message", "Visit Astrolabe settings to provision background sync access.\n\nYou can choose either:\n- App password (works today, recommended for now)\n- OAuth refresh token (future, when Nextcloud fully supports OAuth)\n\nAfter provisioning, background sync will enable the MCP server to access Nextcloud resources even when you're not actively connected."},
		{"already_provisioned", false},
	}
}

// revokeGen2 is generation 2's revoke_nextcloud_access: it deletes an app
// password; a Flow 2 row cannot be revoked, because the server's client is
// static and its credentials are not in the server's storage.
func (p *provisioning) revokeGen2(sub string) object {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.appPasswords[sub]; ok {
		delete(p.appPasswords, sub)
		return object{{"success", true}, {"message", "Successfully revoked Nextcloud access (app password removed). You can run provisioning again if needed."}}
	}
	if _, ok := p.flow2Tokens[sub]; ok {
		return object{{"success", false}, {"message", "OAuth client credentials not found in storage."}}
	}
	return object{{"success", true}, {"message", "No Nextcloud access to revoke."}}
}

// The nc_auth_* tools: an app password through Nextcloud's Login Flow v2.

// startLoginFlow starts a Login Flow v2 at Nextcloud (the stand-in) for
// sub, over HTTP as the real server does, and keeps its polling session.
func (p *provisioning) startLoginFlow(ctx context.Context, sub string, scopes []string) (loginURL string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.m.s.ncURL+ncLoginPath, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", ServerClientID)
	resp, err := p.client.Do(req)
	if err != nil {
		return "", errors.New("the Nextcloud server is unreachable")
	}
	defer resp.Body.Close()
	var init struct {
		Poll struct {
			Token    string `json:"token"`
			Endpoint string `json:"endpoint"`
		} `json:"poll"`
		Login string `json:"login"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the Nextcloud server answered %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&init); err != nil || init.Poll.Token == "" || init.Login == "" {
		return "", errors.New("the Nextcloud server's answer is not a Login Flow v2 answer")
	}
	p.m.nc.setUser(init.Poll.Token, sub)
	p.mu.Lock()
	p.loginFlows[sub] = loginFlowSession{pollToken: init.Poll.Token, pollEndpoint: init.Poll.Endpoint,
		requestedScopes: slices.Clone(scopes), created: p.m.s.now()}
	p.mu.Unlock()
	return init.Login, nil
}

// pollResult is the outcome of one poll of a Login Flow.
type pollResult struct {
	done        bool
	loginName   string
	appPassword string
}

// pollLoginFlow polls Nextcloud once.
func (p *provisioning) pollLoginFlow(ctx context.Context, s loginFlowSession) (pollResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.pollEndpoint,
		strings.NewReader(url.Values{"token": {s.pollToken}}.Encode()))
	if err != nil {
		return pollResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", ServerClientID)
	resp, err := p.client.Do(req)
	if err != nil {
		return pollResult{}, errors.New("the Nextcloud server is unreachable")
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return pollResult{}, nil
	case http.StatusOK:
		var r struct {
			LoginName   string `json:"loginName"`
			AppPassword string `json:"appPassword"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&r); err != nil || r.AppPassword == "" {
			return pollResult{}, errors.New("the Login Flow completed but no app password was returned")
		}
		return pollResult{done: true, loginName: r.LoginName, appPassword: r.AppPassword}, nil
	}
	return pollResult{}, fmt.Errorf("the Nextcloud server answered %d", resp.StatusCode)
}

// elicitationSchema is the form the nc_auth_* tools show in a form-mode
// elicitation.
const elicitationSchema = `{"type":"object","properties":{"acknowledged":{"type":"boolean","default":false,"description":"Check this box after completing login at the provided URL"}}}`

// Outcomes of presentLoginURL.
const (
	elicitAccepted    = "accepted"
	elicitDeclined    = "declined"
	elicitCancelled   = "cancelled"
	elicitMessageOnly = "message_only"
)

// presentLoginURL asks the client, if it declared the elicitation
// capability, to have the user open the login URL: a form-mode
// elicitation/create request (or, with ElicitationURLMode and a client that
// supports it, URL mode) inside the answer to the tool call. It returns the
// user's answer, or elicitMessageOnly when there was no elicitation (the
// URL then goes into the tool result).
func (p *provisioning) presentLoginURL(ctx context.Context, req *mcp.CallToolRequest, loginURL string) string {
	if req == nil || req.Session == nil {
		return elicitMessageOnly
	}
	init := req.Session.InitializeParams()
	if init == nil || init.Capabilities == nil || init.Capabilities.Elicitation == nil {
		return elicitMessageOnly
	}
	caps := init.Capabilities.Elicitation
	message := "Please log in to Nextcloud to grant access:\n\n" + loginURL +
		"\n\nOpen this URL in your browser, log in, and grant the requested permissions. Then check the box below and click OK."
	params := &mcp.ElicitParams{Mode: "form", Message: message, RequestedSchema: json.RawMessage(elicitationSchema)}
	switch {
	case p.m.s.opts.ElicitationURLMode && caps.URL != nil:
		params = &mcp.ElicitParams{Mode: "url", Message: message, URL: loginURL, ElicitationID: randomID()}
	case caps.Form == nil && caps.URL != nil:
		return elicitMessageOnly // the client only does URL mode
	}
	res, err := req.Session.Elicit(ctx, params)
	if err != nil {
		return elicitMessageOnly
	}
	p.countElicitation(params.Mode, res.Action)
	switch res.Action {
	case "accept":
		return elicitAccepted
	case "decline":
		return elicitDeclined
	}
	return elicitCancelled
}

// ncProvision is nc_auth_provision_access(scopes?).
func (p *provisioning) ncProvision(ctx context.Context, req *mcp.CallToolRequest, sub string, scopes []string, scopesGiven bool) object {
	result := func(success bool, status string, loginURL any, message string, userID any, requested any) object {
		return object{
			{"success", success}, {"timestamp", p.timestamp()}, {"status", status}, {"login_url", loginURL},
			{"message", message}, {"user_id", userID}, {"requested_scopes", requested},
		}
	}
	p.mu.Lock()
	existing, ok := p.appPasswords[sub]
	p.mu.Unlock()
	if ok {
		granted := "no additional restriction (bounded by your OAuth token)"
		if len(existing.Scopes) > 0 {
			granted = pythonList(existing.Scopes)
		}
		return result(true, "already_provisioned", nil,
			fmt.Sprintf("Nextcloud access already provisioned for %s. Scopes: %s. Use nc_auth_update_scopes to modify permissions.", sub, granted),
			sub, nullableList(existing.Scopes))
	}
	if scopesGiven && len(scopes) == 0 {
		return result(false, "error", nil, "An empty scope list would grant nothing. Omit `scopes` to place no additional restriction beyond your OAuth token, or name the scopes you want.", nil, nil)
	}
	var invalid []string
	for _, sc := range scopes {
		if !slices.Contains(allSupportedScopes, sc) {
			invalid = append(invalid, sc)
		}
	}
	if len(invalid) > 0 {
		return result(false, "error", nil, fmt.Sprintf("Invalid scopes: %s. Valid scopes: %s", strings.Join(invalid, ", "), strings.Join(allSupportedScopes, ", ")), nil, nil)
	}
	loginURL, err := p.startLoginFlow(ctx, sub, scopes)
	if err != nil {
		return result(false, "error", nil, "Failed to start login flow: "+err.Error(), nil, nil)
	}
	if u := p.m.s.opts.ProvisionURL; u != "" {
		loginURL = u
	}
	switch p.presentLoginURL(ctx, req, loginURL) {
	case elicitDeclined:
		p.dropLoginFlow(sub)
		return result(false, "declined", loginURL, "Login declined. Call nc_auth_provision_access to start again.", sub, nullableList(scopes))
	case elicitCancelled:
		p.dropLoginFlow(sub)
		return result(false, "cancelled", loginURL, "Login cancelled. Call nc_auth_provision_access to start again.", sub, nullableList(scopes))
	case elicitAccepted:
		return result(true, "login_required", loginURL, "Login acknowledged. Call nc_auth_check_status to verify and complete provisioning.", sub, nullableList(scopes))
	}
	return result(true, "login_required", loginURL,
		"Please open this URL in your browser to log in to Nextcloud:\n\n"+loginURL+"\n\nAfter logging in, call nc_auth_check_status to complete provisioning.",
		sub, nullableList(scopes))
}

func (p *provisioning) dropLoginFlow(sub string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.loginFlows, sub)
}

// ncCheck is nc_auth_check_status: a stored app password answers at once
// (even while a scope-update flow is pending, as v0.181.0 does); else a
// pending Login Flow is polled once.
func (p *provisioning) ncCheck(ctx context.Context, sub string) object {
	result := func(success bool, status, message string, userID, scopes, username any) object {
		return object{
			{"success", success}, {"timestamp", p.timestamp()}, {"status", status}, {"message", message},
			{"user_id", userID}, {"scopes", scopes}, {"username", username},
		}
	}
	p.mu.Lock()
	existing, provisioned := p.appPasswords[sub]
	sess, pending := p.loginFlows[sub]
	p.mu.Unlock()
	if provisioned {
		name := existing.Username
		if name == "" {
			name = sub
		}
		return result(true, "provisioned", fmt.Sprintf("Nextcloud access is provisioned for %s.", name), sub, nullableList(existing.Scopes), nullable(existing.Username))
	}
	if !pending {
		return result(true, "not_initiated", "No provisioning in progress. Call nc_auth_provision_access to start.", sub, nil, nil)
	}
	if p.m.s.now().Sub(sess.created) > ncFlowTTL {
		p.dropLoginFlow(sub)
		return result(true, "not_initiated", "Login flow expired. Call nc_auth_provision_access to start a new one.", sub, nil, nil)
	}
	poll, err := p.pollLoginFlow(ctx, sess)
	if err != nil {
		return result(false, "error", "Failed to check login status: "+err.Error(), nil, nil, nil)
	}
	if !poll.done {
		return result(true, "pending", "Login flow is still pending. Please complete the login in your browser, then call this tool again.", sub, nil, nil)
	}
	p.mu.Lock()
	p.appPasswords[sub] = ProvisionedToken{
		CredentialType: CredentialAppPassword,
		AppPassword:    poll.appPassword,
		Username:       poll.loginName,
		ProvisionedAt:  p.m.s.now().UTC(),
		Scopes:         slices.Clone(sess.requestedScopes),
		FlowType:       FlowTypeLoginFlowV2,
	}
	delete(p.loginFlows, sub)
	p.mu.Unlock()
	return result(true, "provisioned", fmt.Sprintf("Nextcloud access provisioned successfully as %s.", poll.loginName), sub,
		nullableList(sess.requestedScopes), nullable(poll.loginName))
}

// ncUpdate is nc_auth_update_scopes(add_scopes?, remove_scopes?): it
// computes the new scope list (an unrestricted grant counts as every
// supported scope) and, if it differs, starts a new Login Flow; the current
// app password stays until the new one is stored.
func (p *provisioning) ncUpdate(ctx context.Context, req *mcp.CallToolRequest, sub string, add, remove []string) object {
	result := func(success bool, status string, loginURL any, message string, previous, newScopes any) object {
		return object{
			{"success", success}, {"timestamp", p.timestamp()}, {"status", status}, {"login_url", loginURL},
			{"message", message}, {"previous_scopes", previous}, {"new_scopes", newScopes},
		}
	}
	if len(add) == 0 && len(remove) == 0 {
		return result(false, "error", nil, "Name the scopes to add (add_scopes) or to remove (remove_scopes).", nil, nil)
	}
	p.mu.Lock()
	existing, ok := p.appPasswords[sub]
	p.mu.Unlock()
	if !ok {
		return result(false, "error", nil, "Not provisioned. Call nc_auth_provision_access first.", nil, nil)
	}
	previous := existing.Scopes
	current := slices.Clone(previous)
	if len(current) == 0 {
		current = slices.Clone(allSupportedScopes)
	}
	var invalid []string
	for _, sc := range add {
		if !slices.Contains(allSupportedScopes, sc) {
			invalid = append(invalid, sc)
		}
	}
	if len(invalid) > 0 {
		return result(false, "error", nil, "Invalid scopes: "+strings.Join(invalid, ", "), nil, nil)
	}
	newScopes := slices.DeleteFunc(sortedScopes(current, add), func(sc string) bool { return slices.Contains(remove, sc) })
	if len(newScopes) == 0 {
		return result(false, "error", nil, "At least one scope must remain.", nil, nil)
	}
	before := sortedScopes(current)
	if slices.Equal(newScopes, before) {
		message := "The requested scopes are the current ones: nothing to change."
		if previous == nil {
			message = "Your stored grant already places no additional restriction, so there is nothing to add here. If a tool is still denied, the missing scope is on your OAuth token, not this grant — the OIDC client must allow it and you must re-authorize."
		}
		return result(true, "unchanged", nil, message, nullableList(previous), newScopes)
	}
	loginURL, err := p.startLoginFlow(ctx, sub, newScopes)
	if err != nil {
		return result(false, "error", nil, "Failed to start the Login Flow for the scope update: "+err.Error(), nil, nil)
	}
	if u := p.m.s.opts.ProvisionURL; u != "" {
		loginURL = u
	}
	var prev any
	if len(previous) > 0 {
		prev = previous
	}
	switch p.presentLoginURL(ctx, req, loginURL) {
	case elicitDeclined:
		p.dropLoginFlow(sub)
		return result(false, "declined", loginURL, "Scope update declined. Call nc_auth_update_scopes to try again.", prev, newScopes)
	case elicitCancelled:
		p.dropLoginFlow(sub)
		return result(false, "cancelled", loginURL, "Scope update cancelled. Call nc_auth_update_scopes to try again.", prev, newScopes)
	case elicitAccepted:
		return result(true, "login_required", loginURL, "Login acknowledged for scope update. Call nc_auth_check_status to verify and complete.", prev, newScopes)
	}
	return result(true, "login_required", loginURL,
		"Scope update requires re-authentication.\n\nPlease open this URL to log in:\n"+loginURL+"\n\nAfter logging in, call nc_auth_check_status to complete.",
		prev, newScopes)
}
