package devserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// tokenEndpoint wraps the OP's handler. For requests to the token endpoint
// it counts the request by grant_type (see countTokenRequest), marks the context (see
// storage.GetClientByClientID), applies the PKCE "ignore" mode and sets the
// ID token's audience (see rewriteIDTokenAudience). Other requests pass
// through untouched.
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
		if v := r.Form.Get("code_verifier"); v != "" {
			s.recordVerifier(v)
		}
		r = r.WithContext(context.WithValue(r.Context(), tokenEndpointKey{}, true))

		if s.opts.PKCE == PKCEIgnore && grantType == string(oidc.GrantTypeCode) && r.Form.Has("code_verifier") {
			// Like Nextcloud's oidc app: a verifier for a code issued
			// without a challenge is not checked.
			if known, hasChallenge := s.store.codeChallengeState(r.Form.Get("code")); known && !hasChallenge {
				r.Form.Del("code_verifier")
				r.PostForm.Del("code_verifier")
			}
		}

		rec := &bufferedResponse{header: make(http.Header), status: http.StatusOK}
		next.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if rec.status == http.StatusOK {
			if rewritten, err := s.rewriteIDTokenAudience(body); err == nil {
				body = rewritten
			}
			body = s.applyQuirks(body, grantType)
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
	})
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

// rewriteIDTokenAudience sets the aud claim of the id_token in a token
// response and signs it again with the OP's key.
//
// zitadel derives the audience of both tokens from one source, so its ID
// tokens carry the access token's audience (the client id and MCPAudience).
// Here the ID token gets the client id alone, as usual, so that it is not
// accepted as an access token for the MCP server; or, with the
// IDTokenAudience fault, that value alone, as an OP configured with a wrong
// audience would issue it. The fault spares the MCP server's own client,
// so that Flow 2 and the generation-2 proxy keep working.
func (s *Server) rewriteIDTokenAudience(body []byte) ([]byte, error) {
	var resp map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil {
		return nil, err
	}
	raw, ok := resp["id_token"].(string)
	if !ok || raw == "" {
		return body, nil
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(&s.store.key.key.PublicKey)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	dec = json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, err
	}
	azp, _ := claims["azp"].(string)
	aud := azp
	if s.opts.IDTokenAudience != "" && azp != ServerClientID {
		aud = s.opts.IDTokenAudience
	}
	if aud == "" {
		return body, nil
	}
	claims["aud"] = []string{aud}
	payload, err = json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.RS256,
		Key:       &jose.JSONWebKey{Key: s.store.key.key, KeyID: s.store.key.id},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	signed, err := signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	resp["id_token"], err = signed.CompactSerialize()
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
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

// applyQuirks makes a successful token response look like those of IdPs in
// the wild: without expires_in (OmitExpiresIn), or, for a refresh, without
// refresh_token (NoRefreshRotation).
func (s *Server) applyQuirks(body []byte, grantType string) []byte {
	dropRT := s.opts.NoRefreshRotation && grantType == string(oidc.GrantTypeRefreshToken)
	if !s.opts.OmitExpiresIn && !dropRT {
		return body
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	if s.opts.OmitExpiresIn {
		delete(m, "expires_in")
	}
	if dropRT {
		delete(m, "refresh_token")
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
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
