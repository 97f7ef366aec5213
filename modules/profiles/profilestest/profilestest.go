// Package profilestest helps test profile providers and the code that uses
// them: Run is the conformance suite every plugin passes, serving the
// Users/DeniedPairs fixture; Fake is a programmable provider; NewDirectory
// wraps a provider in the real decorators with test-sized settings.
package profilestest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/profiles"
)

// Users is the fixture a provider under Run must serve, exactly.
var Users = []profiles.Profile{
	{UserID: "alice", DisplayName: "Alice", AvatarURL: "https://cdn.example.test/alice.png"},
	{UserID: "bob", DisplayName: "Bob"},
	{UserID: "carol.3", DisplayName: "Càrol ✓ O'Neil", AvatarURL: "https://cdn.example.test/c.png?s=64&v=2"},
	{UserID: "dave@example.test", DisplayName: "Dave & Co"},
	{UserID: "mallory", DisplayName: "Mallory"},
}

// DeniedPairs are the pairs a PairChecker under Run refuses, in both
// directions; every other pair is allowed.
var DeniedPairs = [][2]string{{"bob", "mallory"}}

// Unknown are ids no provider under Run knows.
var Unknown = []string{"nobody", "ghost-42"}

// Option marks a documented difference of a backend.
type Option func(*options)

type options struct {
	knowsEveryone bool
}

// KnowsEveryone is for providers that answer every id (the stub generates a
// profile for ids it has no entry for): Run then expects a deterministic
// profile with a display name for Unknown ids instead of no entry.
func KnowsEveryone() Option { return func(o *options) { o.knowsEveryone = true } }

