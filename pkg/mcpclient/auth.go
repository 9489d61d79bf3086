package mcpclient

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/ncmcp/ncmcp/pkg/wwwauth"
)

// Credentials give a session its bearer token, and a new one when the
// server refuses it.
type Credentials interface {
	// Token returns the token to send; empty sends none.
	Token(ctx context.Context) (string, error)
	// Renew is called when the server refused token (empty: none was sent)
	// with a 401, or a 403 insufficient_scope. It returns the token to send
	// the request once more with, or the error to give up with. Calls are
	// serialized.
	Renew(ctx context.Context, token string, r Refusal) (string, error)
}

// Refusal is the server's refusal of a token.
type Refusal struct {
	// Status is 401 or 403.
	Status int
	// Challenge is the WWW-Authenticate Bearer challenge, if any.
	Challenge wwwauth.Challenge
	// Header is the WWW-Authenticate header as sent.
	Header string
}

// Err returns the error of the refusal: *UnauthorizedError or
// *InsufficientScopeError.
func (r Refusal) Err() error {
	if r.Status == http.StatusForbidden {
		return &InsufficientScopeError{Scopes: r.Challenge.Scopes(), Description: r.Challenge.ErrorDescription}
	}
	return &UnauthorizedError{Challenge: r.Header}
}

// StaticToken is Credentials of one token that is never renewed.
type StaticToken string

// Token returns the token.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// Renew gives up with the refusal's error.
func (t StaticToken) Renew(_ context.Context, _ string, r Refusal) (string, error) {
	return "", r.Err()
}

// bearer adds the token to the requests for the endpoint's origin; when the
// server refuses it (401, 403 insufficient_scope) it asks the credentials
// for another and sends the request again, at most maxRenewals times. It
// remembers the last refusal it gave up on.
type bearer struct {
	next  http.RoundTripper
	creds Credentials
	// origin is the endpoint's scheme://host[:port]: the token goes only
	// there, never to where a redirect points.
	origin string

	renewMu sync.Mutex
	mu      sync.Mutex
	denied  error // the refusal's error, or Renew's
	// nonce is the DPoP nonce the origin sent last (RFC 9449 section 9).
	nonce string
}

func originOf(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	if originOf(req.URL) != b.origin {
		r := req.Clone(req.Context())
		r.Header.Del("Authorization")
		return b.next.RoundTrip(r)
	}
	tok, err := b.creds.Token(req.Context())
	if err != nil {
		b.setDenied(req.Context(), err)
		return nil, err
	}
	resp, err := b.send(req, tok)
	if err != nil {
		return resp, err
	}
	for range maxRenewals {
		refusal, refused := refusalOf(resp)
		if !refused {
			return resp, nil
		}
		if req.Body != nil && req.GetBody == nil {
			b.setDenied(req.Context(), refusal.Err()) // cannot send it again
			return resp, nil
		}
		b.renewMu.Lock()
		next, rerr := b.creds.Renew(req.Context(), tok, refusal)
		b.renewMu.Unlock()
		if rerr != nil {
			b.setDenied(req.Context(), rerr)
			return resp, nil
		}
		resp.Body.Close()
		r := req.Clone(req.Context())
		if req.GetBody != nil {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		tok = next
		if resp, err = b.send(r, tok); err != nil {
			return resp, err
		}
	}
	if refusal, refused := refusalOf(resp); refused {
		b.setDenied(req.Context(), refusal.Err())
	}
	return resp, nil
}

// AuthTransport is an http.RoundTripper that sends the credentials' token
// to the endpoint's origin only, never where a redirect points, and when
// the server refuses it (401, 403 insufficient_scope) asks the credentials
// for another and sends the request again, at most twice. A DPoP-bound
// token (DPoPCredentials) goes with a fresh proof on every request.
type AuthTransport struct{ b *bearer }

// NewAuthTransport returns the AuthTransport of endpoint over next
// (http.DefaultTransport when nil).
func NewAuthTransport(next http.RoundTripper, endpoint string, creds Credentials) (*AuthTransport, error) {
	if next == nil {
		next = http.DefaultTransport
	}
	eu, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if creds == nil {
		creds = StaticToken("")
	}
	return &AuthTransport{b: &bearer{next: next, creds: creds, origin: originOf(eu)}}, nil
}

// RoundTrip sends the request with the token.
func (t *AuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.b.RoundTrip(req)
}

// denialKey is the context key of a request's denial (WithDenial).
type denialKey struct{}

// denial is where an AuthTransport records why it gave up on one request.
type denial struct {
	mu  sync.Mutex
	err error
}

// WithDenial returns a context for requests whose refusal must be
// explained on its own, and a function that returns why the
// AuthTransport gave up on a refusal of a request made with it: the
// refusal's error, or the credentials' failure to renew; nil when it did
// not give up. Requests made with other contexts cannot change it.
func WithDenial(ctx context.Context) (context.Context, func() error) {
	d := &denial{}
	return context.WithValue(ctx, denialKey{}, d), func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.err
	}
}

// Refused tells whether the answer is a refusal of the token: a 401, or a
// 403 with an insufficient_scope challenge (RFC 6750 section 3.1). Other
// answers, other 403s included, are the server's own.
func Refused(resp *http.Response) bool {
	_, refused := refusalOf(resp)
	return refused
}

// maxRenewals bounds the renewals for one request: a refresh or login
// after a 401, then a step-up after a 403 insufficient_scope.
const maxRenewals = 2

// send sends the request with the token, if any: a DPoP-bound one with a
// proof (see sendDPoP), others as a bearer token.
func (b *bearer) send(req *http.Request, tok string) (*http.Response, error) {
	key, err := b.dpopKey(req.Context(), tok)
	if err != nil {
		return nil, err
	}
	if key != nil {
		return b.sendDPoP(req, tok, key)
	}
	r := req.Clone(req.Context())
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	} else {
		r.Header.Del("Authorization")
	}
	return b.next.RoundTrip(r)
}

// refusalOf recognises a refused token: a 401, or a 403 with an
// insufficient_scope challenge (RFC 6750 section 3.1).
func refusalOf(resp *http.Response) (Refusal, bool) {
	h := resp.Header.Values("WWW-Authenticate")
	ch, _ := wwwauth.ParseBearer(h)
	r := Refusal{Status: resp.StatusCode, Challenge: ch, Header: strings.Join(h, ", ")}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return r, true
	case resp.StatusCode == http.StatusForbidden && ch.Error == "insufficient_scope":
		return r, true
	}
	return r, false
}

// setDenied records why the bearer gave up on a refusal: for the session
// (wrap), and for the request's own context when it has a denial.
func (b *bearer) setDenied(ctx context.Context, err error) {
	b.mu.Lock()
	b.denied = err
	b.mu.Unlock()
	if d, ok := ctx.Value(denialKey{}).(*denial); ok {
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
	}
}

// wrap turns an error after a refusal into the refusal's error.
func (b *bearer) wrap(err error) error {
	if err == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.denied != nil {
		return b.denied
	}
	return err
}
