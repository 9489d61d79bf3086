package credential

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
)

// TestRefreshWithDPoPKey: the refresh of an account with a DPoP key
// carries a proof signed with that key, and the renewed tokens keep it.
func TestRefreshWithDPoPKey(t *testing.T) {
	k, _ := oauth.NewDPoPKey("ES256")
	stored, _ := k.Marshal()
	var mu sync.Mutex
	var jkts []string
	e := newEndpoint(t, rotating)
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jws, err := jose.ParseSignedCompact(r.Header.Get("DPoP"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Errorf("no proof: %v", err)
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		tp, _ := jws.Signatures[0].Protected.JSONWebKey.Thumbprint(crypto.SHA256)
		mu.Lock()
		jkts = append(jkts, base64.RawURLEncoding.EncodeToString(tp))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "bound", "token_type": "DPoP", "expires_in": 3600, "refresh_token": "rt1"})
	})
	s := setup(t, e, store.Account{Subject: "alice", ClientID: "c"}, store.Tokens{AccessToken: "at0", TokenType: "DPoP", RefreshToken: "rt0", Expiry: time.Now().Add(-time.Hour), DPoPKey: stored})
	tok, err := s.Token(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "bound" || !oauth.IsDPoP(tok.TokenType) || tok.DPoPKey != stored {
		t.Errorf("token %q bound %v, key kept %v", tok.AccessToken, oauth.IsDPoP(tok.TokenType), tok.DPoPKey == stored)
	}
	again, _ := s.Store.GetTokens(store.BackendFile, server, "alice")
	if again.DPoPKey != stored || !oauth.IsDPoP(again.TokenType) {
		t.Error("the stored tokens lost the key or the token type")
	}
	if len(jkts) != 1 || jkts[0] != k.Thumbprint() {
		t.Fatalf("proofs by %v, want one by %s", jkts, k.Thumbprint())
	}
	if got, _ := DPoPKey(again); got.Thumbprint() != k.Thumbprint() {
		t.Error("the key read back differs")
	}
}
