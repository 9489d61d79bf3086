package devserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// tokenEndpoint wraps the OP's handler. zitadel does the work of the token
// endpoint (client authentication, code and PKCE checks, refresh); this
// wrapper makes its answers look like Dex's, the IdP of the recordings:
//
//   - it counts the request (TokenRequests, IdPTokenRequests) and records
//     the code_verifier (CodeVerifiers);
//   - it answers, before zitadel, the cases where Dex's answer differs:
//     an unknown or used code, a code_verifier for a code issued without a
//     challenge (the PKCE mode decides), a missing verifier, a mismatched
//     redirect_uri, a missing refresh token;
//   - it rewrites zitadel's errors to Dex's codes and descriptions;
//   - it replaces zitadel's tokens by Dex-shaped ones (see dexTokens) and
//     sends them with Dex's headers (Cache-Control: no-store, Pragma:
//     no-cache) and fields (token_type "bearer", no scope).
//
// Other requests pass through untouched.
func (s *Server) tokenEndpoint(tokenPath string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != tokenPath {
			next.ServeHTTP(w, r)
			return
		}
		// zitadel parses the form again; ParseForm keeps what is parsed here,
		// including the changes below.
		_ = r.ParseForm()
		grantType := r.Form.Get("grant_type")
		s.countTokenRequest(grantType, requestClientID(r) != ServerClientID)
		verifier := r.Form.Get("code_verifier")
		if verifier != "" {
			s.recordVerifier(verifier)
		}
		if grantType == string(oidc.GrantTypeBearer) && s.opts.WorkloadKey != nil {
			s.workloadGrant(w, r)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), tokenEndpointKey{}, true))

		var info codeInfo
		switch grantType {
		case string(oidc.GrantTypeCode):
			var ok bool
			info, ok = s.store.code(r.Form.Get("code"))
			switch {
			case !ok:
				writeTokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid or expired code parameter.")
				return
			case r.Form.Get("redirect_uri") != info.redirectURI:
				writeTokenError(w, http.StatusBadRequest, "invalid_request", "redirect_uri did not match URI from initial request.")
				return
			case info.hasChallenge && verifier == "":
				writeTokenError(w, http.StatusBadRequest, "invalid_request", "Expecting parameter code_verifier in request.")
				return
			case !info.hasChallenge && verifier != "" && s.opts.PKCE == PKCEIgnore:
				// Like Nextcloud's oidc app: a verifier for a code issued
				// without a challenge is not checked.
				r.Form.Del("code_verifier")
				r.PostForm.Del("code_verifier")
			case !info.hasChallenge && verifier != "":
				// Dex (and zitadel): the code stays redeemable.
				writeTokenError(w, http.StatusBadRequest, "invalid_request", "No PKCE flow started. Cannot check code_verifier.")
				return
			}
		case string(oidc.GrantTypeRefreshToken):
			if r.Form.Get("refresh_token") == "" {
				writeTokenError(w, http.StatusBadRequest, "invalid_request", "No refresh token is found in request.")
				return
			}
		}

		rec := &bufferedResponse{header: make(http.Header), status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if rec.status != http.StatusOK {
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			_ = json.Unmarshal(rec.body.Bytes(), &e)
			status := rec.status
			switch {
			case e.Error == "invalid_client":
				e.Description = "Invalid client credentials."
			case grantType == string(oidc.GrantTypeRefreshToken) && e.Error == "invalid_grant":
				e.Error, e.Description = "invalid_request", "Refresh token is invalid or has already been claimed by another client."
			case grantType == string(oidc.GrantTypeCode) && e.Error == "invalid_grant" && info.hasChallenge:
				e.Description = "Invalid code_verifier."
			case grantType == string(oidc.GrantTypeCode) && e.Error == "invalid_grant":
				e.Description = "Invalid or expired code parameter."
			}
			writeTokenError(w, status, e.Error, e.Description)
			return
		}
		body, err := s.dexTokens(rec.body.Bytes(), grantType, r.Form.Get("code"))
		if err != nil {
			writeTokenError(w, http.StatusInternalServerError, "server_error", "cannot issue the tokens")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Pragma", "no-cache")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

// writeTokenError writes an OAuth error as Dex does: a JSON object with
// error and error_description, and no cache headers.
func writeTokenError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, object{{"error", code}, {"error_description", description}})
}

// countTokenRequest counts a token request at the OP in IdPTokenRequests
// and, if an MCP client sent it (not the MCP server with its own client),
// in TokenRequests.
func (s *Server) countTokenRequest(grantType string, byMCPClient bool) {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	s.idpTokenRequests[grantType]++
	if byMCPClient {
		s.tokenRequests[grantType]++
	}
}

// countServerTokenRequest counts a request to the generation-2 server's
// /oauth/token in TokenRequests.
func (s *Server) countServerTokenRequest(grantType string) {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	s.tokenRequests[grantType]++
}

// requestClientID returns the client id of a token request: the user of
// HTTP basic authentication, else the client_id parameter. The form must
// be parsed.
func requestClientID(r *http.Request) string {
	if user, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(user); err == nil {
			return id
		}
		return user
	}
	return r.Form.Get("client_id")
}

