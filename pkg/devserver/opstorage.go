package devserver

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// authRequestTTL bounds how long a login may take and how long an
	// authorization code stays redeemable after it was issued.
	authRequestTTL = 10 * time.Minute
	// refreshTokenTTL is the lifetime of a refresh token.
	refreshTokenTTL = 24 * time.Hour
	// DefaultRefreshReuseInterval is Dex's refresh token reuse interval
	// (the default of Options.RefreshReuseInterval): for that long after a
	// refresh token was issued (or rotated) a refresh with it returns the
	// same token, and the token it replaced still works (and also returns
	// the new one).
	DefaultRefreshReuseInterval = 3 * time.Second
)

// tokenEndpointKey marks the context of a request to the OP's token endpoint.
type tokenEndpointKey struct{}

// authRequest is one authorization request of the OP. The storage keeps the
// master copies; zitadel only ever sees clones, so it never reads memory that
// another request changes.
type authRequest struct {
	id            string
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	subject       string
	authTime      time.Time
	sid           string // the login session, Dex's sid claim
	done          bool
	created       time.Time
	code          string
	codeIssued    time.Time
}

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	if a.codeChallenge != nil {
		cc := *a.codeChallenge
		c.codeChallenge = &cc
	}
	return &c
}

func (a *authRequest) GetID() string    { return a.id }
func (a *authRequest) GetACR() string   { return "" }
func (a *authRequest) GetAMR() []string { return amrFor(a.done) }
func (a *authRequest) GetAudience() []string {
	aud, _ := tokenAudience(a.clientID, a.scopes)
	return aud
}
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return slices.Clone(a.scopes) }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

func amrFor(done bool) []string {
	if done {
		return []string{"pwd"}
	}
	return nil
}

// refreshTokenRequest is what a refresh token stands for, handed to zitadel
// for one refresh_token grant.
type refreshTokenRequest struct {
	record   *refreshTokenRecord // read only under storage.mu
	clientID string
	subject  string
	scopes   []string
	authTime time.Time
}

func (r *refreshTokenRequest) GetAMR() []string { return []string{"pwd"} }
func (r *refreshTokenRequest) GetAudience() []string {
	aud, _ := tokenAudience(r.clientID, r.scopes)
	return aud
}
func (r *refreshTokenRequest) GetAuthTime() time.Time           { return r.authTime }
func (r *refreshTokenRequest) GetClientID() string              { return r.clientID }
func (r *refreshTokenRequest) GetScopes() []string              { return slices.Clone(r.scopes) }
func (r *refreshTokenRequest) GetSubject() string               { return r.subject }
func (r *refreshTokenRequest) SetCurrentScopes(scopes []string) { r.scopes = slices.Clone(scopes) }

// grant is what every token of one login carries: who logged in, when, in
// which session, for which client, scopes and nonce.
type grant struct {
	clientID string
	subject  string
	scopes   []string
	nonce    string
	authTime time.Time
	sid      string
}

// accessTokenRecord is an issued access token; its id is the token's jti.
type accessTokenRecord struct {
	grant
	id string
	// made is when the token was made (the ID token issued with it keeps
	// Dex's iat and exp from this moment).
	made time.Time
	// issued is when the token counts as issued (its iat claim): the
	// lifetime before expires, up to a second before made (see
	// newAccessTokenLocked).
	issued time.Time
	// expires is when the token stops working: the moment it was made plus
	// the token response's expires_in (its exp claim is this, truncated to
	// the second).
	expires time.Time
	// expiresIn is the token response's expires_in, in seconds.
	expiresIn int64
}

// refreshTokenRecord is one refresh token, with Dex's rotation state: token
// is the current token; obsolete the one it replaced, which keeps working
// (and yields token) until the reuse interval after lastUsed.
type refreshTokenRecord struct {
	grant
	token         string
	obsolete      string
	lastUsed      time.Time // when token was issued
	expires       time.Time
	accessTokenID string // the access token issued last with this refresh token
}

// sessionKey identifies a user's refresh token at one client: Dex keeps one
// per user and client.
type sessionKey struct{ subject, clientID string }