// Run is the conformance suite for a Provider serving Users and, if it is a
// PairChecker, DeniedPairs.
func Run(t *testing.T, p profiles.Provider, opts ...Option) {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	byID := make(map[string]profiles.Profile, len(Users))
	ids := make([]string, 0, len(Users))
	for _, u := range Users {
		byID[u.UserID] = u
		ids = append(ids, u.UserID)
	}
	ctx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	get := func(t *testing.T, ids []string) map[string]profiles.Profile {
		t.Helper()
		got, err := p.Profiles(ctx(t), ids)
		if err != nil {
			t.Fatalf("Profiles(%q): %v", ids, err)
		}
		return got
	}
	checkKnown := func(t *testing.T, got map[string]profiles.Profile, want []string) {
		t.Helper()
		for _, id := range want {
			if g, ok := got[id]; !ok {
				t.Errorf("Profiles: %q missing", id)
			} else if g != byID[id] {
				t.Errorf("Profiles: %q = %+v, want %+v", id, g, byID[id])
			}
		}
	}
	checkUnknown := func(t *testing.T, got map[string]profiles.Profile) {
		t.Helper()
		for _, id := range Unknown {
			g, ok := got[id]
			switch {
			case !o.knowsEveryone && ok:
				t.Errorf("Profiles: unknown id %q present: %+v", id, g)
			case o.knowsEveryone && !ok:
				t.Errorf("Profiles: %q missing; this provider knows everyone", id)
			case o.knowsEveryone && (g.UserID != id || g.DisplayName == ""):
				t.Errorf("Profiles: generated profile for %q = %+v, want its id and a display name", id, g)
			}
		}
	}

	t.Run("known ids", func(t *testing.T) {
		got := get(t, ids)
		checkKnown(t, got, ids)
		if len(got) != len(ids) {
			t.Errorf("Profiles returned %d profiles, want %d: %v", len(got), len(ids), slices.Sorted(maps.Keys(got)))
		}
	})
	t.Run("only the ids asked for", func(t *testing.T) {
		got := get(t, []string{"bob"})
		if len(got) != 1 {
			t.Errorf("Profiles([bob]) = %v, want bob only", slices.Sorted(maps.Keys(got)))
		}
		checkKnown(t, got, []string{"bob"})
	})
	t.Run("unknown ids", func(t *testing.T) {
		got := get(t, Unknown)
		checkUnknown(t, got)
		if o.knowsEveryone {
			again := get(t, Unknown)
			for _, id := range Unknown {
				if again[id] != got[id] {
					t.Errorf("generated profile for %q not deterministic: %+v then %+v", id, got[id], again[id])
				}
			}
		}
	})
	t.Run("known and unknown together", func(t *testing.T) {
		got := get(t, append(slices.Clone(Unknown), ids...))
		checkKnown(t, got, ids)
		checkUnknown(t, got)
	})
	t.Run("no ids", func(t *testing.T) {
		for _, in := range [][]string{nil, {}} {
			if got := get(t, in); len(got) != 0 {
				t.Errorf("Profiles(%#v) = %v, want empty", in, got)
			}
		}
	})
	t.Run("duplicate ids", func(t *testing.T) {
		got := get(t, []string{"alice", "alice", "bob"})
		checkKnown(t, got, []string{"alice", "bob"})
		if len(got) != 2 {
			t.Errorf("Profiles(alice, alice, bob) = %v", slices.Sorted(maps.Keys(got)))
		}
	})
	t.Run("keys are user ids", func(t *testing.T) {
		for k, v := range get(t, append(slices.Clone(ids), Unknown...)) {
			if k != v.UserID {
				t.Errorf("Profiles: key %q holds UserID %q", k, v.UserID)
			}
		}
	})
	t.Run("result belongs to the caller", func(t *testing.T) {
		got := get(t, []string{"alice"})
		got["alice"] = profiles.Profile{UserID: "alice", DisplayName: "changed"}
		delete(got, "alice")
		got["intruder"] = profiles.Profile{UserID: "intruder"}
		again := get(t, []string{"alice", "intruder"})
		checkKnown(t, again, []string{"alice"})
		if _, ok := again["intruder"]; ok && !o.knowsEveryone {
			t.Error("Profiles: a caller's change to a result leaked into the provider")
		}
	})
	t.Run("concurrent calls", func(t *testing.T) {
		c := ctx(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Go(func() {
				got, err := p.Profiles(c, []string{ids[i%len(ids)], Unknown[i%len(Unknown)]})
				if err != nil {
					errs <- err
					return
				}
				if g := got[ids[i%len(ids)]]; g != byID[ids[i%len(ids)]] {
					errs <- fmt.Errorf("concurrent Profiles: %+v", g)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("canceled context returns", func(t *testing.T) {
		c, cancel := context.WithCancel(t.Context())
		cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = p.Profiles(c, ids) // an error or an answer are both fine; hanging is not
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Profiles with a canceled context did not return within 5s")
		}
	})

	pc, ok := p.(profiles.PairChecker)
	if !ok {
		t.Logf("%T is not a PairChecker: the Directory allows every pair", p)
		return
	}
	t.Run("can chat", func(t *testing.T) {
		type pair struct {
			from, to string
			want     bool
		}
		var cases []pair
		for _, d := range DeniedPairs {
			cases = append(cases, pair{d[0], d[1], false}, pair{d[1], d[0], false})
		}
		cases = append(cases,
			pair{"alice", "bob", true}, pair{"bob", "alice", true},
			pair{"alice", "mallory", true}, pair{"carol.3", "dave@example.test", true},
		)
		for _, tc := range cases {
			got, err := pc.CanChat(ctx(t), tc.from, tc.to)
			if err != nil {
				t.Errorf("CanChat(%q, %q): %v", tc.from, tc.to, err)
				continue
			}
			if got != tc.want {
				t.Errorf("CanChat(%q, %q) = %v, want %v", tc.from, tc.to, got, tc.want)
			}
		}
	})
}

// TestConfig is a config.Profiles for tests: small cache, short timeouts, a
// breaker that opens after 3 failures and probes after 100ms.
func TestConfig() config.Profiles {
	cfg := config.Defaults().Profiles
	cfg.Provider = "test"
	cfg.Plugins = nil
	cfg.Cache = config.ProfileCache{Size: 1000, TTL: time.Minute, NegativeTTL: 10 * time.Second, StaleFor: time.Hour}
	cfg.Breaker = config.Breaker{MaxFailures: 3, OpenTimeout: 100 * time.Millisecond}
	cfg.Timeout = time.Second
	return cfg
}

// NewDirectory wraps p in the real decorators with TestConfig, closed by
// t.Cleanup: what code using a profiles.Directory should test against.
func NewDirectory(t testing.TB, p profiles.Provider) *profiles.CachedDirectory {
	t.Helper()
	c, err := profiles.Decorate(profiles.DecorateParams{Name: "test", Provider: p, Cfg: TestConfig()})
	if err != nil {
		t.Fatalf("profilestest.NewDirectory: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() }) // nothing to report in a test's cleanup
	return c
}
