// Package profiles owns the profile-provider contract: the Provider interface
// plugins implement, the registry chat.yaml's profiles.provider picks from,
// and the Directory the rest of the service uses (cache, breaker, timeout).
package profiles

import "context"

// Profile is what a provider knows about a user.
type Profile struct {
	UserID      string `json:"userId"`
	DisplayName string `json:"displayName"`
	AvatarURL   string `json:"avatarUrl"`
}

// Provider is implemented by plugins. Profiles returns the profiles it knows
// among ids (unknown ids are simply absent); an error means the provider
// could not answer and counts against the circuit breaker.
type Provider interface {
	Profiles(ctx context.Context, ids []string) (map[string]Profile, error)
}

// PairChecker is optionally implemented by a Provider that can veto pairings.
type PairChecker interface {
	CanChat(ctx context.Context, from, to string) (bool, error)
}

// Directory is what chat uses: fast, cached, never failing a send.
type Directory interface {
	// Lookup returns the profiles it can get for ids without making the
	// caller wait on a failing provider; missing ids are absent.
	Lookup(ctx context.Context, ids []string) map[string]Profile
	// CanChat says whether from may start a conversation with to, applying
	// profiles.can_chat_fail_open when the provider cannot answer.
	CanChat(ctx context.Context, from, to string) bool
}
