package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chat-service/chat/config"
)

const (
	testSecret   = "test-secret-0123456789-0123456789-abcdef"
	testIssuer   = "https://issuer.test"
	testAudience = "chat-service"
	rsaKID       = "rsa-1"
	ecKID        = "ec-1"
)

// testKeys are generated once: RSA generation is slow under -race.
type testKeys struct {
	rsa, otherRSA *rsa.PrivateKey
	ec, otherEC   *ecdsa.PrivateKey
}

var keysOnce = sync.OnceValue(func() testKeys {
	mustRSA := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	mustEC := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	return testKeys{rsa: mustRSA(), otherRSA: mustRSA(), ec: mustEC(), otherEC: mustEC()}
})

// publicPEM is the PKIX PEM of pub.
func publicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testConfig verifies HS256 with testSecret, RS256 with rsaKID and ES256 with
// ecKID, and requires testIssuer and testAudience.
func testConfig(t testing.TB) config.Auth {
	t.Helper()
	k := keysOnce()
	return config.Auth{JWT: config.JWT{
		HMACSecret: testSecret,
		PublicKeys: map[string]string{
			rsaKID: writeFile(t, "rsa.pem", publicPEM(t, &k.rsa.PublicKey)),
			ecKID:  writeFile(t, "ec.pem", publicPEM(t, &k.ec.PublicKey)),
		},
		Issuer:   testIssuer,
		Audience: testAudience,
		Leeway:   5 * time.Second,
	}}
}

func newTestVerifier(t testing.TB, cfg config.Auth) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierParams{Cfg: cfg})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// validClaims are accepted by testConfig.
func validClaims(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": sub, "iss": testIssuer, "aud": testAudience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// with returns a copy of c with changes applied; a nil value deletes the claim.
func with(c jwt.MapClaims, changes jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// sign signs claims with method and key, setting kid when not empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