// signingKey is the OP's RSA key; it implements both op.SigningKey and op.Key.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// storage implements op.Storage in memory. Every field below mu is guarded
// by it; users and key never change after construction. The clients map
// changes with dynamic client registration and is guarded by clientsMu; its
// values are never changed once they are in the map (a change replaces the
// value).
type storage struct {
	// noRotation keeps refresh tokens valid when used (Options.NoRefreshRotation).
	noRotation bool
	// reuseInterval is Options.RefreshReuseInterval.
	reuseInterval time.Duration
	// multipleRefreshTokens lets a user hold several refresh tokens at one
	// client (Options.MultipleRefreshTokens); by default a new one replaces
	// the user's previous one, as with Dex.
	multipleRefreshTokens bool

	users     []User
	key       *signingKey
	accessTTL time.Duration
	now       func() time.Time

	clientsMu sync.RWMutex
	clients   map[string]*opClient

	mu            sync.Mutex
	authRequests  map[string]*authRequest
	codes         map[string]string // authorization code -> auth request id
	accessTokens  map[string]*accessTokenRecord
	refreshTokens map[string]*refreshTokenRecord // by current and obsolete token
	sessions      map[sessionKey]*refreshTokenRecord
}

var _ op.Storage = (*storage)(nil)
var _ op.CanSetUserinfoFromRequest = (*storage)(nil)

func newStorage(clients map[string]*opClient, users []User, key *signingKey, accessTTL time.Duration, now func() time.Time) *storage {
	return &storage{
		clients:       clients,
		users:         users,
		key:           key,
		accessTTL:     accessTTL,
		now:           now,
		authRequests:  make(map[string]*authRequest),
		codes:         make(map[string]string),
		accessTokens:  make(map[string]*accessTokenRecord),
		refreshTokens: make(map[string]*refreshTokenRecord),
		sessions:      make(map[sessionKey]*refreshTokenRecord),
	}
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomToken returns 32 random bytes, base64url-encoded without padding
// (43 characters, like Python's secrets.token_urlsafe(32)).
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *storage) userBySubject(sub string) (User, bool) {
	for _, u := range s.users {
		if u.Subject == sub {
			return u, true
		}
	}
	return User{}, false
}

// checkCredentials returns the user with that username and password.
func (s *storage) checkCredentials(username, password string) (User, bool) {
	for _, u := range s.users {
		if u.Username == username && u.Password == password {
			return u, true
		}
	}
	return User{}, false
}

// pendingAuthRequest returns a copy of an auth request that still waits for
// its login.
func (s *storage) pendingAuthRequest(id string) (*authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || ar.done || s.now().Sub(ar.created) > authRequestTTL {
		return nil, false
	}
	return ar.clone(), true
}

// completeAuthRequest records that subject logged in for the auth request,
// in a new login session.
func (s *storage) completeAuthRequest(id, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || ar.done || s.now().Sub(ar.created) > authRequestTTL {
		return errors.New("unknown or expired login request")
	}
	ar.subject = subject
	ar.authTime = s.now().UTC()
	ar.sid = randomID()
	ar.done = true
	return nil
}

// codeInfo is what the token endpoint needs to know about a code before
// zitadel redeems it.
type codeInfo struct {
	clientID     string
	redirectURI  string
	hasChallenge bool
}

// code returns the live authorization code's request.
func (s *storage) code(code string) (codeInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[s.codes[code]]
	if !ok || code == "" || s.now().Sub(ar.codeIssued) > authRequestTTL {
		return codeInfo{}, false
	}
	return codeInfo{clientID: ar.clientID, redirectURI: ar.redirectURI, hasChallenge: ar.codeChallenge != nil}, true
}

// purgeLocked drops expired records. The caller holds s.mu.
func (s *storage) purgeLocked(now time.Time) {
	for id, ar := range s.authRequests {
		if now.Sub(ar.created) > 2*authRequestTTL {
			delete(s.codes, ar.code)
			delete(s.authRequests, id)
		}
	}
	for id, at := range s.accessTokens {
		if now.After(at.expires) {
			delete(s.accessTokens, id)
		}
	}
	for tok, rt := range s.refreshTokens {
		if now.After(rt.expires) {
			s.dropRefreshLocked(rt)
			delete(s.refreshTokens, tok)
		}
	}
}

