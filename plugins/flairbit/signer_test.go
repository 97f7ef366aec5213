package flairbit

import (
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestSignerReusesUntilNearExpiry(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	s := NewSigner(key, ServiceAuth{KeyID: "k", Issuer: "chat-service", Audience: "flairbit", TTL: 100 * time.Second})
	s.now = func() time.Time { return now }

	first, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	iat := func(tok string) time.Time {
		t.Helper()
		var c jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
			t.Fatal(err)
		}
		return c.IssuedAt.Time
	}

	now = now.Add(79 * time.Second) // 21s left: more than a fifth of 100s
	if tok, _ := s.Token(); tok != first {
		t.Fatal("re-signed with 21% of the ttl left")
	}
	now = now.Add(2 * time.Second) // 19s left
	second, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("reused a token with less than 20% of its ttl left")
	}
	if !iat(second).Equal(now) {
		t.Errorf("iat = %s, want %s", iat(second), now)
	}

	// Concurrent callers all get the one current token.
	now = now.Add(90 * time.Second)
	var wg sync.WaitGroup
	got := make([]string, 64)
	for i := range got {
		wg.Go(func() {
			tok, err := s.Token()
			if err != nil {
				t.Error(err)
			}
			got[i] = tok
		})
	}
	wg.Wait()
	for _, tok := range got {
		if tok != got[0] || tok == second {
			t.Fatal("concurrent callers got different or stale tokens")
		}
	}
}
