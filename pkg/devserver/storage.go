package devserver

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
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
	audience      []string
	subject       string
	authTime      time.Time
	done          bool
	created       time.Time
	code          string
	codeIssued    time.Time
}

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	c.audience = slices.Clone(a.audience)
	if a.codeChallenge != nil {
		cc := *a.codeChallenge
		c.codeChallenge = &cc
	}
	return &c
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return amrFor(a.done) }
func (a *authRequest) GetAudience() []string                 { return slices.Clone(a.audience) }
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
	clientID string
	subject  string
	audience []string
	scopes   []string
	authTime time.Time
}

func (r *refreshTokenRequest) GetAMR() []string                 { return []string{"pwd"} }
func (r *refreshTokenRequest) GetAudience() []string            { return slices.Clone(r.audience) }
func (r *refreshTokenRequest) GetAuthTime() time.Time           { return r.authTime }
func (r *refreshTokenRequest) GetClientID() string              { return r.clientID }
func (r *refreshTokenRequest) GetScopes() []string              { return slices.Clone(r.scopes) }
func (r *refreshTokenRequest) GetSubject() string               { return r.subject }
func (r *refreshTokenRequest) SetCurrentScopes(scopes []string) { r.scopes = slices.Clone(scopes) }

type accessTokenRecord struct {
	id       string
	clientID string
	subject  string
	audience []string
	scopes   []string
	expires  time.Time
}

type refreshTokenRecord struct {
	clientID      string
	subject       string
	audience      []string
	scopes        []string // the scopes of the original grant
	authTime      time.Time
	expires       time.Time
	accessTokenID string // the access token issued with this refresh token
}

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

	users     []User
	key       *signingKey
	accessTTL time.Duration

	clientsMu sync.RWMutex
	clients   map[string]*opClient

	mu            sync.Mutex
	authRequests  map[string]*authRequest
	codes         map[string]string // authorization code -> auth request id
	accessTokens  map[string]*accessTokenRecord
	refreshTokens map[string]*refreshTokenRecord // keyed by the token itself
}

var _ op.Storage = (*storage)(nil)
var _ op.CanSetUserinfoFromRequest = (*storage)(nil)
var _ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)

func newStorage(clients map[string]*opClient, users []User, key *signingKey, accessTTL time.Duration) *storage {
	return &storage{
		clients:       clients,
		users:         users,
		key:           key,
		accessTTL:     accessTTL,
		authRequests:  make(map[string]*authRequest),
		codes:         make(map[string]string),
		accessTokens:  make(map[string]*accessTokenRecord),
		refreshTokens: make(map[string]*refreshTokenRecord),
	}
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

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
	if !ok || ar.done || time.Since(ar.created) > authRequestTTL {
		return nil, false
	}
	return ar.clone(), true
}

// completeAuthRequest records that subject logged in for the auth request.
func (s *storage) completeAuthRequest(id, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || ar.done || time.Since(ar.created) > authRequestTTL {
		return errors.New("unknown or expired login request")
	}
	ar.subject = subject
	ar.authTime = time.Now().UTC()
	ar.done = true
	return nil
}

// codeChallengeState reports whether code is a live authorization code and
// whether its auth request carried a code_challenge.
func (s *storage) codeChallengeState(code string) (known, hasChallenge bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[s.codes[code]]
	if !ok {
		return false, false
	}
	return true, ar.codeChallenge != nil
}

// purgeLocked drops expired records. The caller holds s.mu.
func (s *storage) purgeLocked(now time.Time) {
	for id, ar := range s.authRequests {
		if now.Sub(ar.created) > authRequestTTL {
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
			delete(s.refreshTokens, tok)
		}
	}
}

