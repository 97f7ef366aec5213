package ident

import (
	"strings"
	"testing"
)

func TestValidIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id      string
		user, session bool
	}{
		{name: "plain user", id: "alice", user: true},
		{name: "email-like user", id: "alice@example.com", user: true},
		{name: "user with space", id: "al ice"},
		{name: "user with pipe (direct keys use it)", id: "a|b"},
		{name: "user too long", id: strings.Repeat("a", 129)},
		{name: "empty", id: ""},
		{name: "canonical uuid", id: "0193a3f4-0000-7000-8000-000000000000", user: true, session: true},
		{name: "uuid in braces", id: "{0193a3f4-0000-7000-8000-000000000000}"},
		{name: "uuid urn", id: "urn:uuid:0193a3f4-0000-7000-8000-000000000000", user: true},
		{name: "uuid without dashes", id: "0193a3f4000070008000000000000000", user: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ValidUserID(tc.id); got != tc.user {
				t.Errorf("ValidUserID(%q) = %v", tc.id, got)
			}
			if got := ValidSessionID(tc.id); got != tc.session {
				t.Errorf("ValidSessionID(%q) = %v", tc.id, got)
			}
		})
	}
}

// TestTokenOf: STOMP takes "Bearer <token>" or a bare token, and nothing
// with white space inside.
func TestTokenOf(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]string{
		"Bearer abc":     "abc",
		"bearer   x.y.z": "x.y.z",
		" abc ":          "abc",
		"Basic YTpi":     "",
		"Bearer a b":     "",
		"":               "",
	} {
		if got := TokenOf(value); got != want {
			t.Errorf("TokenOf(%q) = %q, want %q", value, got, want)
		}
	}
}
