package mcpclient

import (
	"context"
	"net/http"

	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/wwwauth"
)

// DPoPCredentials are Credentials whose tokens may be bound to a DPoP key
// (RFC 9449). An AuthTransport sends such a token with the DPoP scheme
// and a fresh proof signed with the key on every request, a retry after
// a renewal included.
type DPoPCredentials interface {
	Credentials
	// DPoP returns the key token is bound to; nil for a bearer token.
	DPoP(ctx context.Context, token string) (*oauth.DPoPKey, error)
}

// dpopKey returns the key the token is bound to, if any.
func (b *bearer) dpopKey(ctx context.Context, tok string) (*oauth.DPoPKey, error) {
	dc, ok := b.creds.(DPoPCredentials)
	if !ok || tok == "" {
		return nil, nil
	}
	return dc.DPoP(ctx, tok)
}

// sendDPoP sends the request with a DPoP-bound token and a fresh proof,
// with the nonce the server gave last. When the server asks for a nonce
// (401 with a DPoP use_dpop_nonce challenge and DPoP-Nonce, RFC 9449
// section 9) it sends the request once more with a proof that has it:
// once, so that a server that keeps asking cannot make it loop.
//
// oauth's dpopTransport (pkg/oauth/dpop.go) resends a token request the
// same way, once, with the body from GetBody; the two stay apart because
// they tell a nonce request differently (here a 401 DPoP challenge, there
// a 400 use_dpop_nonce JSON error) and only this one keeps the nonce and
// binds the proof to an access token. A change to one likely applies to
// the other.
func (b *bearer) sendDPoP(req *http.Request, tok string, key *oauth.DPoPKey) (*http.Response, error) {
	resp, err := b.sendProof(req, tok, key, b.dpopNonce())
	if err != nil {
		return resp, err
	}
	nonce := b.keepNonce(resp)
	ch, _ := wwwauth.ParseDPoP(resp.Header.Values("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || ch.Error != oauth.ErrUseDPoPNonce || nonce == "" {
		return resp, nil
	}
	if req.Body != nil && req.GetBody == nil {
		return resp, nil // cannot send it again
	}
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		if r.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	resp.Body.Close()
	resp, err = b.sendProof(r, tok, key, nonce)
	if err == nil {
		b.keepNonce(resp)
	}
	return resp, err
}

func (b *bearer) sendProof(req *http.Request, tok string, key *oauth.DPoPKey, nonce string) (*http.Response, error) {
	proof, err := key.Proof(req.Method, req.URL, tok, nonce)
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", oauth.TokenTypeDPoP+" "+tok)
	r.Header.Set(oauth.DPoPHeader, proof)
	return b.next.RoundTrip(r)
}

// keepNonce remembers the nonce the server sent, on any answer, for the
// next proof, and returns it ("" when it sent none).
func (b *bearer) keepNonce(resp *http.Response) string {
	n := resp.Header.Get(oauth.DPoPNonceHeader)
	if n != "" {
		b.mu.Lock()
		b.nonce = n
		b.mu.Unlock()
	}
	return n
}

func (b *bearer) dpopNonce() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nonce
}