// CreateAuthRequest implements op.Storage.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	now := time.Now()
	ar := &authRequest{
		id:           randomID(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.Clone(req.Scopes),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		// The access token's audience: the client and the MCP server. The
		// token endpoint narrows the ID token's audience to the client.
		audience: []string{req.ClientID, MCPAudience},
		created:  now,
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
	if !ok || time.Since(ar.created) > authRequestTTL {
		return nil, errors.New("auth request not found")
	}
	return ar.clone(), nil
}

// AuthRequestByCode implements op.Storage.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[s.codes[code]]
	if !ok || time.Since(ar.codeIssued) > authRequestTTL {
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
	ar.codeIssued = time.Now()
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

func clientIDOf(req op.TokenRequest) string {
	if c, ok := req.(interface{ GetClientID() string }); ok {
		return c.GetClientID()
	}
	return ""
}

// newAccessTokenLocked records a new access token. The caller holds s.mu.
func (s *storage) newAccessTokenLocked(req op.TokenRequest, now time.Time) *accessTokenRecord {
	at := &accessTokenRecord{
		id:       randomID(),
		clientID: clientIDOf(req),
		subject:  req.GetSubject(),
		audience: req.GetAudience(),
		scopes:   req.GetScopes(),
		expires:  now.Add(s.accessTTL),
	}
	s.accessTokens[at.id] = at
	return at
}

// CreateAccessToken implements op.Storage.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.newAccessTokenLocked(req, time.Now())
	return at.id, at.expires, nil
}

// CreateAccessAndRefreshTokens implements op.Storage. A refresh token is
// rotated: the one that was used is deleted here, so it works only once,
// even when two refreshes race.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := &refreshTokenRecord{
		clientID: clientIDOf(req),
		subject:  req.GetSubject(),
		audience: req.GetAudience(),
		scopes:   req.GetScopes(),
		expires:  now.Add(refreshTokenTTL),
	}
	if current != "" {
		old, ok := s.refreshTokens[current]
		if !ok || now.After(old.expires) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is invalid, expired, revoked or already used")
		}
		rt.scopes = slices.Clone(old.scopes)
		rt.authTime = old.authTime
		if s.noRotation {
			at := s.newAccessTokenLocked(req, now)
			old.accessTokenID = at.id
			return at.id, current, at.expires, nil
		}
		delete(s.refreshTokens, current)
	} else if ar, ok := req.(op.AuthRequest); ok {
		rt.authTime = ar.GetAuthTime()
	}
	at := s.newAccessTokenLocked(req, now)
	rt.accessTokenID = at.id
	token := randomToken()
	s.refreshTokens[token] = rt
	return at.id, token, at.expires, nil
}

// TokenRequestByRefreshToken implements op.Storage.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || time.Now().After(rt.expires) {
		return nil, errors.New("refresh token is invalid, expired, revoked or already used")
	}
	return &refreshTokenRequest{
		clientID: rt.clientID,
		subject:  rt.subject,
		audience: slices.Clone(rt.audience),
		scopes:   slices.Clone(rt.scopes),
		authTime: rt.authTime,
	}, nil
}

// TerminateSession implements op.Storage: it drops the user's tokens for the client.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, rt := range s.refreshTokens {
		if rt.subject == userID && rt.clientID == clientID {
			delete(s.refreshTokens, tok)
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
// revokes the access token issued with it. An unknown token is not an error.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refreshTokens, tokenOrID)
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
	for tok, rt := range s.refreshTokens {
		if rt.clientID == id {
			delete(s.refreshTokens, tok)
		}
	}
	for tid, at := range s.accessTokens {
		if at.clientID == id {
			delete(s.accessTokens, tid)
		}
	}
}

// client returns the client with that id.
func (s *storage) client(id string) (*opClient, bool) {
	s.clientsMu.RLock()
	defer s.clientsMu.RUnlock()
	c, ok := s.clients[id]
	return c, ok
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
			info.PreferredUsername = u.Username
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
// token's user claims.
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
	s.mu.Lock()
	at, ok := s.accessTokens[tokenID]
	var scopes []string
	if ok {
		scopes = slices.Clone(at.scopes)
		ok = at.subject == subject && time.Now().Before(at.expires)
	}
	s.mu.Unlock()
	if !ok {
		return oidc.ErrAccessDenied().WithDescription("access token is invalid, expired or revoked")
	}
	u, found := s.userBySubject(subject)
	if !found {
		return oidc.ErrAccessDenied().WithDescription("unknown user")
	}
	fillUserinfo(info, u, scopes)
	return nil
}

// SetIntrospectionFromToken implements op.Storage.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	s.mu.Lock()
	at, ok := s.accessTokens[tokenID]
	var rec accessTokenRecord
	if ok {
		rec = *at
		ok = at.subject == subject && time.Now().Before(at.expires)
	}
	s.mu.Unlock()
	if !ok {
		return errors.New("token is not active")
	}
	resp.Scope = rec.scopes
	resp.ClientID = rec.clientID
	resp.Subject = rec.subject
	resp.Audience = rec.audience
	resp.Expiration = oidc.FromTime(rec.expires)
	resp.TokenType = oidc.BearerToken
	if u, found := s.userBySubject(subject); found {
		resp.Username = u.Username
	}
	return nil
}

// GetPrivateClaimsFromScopes implements op.Storage; GetPrivateClaimsFromRequest does the work.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// access tokens carry the granted scopes as a space-separated "scope" claim.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	return map[string]any{"scope": strings.Join(req.GetScopes(), " ")}, nil
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