// dexTokens turns zitadel's successful token response into Dex's: JWT
// access and ID tokens with Dex's claims (see dexClaims), token_type
// "bearer", expires_in from the access token's lifetime, no scope. The
// access token's jti stays zitadel's token id, so that userinfo,
// introspection and revocation keep working.
func (s *Server) dexTokens(body []byte, grantType, code string) ([]byte, error) {
	var resp struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(resp.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(&s.store.key.key.PublicKey)
	if err != nil {
		return nil, err
	}
	var zitadelClaims struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &zitadelClaims); err != nil {
		return nil, err
	}
	at, ok := s.store.accessToken(zitadelClaims.ID)
	if !ok {
		return nil, errors.New("the access token is not in the storage")
	}
	user, _ := s.store.userBySubject(at.subject)

	accessToken, err := s.sign(s.dexClaims(at, user, at.id, hashClaim(at.id), "", false))
	if err != nil {
		return nil, err
	}
	out := object{
		{"access_token", accessToken},
		{"token_type", "bearer"},
	}
	if !s.opts.OmitExpiresIn {
		// As Dex counts it at issuance (3599 for an hour), whatever the
		// time the answer takes to leave; the token stops working that
		// long after it was made (see storage.newAccessTokenLocked).
		out = append(out, field{"expires_in", at.expiresIn})
	}
	if resp.RefreshToken != "" && !(s.opts.NoRefreshRotation && grantType == string(oidc.GrantTypeRefreshToken)) {
		out = append(out, field{"refresh_token", resp.RefreshToken})
	}
	if resp.IDToken != "" {
		cHash := ""
		if grantType == string(oidc.GrantTypeCode) {
			cHash = hashClaim(code)
		}
		idToken, err := s.sign(s.dexClaims(at, user, randomID(), hashClaim(accessToken), cHash, true))
		if err != nil {
			return nil, err
		}
		out = append(out, field{"id_token", idToken})
	}
	return marshalJSON(out)
}

// dexClaims returns the claims of a token of Dex for an access token's
// grant: iss, sub, aud (the client, or the cross-client peers and the
// client, see tokenAudience), exp, iat, jti, azp (with peers), nonce (if the
// login had one), auth_time, sid, at_hash, c_hash (ID token of a code
// exchange), and the user's claims of the granted scopes: email and
// email_verified; name and preferred_username (if the user has one); no
// scope claim. With the IDTokenAudience fault an ID token's aud is that
// value instead, except for the MCP server's own client.
func (s *Server) dexClaims(at accessTokenRecord, user User, jti, atHash, cHash string, idToken bool) object {
	aud, azp := tokenAudience(at.clientID, at.scopes)
	if idToken && s.opts.IDTokenAudience != "" && at.clientID != ServerClientID {
		aud, azp = []string{s.opts.IDTokenAudience}, ""
	}
	var audClaim any = aud
	if len(aud) == 1 {
		audClaim = aud[0]
	}
	iat, exp := at.issued, at.expires
	if idToken {
		// Nothing refuses an ID token before its exp, so it keeps Dex's
		// timestamps, which give it the whole lifetime: a short one
		// (AccessTokenTTL of a few seconds) still leaves the MCP server
		// time to verify it.
		iat, exp = at.made, at.made.Add(s.opts.AccessTokenTTL)
	}
	claims := object{
		{"iss", s.issuer},
		{"sub", at.subject},
		{"aud", audClaim},
		{"exp", exp.Unix()},
		{"iat", iat.Unix()},
		{"jti", jti},
	}
	if azp != "" {
		claims = append(claims, field{"azp", azp})
	}
	if at.nonce != "" {
		claims = append(claims, field{"nonce", at.nonce})
	}
	claims = append(claims, field{"auth_time", at.authTime.Unix()}, field{"sid", at.sid}, field{"at_hash", atHash})
	if cHash != "" {
		claims = append(claims, field{"c_hash", cHash})
	}
	if slices.Contains(at.scopes, oidc.ScopeEmail) {
		claims = append(claims, field{"email", user.Email}, field{"email_verified", true})
	}
	if slices.Contains(at.scopes, oidc.ScopeProfile) {
		claims = append(claims, field{"name", user.Name})
		if user.PreferredUsername != "" {
			claims = append(claims, field{"preferred_username", user.PreferredUsername})
		}
	}
	return claims
}

// hashClaim is an OIDC at_hash or c_hash: the left half of the SHA-256 of
// the value, base64url-encoded.
func hashClaim(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// sign signs claims with the OP's key; the JWT header has alg and kid only,
// as Dex's.
func (s *Server) sign(claims object) (string, error) {
	payload, err := marshalJSON(claims)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.RS256,
		Key:       &jose.JSONWebKey{Key: s.store.key.key, KeyID: s.store.key.id},
	}, nil)
	if err != nil {
		return "", err
	}
	signed, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return signed.CompactSerialize()
}

// bufferedResponse collects a response so that it can be changed before it
// is sent.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if !b.wrote {
		b.status = status
		b.wrote = true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

func (s *Server) recordVerifier(v string) {
	s.verifierMu.Lock()
	defer s.verifierMu.Unlock()
	s.verifiers = append(s.verifiers, v)
}

// CodeVerifiers returns every PKCE code_verifier that reached the OP's
// token endpoint, so that tests can check that none leaked anywhere else.
func (s *Server) CodeVerifiers() []string {
	s.verifierMu.Lock()
	defer s.verifierMu.Unlock()
	return append([]string(nil), s.verifiers...)
}