// CreateAuthRequest implements op.Storage.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	now := s.now()
	ar := &authRequest{
		id:           randomID(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.Clone(req.Scopes),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		created:      now,
	}
	if req.CodeChallenge != "" {
		method := req.CodeChallengeMethod
		if method == "" {
			method = oidc.CodeChallengeMethodPlain
		}
		ar.codeChallenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: method}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(now)
	s.authRequests[ar.id] = ar
	return ar.clone(), nil
}

// AuthRequestByID implements op.Storage.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || s.now().Sub(ar.created) > authRequestTTL {
		return nil, errors.New("auth request not found")
	}
	return ar.clone(), nil
}

// AuthRequestByCode implements op.Storage.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[s.codes[code]]
	if !ok || s.now().Sub(ar.codeIssued) > authRequestTTL {
		return nil, errors.New("code not found or expired")
	}
	return ar.clone(), nil
}

// SaveAuthCode implements op.Storage.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok {
		return errors.New("auth request not found")
	}
	delete(s.codes, ar.code)
	ar.code = code
	ar.codeIssued = s.now()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest implements op.Storage. zitadel calls it once a code was
// redeemed, which makes every code single-use; a failed exchange leaves it.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ar, ok := s.authRequests[id]; ok {
		delete(s.codes, ar.code)
		delete(s.authRequests, id)
	}
	return nil
}

// grantOf returns the login behind a token request: an auth request (code
// exchange) or a refresh token.
func grantOf(req op.TokenRequest) grant {
	switch r := req.(type) {
	case *authRequest:
		return grant{clientID: r.clientID, subject: r.subject, scopes: slices.Clone(r.scopes), nonce: r.nonce, authTime: r.authTime, sid: r.sid}
	case *refreshTokenRequest:
		g := r.record.grant
		g.scopes = slices.Clone(r.scopes)
		return g
	}
	g := grant{subject: req.GetSubject(), scopes: req.GetScopes()}
	if c, ok := req.(interface{ GetClientID() string }); ok {
		g.clientID = c.GetClientID()
	}
	return g
}

// newAccessTokenLocked records a new access token. The caller holds s.mu.
//
// Dex answers expires_in as the lifetime less the fraction of a second
// already gone (3599 for an hour), while the token works for the whole
// lifetime from its issue: a client that counts expires_in from the moment
// it received the answer sees its token accepted for up to a second after
// it considers it expired, and never sees an expired token refused. Here
// the token stops working when expires_in, counted from the moment it was
// made, has passed, which is never later than that client's reckoning. The
// token is what Dex would have issued up to a second earlier (a second for
// a lifetime of whole seconds), so that its iat and exp claims keep Dex's
// lifetime apart (exp - iat is 3600 for an hour, as in the recordings) and
// exp, truncated to the second, is not after the moment of refusal. A
// lifetime of a second or less gives expires_in 0: a token that is expired
// from the start.
func (s *storage) newAccessTokenLocked(g grant, now time.Time) *accessTokenRecord {
	expiresIn := int64(max(s.accessTTL-time.Nanosecond, 0) / time.Second)
	expires := now.Add(time.Duration(expiresIn) * time.Second)
	at := &accessTokenRecord{
		grant:     g,
		id:        randomID(),
		made:      now,
		issued:    expires.Add(-s.accessTTL),
		expires:   expires,
		expiresIn: expiresIn,
	}
	s.accessTokens[at.id] = at
	return at
}

// CreateAccessToken implements op.Storage.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.newAccessTokenLocked(grantOf(req), s.now())
	return at.id, at.expires, nil
}

// reusable reports whether rt was issued less than the reuse interval ago.
func (s *storage) reusable(rt *refreshTokenRecord, now time.Time) bool {
	return now.Before(rt.lastUsed.Add(s.reuseInterval))
}

