package auth

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/ident"
)

// FuzzVerify feeds arbitrary strings to the token parser: Verify never
// panics, every failure wraps ErrInvalidToken, and whatever it accepts
// (mutations of a valid token that keep its signature valid) names the
// user the token was signed for. The dev key is on, so its path is fuzzed
// too.
func FuzzVerify(f *testing.F) {
	cfg := config.Auth{
		JWT: config.JWT{HMACSecret: testSecret, Leeway: 30 * time.Second},
		Dev: config.Dev{Enabled: true, TokenTTL: time.Hour},
	}
	v, err := NewVerifier(VerifierParams{Cfg: cfg})
	if err != nil {
		f.Fatal(err)
	}
	d, err := NewDevIssuer(DevIssuerParams{Cfg: cfg, Verifier: v, Log: discard()})
	if err != nil {
		f.Fatal(err)
	}
	devTok, _, err := d.Issue("alice")
	if err != nil {
		f.Fatal(err)
	}
	hs := sign(f, jwt.SigningMethodHS256, []byte(testSecret), "", jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	for _, seed := range []string{hs, devTok, "", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", strings.Repeat("A", 9000)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error does not wrap ErrInvalidToken: %v", err)
			}
			return
		}
		if p.UserID != "alice" {
			t.Fatalf("accepted a token for %q", p.UserID)
		}
	})
}

// FuzzBearer: the Authorization header parser never panics and what it
// accepts is one non-empty token without white space.
func FuzzBearer(f *testing.F) {
	for _, seed := range []string{"Bearer abc", "bearer  x.y.z", "Basic abc", "Bearer", "Bearer a b", " Bearer\tx"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		tok, ok := ident.ParseBearer(value)
		if ok && (tok == "" || strings.ContainsAny(tok, " \t\r\n")) {
			t.Fatalf("ParseBearer(%q) = %q", value, tok)
		}
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", value)
		_, _ = BearerToken(r)
	})
}
