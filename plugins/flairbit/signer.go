package flairbit

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer issues the service JWTs chat-service presents to FlairBit: RS256,
// header kid = key_id, claims iss = sub = issuer, aud = audience, iat, exp =
// iat + ttl and a random jti. A token is reused until less than a fifth of
// its ttl remains, then a new one is signed. Safe for concurrent use.
type Signer struct {
	key  *rsa.PrivateKey
	auth ServiceAuth
	now  func() time.Time

	mu    sync.Mutex
	token string
	exp   time.Time
}

// NewSigner returns a Signer for key with auth's kid, iss, aud and ttl.
func NewSigner(key *rsa.PrivateKey, auth ServiceAuth) *Signer {
	return &Signer{key: key, auth: auth, now: time.Now}
}

// Token returns a valid service JWT, signing a new one when the current one
// is near expiry.
func (s *Signer) Token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && s.exp.Sub(now) > s.auth.TTL/5 {
		return s.token, nil
	}
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("generate jti: %w", err)
	}
	exp := now.Add(s.auth.TTL)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer:    s.auth.Issuer,
		Subject:   s.auth.Issuer,
		Audience:  jwt.ClaimStrings{s.auth.Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
	})
	tok.Header["kid"] = s.auth.KeyID
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign service JWT: %w", err)
	}
	s.token, s.exp = signed, exp
	return signed, nil
}