// CreateAccessAndRefreshTokens implements op.Storage, with Dex's rotation.
//
// A code exchange issues a new refresh token, which replaces the user's
// previous one at the client unless MultipleRefreshTokens is set. A refresh
// within the reuse interval of the current token's issue returns that same
// token (also for the token it replaced); after it, only the current token
// works, and it is rotated.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if current == "" {
		g := grantOf(req)
		rt := &refreshTokenRecord{grant: g, token: randomToken(), lastUsed: now, expires: now.Add(refreshTokenTTL)}
		key := sessionKey{g.subject, g.clientID}
		if old, ok := s.sessions[key]; ok && !s.multipleRefreshTokens {
			s.dropRefreshLocked(old)
		}
		s.sessions[key] = rt
		s.refreshTokens[rt.token] = rt
		at := s.newAccessTokenLocked(g, now)
		rt.accessTokenID = at.id
		return at.id, rt.token, at.expires, nil
	}
	rt, ok := s.refreshTokens[current]
	if !ok || now.After(rt.expires) {
		return "", "", time.Time{}, errRefreshTokenInvalid
	}
	token := rt.token
	switch {
	case s.noRotation:
		token = current
	case current == rt.token && !s.reusable(rt, now):
		if rt.obsolete != "" {
			delete(s.refreshTokens, rt.obsolete)
		}
		rt.obsolete, rt.token, rt.lastUsed = rt.token, randomToken(), now
		s.refreshTokens[rt.token] = rt
		token = rt.token
	case current == rt.token:
	case current == rt.obsolete && s.reusable(rt, now):
	default:
		return "", "", time.Time{}, errRefreshTokenInvalid
	}
	g := rt.grant
	if r, ok := req.(*refreshTokenRequest); ok {
		g.scopes = slices.Clone(r.scopes)
	}
	at := s.newAccessTokenLocked(g, now)
	rt.accessTokenID = at.id
	return at.id, token, at.expires, nil
}

// errRefreshTokenInvalid is the storage's answer to a refresh token that is
// unknown, expired, revoked, replaced or superseded; the token endpoint
// answers it the way Dex does.
var errRefreshTokenInvalid = oidc.ErrInvalidGrant().WithDescription("refresh token is invalid or has already been claimed by another client")

// dropRefreshLocked deletes a refresh token record and the token it replaced.
// The caller holds s.mu.
func (s *storage) dropRefreshLocked(rt *refreshTokenRecord) {
	delete(s.refreshTokens, rt.token)
	if rt.obsolete != "" {
		delete(s.refreshTokens, rt.obsolete)
	}
	key := sessionKey{rt.subject, rt.clientID}
	if s.sessions[key] == rt {
		delete(s.sessions, key)
	}
}

// liveRefreshLocked returns the record of a refresh token that may still be
// used. The caller holds s.mu.
func (s *storage) liveRefreshLocked(token string, now time.Time) (*refreshTokenRecord, bool) {
	rt, ok := s.refreshTokens[token]
	if !ok || now.After(rt.expires) {
		return nil, false
	}
	if token != rt.token && (s.noRotation || !s.reusable(rt, now)) {
		return nil, false
	}
	return rt, true
}

// TokenRequestByRefreshToken implements op.Storage.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.liveRefreshLocked(token, s.now())
	if !ok {
		return nil, errRefreshTokenInvalid
	}
	return &refreshTokenRequest{
		record:   rt,
		clientID: rt.clientID,
		subject:  rt.subject,
		scopes:   slices.Clone(rt.scopes),
		authTime: rt.authTime,
	}, nil
}

// TerminateSession implements op.Storage: it drops the user's tokens for the client.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refreshTokens {
		if rt.subject == userID && rt.clientID == clientID {
			s.dropRefreshLocked(rt)
		}
	}
	for id, at := range s.accessTokens {
		if at.subject == userID && at.clientID == clientID {
			delete(s.accessTokens, id)
		}
	}
	return nil
}

// GetRefreshTokenInfo implements op.Storage.
func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || rt.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, token, nil
}

// RevokeToken implements op.Storage (RFC 7009). Revoking a refresh token also
// revokes the access token issued last with it. An unknown token is not an
// error.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		s.dropRefreshLocked(rt)
		delete(s.accessTokens, rt.accessTokenID)
		return nil
	}
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
	}
	return nil
}

// accessToken returns a copy of a live access token's record.
func (s *storage) accessToken(id string) (accessTokenRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[id]
	if !ok || !s.now().Before(at.expires) {
		return accessTokenRecord{}, false
	}
	rec := *at
	rec.scopes = slices.Clone(at.scopes)
	return rec, true
}

// SigningKey implements op.Storage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

// SignatureAlgorithms implements op.Storage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.Storage.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

