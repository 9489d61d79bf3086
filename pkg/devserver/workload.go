package devserver

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// workloadScopes are the scopes of the tokens a workload's JWT gets: what
// a generation-1 login gets, so that the MCP endpoint takes them.
var workloadScopes = append(slices.Clone(baseScopes), crossClientScopePrefix+ServerClientID)

// workloadGrant answers an RFC 7523 jwt-bearer grant with a workload's own
// JWT (workload identity federation), as an authorization server that
// trusts the workload's issuer does: the JWT must verify with
// Options.WorkloadKey, name the OP's issuer in aud, not be expired, and
// have as sub the username or subject of a test user, whose tokens it
// gets (a workload mapped to a service account). Client authentication is
// not required; a client_id, if given, is the tokens' client. Refusals are
// invalid_grant. Every assertion is recorded (WorkloadAssertions).
func (s *Server) workloadGrant(w http.ResponseWriter, r *http.Request) {
	raw := r.Form.Get("assertion")
	s.recordAssertion(raw)
	if raw == "" {
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "Missing assertion parameter.")
		return
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "The assertion is not a signed JWT.")
		return
	}
	payload, err := jws.Verify(s.opts.WorkloadKey)
	if err != nil {
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "The assertion's signature does not verify with a trusted key.")
		return
	}
	var c struct {
		Subject  string          `json:"sub"`
		Audience json.RawMessage `json:"aud"`
		Expiry   int64           `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "The assertion's claims are not JSON.")
		return
	}
	now := s.now()
	aud := tokenClaims{Audience: c.Audience}.audiences()
	switch {
	case !slices.ContainsFunc(aud, func(a string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(s.issuer, "/") }):
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "The assertion's audience is not this authorization server.")
		return
	case c.Expiry == 0 || !now.Before(time.Unix(c.Expiry, 0)):
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "The assertion expired.")
		return
	}
	user, ok := s.store.userBySubject(c.Subject)
	if !ok {
		for _, u := range s.store.users {
			if u.Username == c.Subject {
				user, ok = u, true
			}
		}
	}
	if !ok {
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "No account is mapped to the workload "+c.Subject+".")
		return
	}
	clientID := requestClientID(r)
	if clientID == "" {
		clientID = "workload"
	}
	s.store.mu.Lock()
	at := *s.store.newAccessTokenLocked(grant{clientID: clientID, subject: user.Subject, scopes: slices.Clone(workloadScopes), authTime: now}, now)
	s.store.mu.Unlock()
	token, err := s.sign(s.dexClaims(at, user, at.id, hashClaim(at.id), "", false))
	if err != nil {
		writeTokenError(w, http.StatusInternalServerError, "server_error", "cannot issue the token")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, object{{"access_token", token}, {"token_type", "bearer"}, {"expires_in", at.expiresIn}})
}

func (s *Server) recordAssertion(a string) {
	s.assertionMu.Lock()
	defer s.assertionMu.Unlock()
	s.assertions = append(s.assertions, a)
}

// WorkloadAssertions returns every assertion of a jwt-bearer grant that
// reached the OP's token endpoint, in order.
func (s *Server) WorkloadAssertions() []string {
	s.assertionMu.Lock()
	defer s.assertionMu.Unlock()
	return slices.Clone(s.assertions)
}
