package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// SigningKey is a client's private key for private_key_jwt.
type SigningKey struct {
	key crypto.Signer
	alg jose.SignatureAlgorithm
}

// Algorithm returns the JWS algorithm the key signs with.
func (k *SigningKey) Algorithm() string { return string(k.alg) }

// assertionLifetime is how long a client assertion is valid.
const assertionLifetime = 5 * time.Minute

// ParseSigningKey reads a PEM private key (PKCS #8, SEC 1 EC or PKCS #1
// RSA) and picks its algorithm: ES256, ES384 or ES512 by curve, RS256 for
// RSA, EdDSA for Ed25519. alg, when not empty, must be that algorithm.
func ParseSigningKey(pemData []byte, alg string) (*SigningKey, error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a PEM %q block is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("read the private key: %w", err)
	}
	k, err := signingKeyOf(key)
	if err != nil {
		return nil, err
	}
	if alg != "" && alg != string(k.alg) {
		return nil, fmt.Errorf("the key signs with %s, not %s", k.alg, alg)
	}
	return k, nil
}

// signingKeyOf picks a private key's algorithm: ES256, ES384 or ES512 by
// curve, RS256 for RSA (2048 bits or more), EdDSA for Ed25519.
func signingKeyOf(key any) (*SigningKey, error) {
	k := &SigningKey{}
	switch key := key.(type) {
	case *ecdsa.PrivateKey:
		switch key.Curve {
		case elliptic.P256():
			k.alg = jose.ES256
		case elliptic.P384():
			k.alg = jose.ES384
		case elliptic.P521():
			k.alg = jose.ES512
		default:
			return nil, errors.New("unsupported elliptic curve: use P-256, P-384 or P-521")
		}
		k.key = key
	case *rsa.PrivateKey:
		if key.N.BitLen() < 2048 {
			return nil, errors.New("RSA keys shorter than 2048 bits are refused")
		}
		k.key, k.alg = key, jose.RS256
	case ed25519.PrivateKey:
		k.key, k.alg = key, jose.EdDSA
	default:
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return k, nil
}

// assertion signs a client assertion (RFC 7523 section 3): issued by and
// about the client, for the authorization server issuer, valid for five
// minutes, with a unique jti.
func (k *SigningKey) assertion(clientID, issuer string) (string, error) {
	if issuer == "" {
		return "", errors.New("a client assertion needs the authorization server's issuer as its audience")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	claims := jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{issuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(assertionLifetime)), ID: rand.Text(),
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}
