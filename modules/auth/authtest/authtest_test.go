package authtest

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	v := Verifier(t)
	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{name: "valid", token: Token(t, "alice")},
		{name: "expired", token: TokenExpiring(t, "alice", time.Now().Add(-time.Hour)), wantErr: jwt.ErrTokenExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(tc.token)
			if tc.wantErr == nil && (err != nil || p.UserID != "alice") {
				t.Fatalf("Verify = %+v, %v", p, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}
