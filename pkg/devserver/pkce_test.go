package devserver

import (
	"testing"

	"golang.org/x/oauth2"
)

// TestPKCEModes: how the OP treats code_verifier in each PKCE mode, with the
// generation-1 server, which does not pass the client's challenge on
// (except with PKCERequire).
func TestPKCEModes(t *testing.T) {
	type step struct {
		code     int    // which code of the test to redeem
		verifier string // "none", "right" or "wrong"
		status   int    // 200, or the error status
		errCode  string
		errDesc  string
	}
	tests := []struct {
		mode  string
		codes int
		steps []step
	}{
		{PKCEReject, 1, []step{
			{0, "right", 400, "invalid_request", "No PKCE flow started. Cannot check code_verifier."},
			{0, "none", 200, "", ""}, // the failed attempt left the code usable
			{0, "none", 400, "invalid_grant", "Invalid or expired code parameter."}, // a redeemed code is gone
		}},
		{PKCEIgnore, 2, []step{
			{0, "right", 200, "", ""},
			{1, "none", 200, "", ""},
		}},
		{PKCERequire, 1, []step{
			{0, "none", 400, "invalid_request", "Expecting parameter code_verifier in request."},
			{0, "wrong", 400, "invalid_grant", "Invalid code_verifier."},
			{0, "right", 200, "", ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			s := startServer(t, Options{AutoApprove: true, PKCE: tc.mode})
			lb := newLoopback(t)
			cfg := oauthConfig(s, PublicClientID, "", lb.redirectURI(), oauth2.AuthStyleInParams)
			var codes, verifiers []string
			for range tc.codes {
				v, c := pkcePair()
				codes = append(codes, login(t, s, lb, PublicClientID, c, nil))
				verifiers = append(verifiers, v)
			}
			for i, st := range tc.steps {
				verifier := ""
				switch st.verifier {
				case "right":
					verifier = verifiers[st.code]
				case "wrong":
					verifier = oauth2.GenerateVerifier()
				}
				tok, err := exchange(t, cfg, codes[st.code], verifier)
				if st.status == 200 {
					if err != nil {
						t.Fatalf("step %d (%s verifier): %v", i, st.verifier, err)
					}
					if tok.AccessToken == "" || tok.Extra("id_token") == nil {
						t.Fatalf("step %d: incomplete token response", i)
					}
					continue
				}
				if err == nil {
					t.Fatalf("step %d (%s verifier): exchange succeeded, want %d %s", i, st.verifier, st.status, st.errCode)
				}
				status, code, desc := tokenErr(t, err)
				if status != st.status || code != st.errCode || desc != st.errDesc {
					t.Fatalf("step %d (%s verifier): got %d %s %q, want %d %s %q", i, st.verifier, status, code, desc, st.status, st.errCode, st.errDesc)
				}
			}
			if got := s.TokenRequests("authorization_code"); got != len(tc.steps) {
				t.Errorf("TokenRequests(authorization_code) = %d, want %d", got, len(tc.steps))
			}
		})
	}
}
