// Package authtest gives other packages' tests client tokens the way
// httptest gives them servers: a Verifier on a fixed HS256 secret and tokens
// signed with it.
package authtest

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/auth"
)

// Secret is the HS256 secret of Config.
const Secret = "authtest-secret-0123456789-0123456789"

// Config verifies HS256 tokens signed with Secret, with no iss or aud and
// the shipped 30 s leeway; the dev issuer is off.
func Config() config.Auth {
	return config.Auth{JWT: config.JWT{HMACSecret: Secret, Leeway: 30 * time.Second}}
}

// Verifier is a Verifier for Config.
func Verifier(t testing.TB) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierParams{Cfg: Config()})
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	return v
}

// Token is a token for userID valid for an hour.
func Token(t testing.TB, userID string) string {
	t.Helper()
	return TokenExpiring(t, userID, time.Now().Add(time.Hour))
}

// TokenExpiring is a token for userID that expires at exp (in the past for
// an expired token; mind the leeway).
func TokenExpiring(t testing.TB, userID string, exp time.Time) string {
	t.Helper()
	now := time.Now()
	iat := now
	if exp.Before(now) {
		iat = exp.Add(-time.Hour)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString([]byte(Secret))
	if err != nil {
		t.Fatalf("authtest: sign: %v", err)
	}
	return tok
}