// GetClientByClientID implements op.Storage.
//
// zitadel refuses, at the token endpoint, every code of a public client
// (auth method "none") that was issued without a code_challenge ("PKCE
// required"). A generation-1 MCP server never passes the challenge on, and
// the IdPs it is used with accept such codes from public clients. So at the
// token endpoint a public client is presented as client_secret_post with an
// empty secret, which AuthorizeClientIDSecret accepts; PKCE is still checked
// whenever the code has a challenge. Everywhere else (revocation,
// introspection) public clients keep the auth method "none".
func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, ok := s.client(id)
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	cp := *c
	if cp.public && ctx.Value(tokenEndpointKey{}) != nil {
		cp.authMethod = oidc.AuthMethodPost
	}
	return &cp, nil
}

// deleteClient removes a client and its tokens. Its pending codes stay
// until they expire: redeeming one fails with invalid_client, because the
// client is gone.
func (s *storage) deleteClient(id string) {
	s.clientsMu.Lock()
	delete(s.clients, id)
	s.clientsMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refreshTokens {
		if rt.clientID == id {
			s.dropRefreshLocked(rt)
		}
	}
	for tid, at := range s.accessTokens {
		if at.clientID == id {
			delete(s.accessTokens, tid)
		}
	}
}

// forgetRegisteredClients deletes every client registered through RFC
// 7591, with its tokens (see deleteClient), and keeps the static ones.
func (s *storage) forgetRegisteredClients() {
	var ids []string
	s.clientsMu.RLock()
	for id, c := range s.clients {
		if c.registration != nil {
			ids = append(ids, id)
		}
	}
	s.clientsMu.RUnlock()
	for _, id := range ids {
		s.deleteClient(id)
	}
}

// client returns the client with that id.
func (s *storage) client(id string) (*opClient, bool) {
	s.clientsMu.RLock()
	defer s.clientsMu.RUnlock()
	c, ok := s.clients[id]
	return c, ok
}

// knownClient reports whether a client with that id exists.
func (s *storage) knownClient(id string) bool {
	_, ok := s.client(id)
	return ok
}

// AuthorizeClientIDSecret implements op.Storage.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.client(id)
	if !ok || !c.checkSecret(secret) {
		return oidc.ErrInvalidClient().WithDescription("invalid client credentials")
	}
	return nil
}

func fillUserinfo(info *oidc.UserInfo, u User, scopes []string) {
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeOpenID:
			info.Subject = u.Subject
		case oidc.ScopeProfile:
			info.PreferredUsername = u.PreferredUsername
			info.Name = u.Name
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = true
		}
	}
}

// SetUserinfoFromScopes implements op.Storage; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the ID
// token's user claims (the token endpoint issues its own ID token, see
// Server.dexTokens, but zitadel needs the user to exist).
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u, ok := s.userBySubject(req.GetSubject())
	if !ok {
		return errors.New("unknown user")
	}
	fillUserinfo(info, u, scopes)
	return nil
}

// SetUserinfoFromToken implements op.Storage: the userinfo endpoint.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	at, ok := s.accessToken(tokenID)
	if !ok || at.subject != subject {
		return oidc.ErrAccessDenied().WithDescription("access token is invalid, expired or revoked")
	}
	u, found := s.userBySubject(subject)
	if !found {
		return oidc.ErrAccessDenied().WithDescription("unknown user")
	}
	fillUserinfo(info, u, at.scopes)
	return nil
}

// SetIntrospectionFromToken implements op.Storage.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	rec, ok := s.accessToken(tokenID)
	if !ok || rec.subject != subject {
		return errors.New("token is not active")
	}
	aud, _ := tokenAudience(rec.clientID, rec.scopes)
	resp.Scope = rec.scopes
	resp.ClientID = rec.clientID
	resp.Subject = rec.subject
	resp.Audience = aud
	resp.Expiration = oidc.FromTime(rec.expires)
	resp.TokenType = oidc.BearerToken
	if u, found := s.userBySubject(subject); found {
		resp.Username = u.PreferredUsername
	}
	return nil
}

// GetPrivateClaimsFromScopes implements op.Storage: no private claims.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID implements op.Storage; JWT client assertions are not supported.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile keys are not supported")
}

// ValidateJWTProfileScopes implements op.Storage; the JWT profile grant is not supported.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grant is not supported")
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }
