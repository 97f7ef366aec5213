package profiles_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/profiles/profilestest"
)

var (
	alice = profiles.Profile{UserID: "alice", DisplayName: "Alice", AvatarURL: "https://a.test/alice.png"}
	bob   = profiles.Profile{UserID: "bob", DisplayName: "Bob"}
	carol = profiles.Profile{UserID: "carol", DisplayName: "Carol"}
)

type harness struct {
	c     *profiles.CachedDirectory
	fake  *profilestest.Fake
	clock *profiles.FakeClock
	reg   *prometheus.Registry
}

// newHarness builds a Cache over a Fake knowing alice, bob and carol, with a
// fake clock for ttl decisions (the breaker and timeouts use real time).
func newHarness(t *testing.T, mod func(*config.Profiles, *profiles.DecorateParams)) *harness {
	t.Helper()
	h := &harness{
		fake:  profilestest.NewFake(alice, bob, carol),
		clock: profiles.NewFakeClock(),
		reg:   prometheus.NewRegistry(),
	}
	p := profiles.DecorateParams{Name: "fake", Provider: h.fake, Cfg: profilestest.TestConfig(), Registerer: h.reg}
	p.Cfg.Cache = config.ProfileCache{Size: 100, TTL: time.Minute, NegativeTTL: 10 * time.Second, StaleFor: time.Hour}
	if mod != nil {
		mod(&p.Cfg, &p)
	}
	c, err := profiles.DecorateWithClock(p, h.clock)
	if err != nil {
		t.Fatalf("Decorate: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() }) // nothing to report in cleanup
	h.c = c
	return h
}

func (h *harness) lookup(t *testing.T, ids ...string) map[string]profiles.Profile {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return h.c.Lookup(ctx, ids)
}

func (h *harness) cacheCount(t *testing.T, result string) float64 {
	t.Helper()
	return metric(t, h.reg, "chat_profiles_cache_requests_total", "result", result)
}

// metric returns the value of the series name{label="value"} (the only
// series when label is ""), or 0 when there is none.
func metric(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || (l.GetName() == label && l.GetValue() == value)
			}
			if !match {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// waitStarted waits for the fake's next upstream call.
func waitStarted(t *testing.T, f *profilestest.Fake) []string {
	t.Helper()
	select {
	case ids := <-f.Started():
		return ids
	case <-time.After(5 * time.Second):
		t.Fatal("no upstream call within 5s")
		return nil
	}
}

// eventually polls cond until it holds or 5s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func TestLookupConcurrentColdIDMakesOneCall(t *testing.T) {
	h := newHarness(t, func(_ *config.Profiles, p *profiles.DecorateParams) { p.LookupWait = 10 * time.Second })
	release := h.fake.Hold()
	const n = 50
	waiting := make(chan struct{}, n)
	profiles.SetWaitHook(h.c, func() { waiting <- struct{}{} })

	results := make(chan map[string]profiles.Profile, n)
	for range n {
		go func() { results <- h.lookup(t, "alice") }()
	}
	// All 50 Lookups wait on the provider before it may answer.
	for i := range n {
		select {
		case <-waiting:
		case <-time.After(5 * time.Second):
			release()
			t.Fatalf("only %d of %d lookups waiting", i, n)
		}
	}
	release()
	for range n {
		if got := <-results; got["alice"] != alice {
			t.Fatalf("Lookup = %v, want alice", got)
		}
	}
	if got := h.fake.Calls(); got != 1 {
		t.Fatalf("upstream calls = %d, want 1", got)
	}
	if got := h.cacheCount(t, "miss"); got != n {
		t.Errorf("misses = %v, want %d", got, n)
	}
}

func TestLookupBatchesMissingIDs(t *testing.T) {
	h := newHarness(t, nil)
	h.lookup(t, "alice")
	got := h.lookup(t, "alice", "bob", "carol", "bob", "", "nobody")
	want := map[string]profiles.Profile{"alice": alice, "bob": bob, "carol": carol}
	if len(got) != len(want) || got["alice"] != alice || got["bob"] != bob || got["carol"] != carol {
		t.Fatalf("Lookup = %v, want %v", got, want)
	}
	calls := h.fake.CallIDs()
	if len(calls) != 2 {
		t.Fatalf("upstream calls = %v, want 2", calls)
	}
	second := slices.Sorted(slices.Values(calls[1]))
	if !slices.Equal(second, []string{"bob", "carol", "nobody"}) {
		t.Errorf("second call ids = %v, want the missing ids once each", second)
	}
}

func TestLookupTTL(t *testing.T) {
	h := newHarness(t, nil) // ttl 1m, stale_for 1h
	if got := h.lookup(t, "alice"); got["alice"] != alice {
		t.Fatalf("Lookup = %v", got)
	}
	waitStarted(t, h.fake)

	h.clock.Advance(59 * time.Second)
	h.lookup(t, "alice")
	if got := h.fake.Calls(); got != 1 {
		t.Fatalf("within ttl: upstream calls = %d, want 1", got)
	}
	if got := h.cacheCount(t, "hit"); got != 1 {
		t.Errorf("hits = %v, want 1", got)
	}

	// Past ttl: the stale profile is served at once and refreshed behind the caller.
	h.fake.Put(profiles.Profile{UserID: "alice", DisplayName: "Alice v2"})
	release := h.fake.Hold()
	h.clock.Advance(2 * time.Second)
	if got := h.lookup(t, "alice"); got["alice"] != alice {
		t.Fatalf("stale Lookup = %v, want the old alice without waiting", got)
	}
	waitStarted(t, h.fake)
	release()
	eventually(t, "refreshed profile", func() bool {
		return h.lookup(t, "alice")["alice"].DisplayName == "Alice v2"
	})
	if got := h.cacheCount(t, "stale"); got < 1 {
		t.Errorf("stale = %v, want ≥ 1", got)
	}
	if got := h.fake.Calls(); got != 2 {
		t.Errorf("upstream calls = %d, want 2: %v", got, h.fake.CallIDs())
	}

	// Past ttl + stale_for the entry is gone: a miss that waits for the provider.
	h.fake.FailWith(errors.New("down"))
	h.clock.Advance(time.Minute + time.Hour + time.Second)
	if got := h.lookup(t, "alice"); len(got) != 0 {
		t.Fatalf("expired, provider down: Lookup = %v, want nothing", got)
	}
}

func TestLookupNegativeCaching(t *testing.T) {
	h := newHarness(t, nil) // negative_ttl 10s
	if got := h.lookup(t, "nobody"); len(got) != 0 {
		t.Fatalf("Lookup(nobody) = %v", got)
	}
	h.clock.Advance(9 * time.Second)
	h.lookup(t, "nobody")
	if got := h.fake.Calls(); got != 1 {
		t.Fatalf("within negative ttl: upstream calls = %d, want 1", got)
	}
	h.fake.Put(profiles.Profile{UserID: "nobody", DisplayName: "Somebody"})
	h.clock.Advance(2 * time.Second)
	if got := h.lookup(t, "nobody"); got["nobody"].DisplayName != "Somebody" {
		t.Fatalf("after negative ttl: Lookup = %v, want the new profile", got)
	}
	if got := h.fake.Calls(); got != 2 {
		t.Errorf("upstream calls = %d, want 2: %v", got, h.fake.CallIDs())
	}
}

func TestLookupNoNegativeCaching(t *testing.T) {
	h := newHarness(t, func(c *config.Profiles, _ *profiles.DecorateParams) { c.Cache.NegativeTTL = 0 })
	h.lookup(t, "nobody")
	h.lookup(t, "nobody")
	if got := h.fake.Calls(); got != 2 {
		t.Fatalf("negative_ttl 0: upstream calls = %d, want 2", got)
	}
}

func TestLookupServesStaleWhileProviderFails(t *testing.T) {
	h := newHarness(t, nil)
	h.lookup(t, "alice")
	h.fake.FailWith(errors.New("500"))
	h.clock.Advance(30 * time.Minute) // past ttl, within stale_for
	for range 5 {
		if got := h.lookup(t, "alice", "bob"); got["alice"] != alice || len(got) != 1 {
			t.Fatalf("Lookup = %v, want stale alice and no bob", got)
		}
	}
}

func TestBreakerOpensOnErrorsAndRecovers(t *testing.T) {
	// max_failures 3; open long enough for the checks below on a slow machine.
	h := newHarness(t, func(c *config.Profiles, _ *profiles.DecorateParams) { c.Breaker.OpenTimeout = 500 * time.Millisecond })
	h.lookup(t, "alice")
	h.fake.FailWith(errors.New("upstream 500"))
	for i := range 3 {
		if got := h.lookup(t, "cold"+string(rune('a'+i))); len(got) != 0 {
			t.Fatalf("Lookup = %v", got)
		}
	}
	if s := h.c.Breaker().State(); s != "open" {
		t.Fatalf("after 3 failures breaker is %s, want open", s)
	}
	if v := metric(t, h.reg, "chat_profiles_breaker_state", "", ""); v != 2 {
		t.Errorf("chat_profiles_breaker_state = %v, want 2", v)
	}
	calls := h.fake.Calls()
	for i := range 20 {
		start := time.Now()
		got := h.lookup(t, "alice", "other"+string(rune('a'+i)))
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("Lookup with the breaker open took %s", d)
		}
		if got["alice"] != alice || len(got) != 1 {
			t.Fatalf("breaker open: Lookup = %v, want cached alice only", got)
		}
	}
	if got := h.fake.Calls(); got != calls {
		t.Fatalf("breaker open: upstream calls grew from %d to %d", calls, got)
	}
	if h.c.CanChat(t.Context(), "alice", "bob") {
		t.Error("breaker open: CanChat = true, want fail closed")
	}

	h.fake.FailWith(nil)
	eventually(t, "half-open probe to recover", func() bool {
		return h.lookup(t, "bob")["bob"] == bob
	})
	if s := h.c.Breaker().State(); s != "closed" {
		t.Errorf("after a good probe breaker is %s, want closed", s)
	}
	if v := metric(t, h.reg, "chat_profiles_breaker_state", "", ""); v != 0 {
		t.Errorf("chat_profiles_breaker_state = %v, want 0", v)
	}
}

func TestBreakerOpensOnHangingProvider(t *testing.T) {
	h := newHarness(t, func(c *config.Profiles, p *profiles.DecorateParams) {
		c.Timeout = 300 * time.Millisecond
		c.Breaker.OpenTimeout = time.Hour
		p.LookupWait = 20 * time.Millisecond
	})
	h.lookup(t, "alice")
	h.fake.Hang(true)
	for i := range 3 {
		start := time.Now()
		got := h.lookup(t, "alice", "cold"+string(rune('a'+i)))
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("Lookup with a hung provider took %s, want about lookup wait (20ms)", d)
		}
		if got["alice"] != alice || len(got) != 1 {
			t.Fatalf("Lookup = %v, want cached alice only", got)
		}
	}
	eventually(t, "breaker to open", func() bool { return h.c.Breaker().State() == "open" })
	calls := h.fake.Calls()
	for i := range 10 {
		start := time.Now()
		h.lookup(t, "more"+string(rune('a'+i)))
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("Lookup with the breaker open took %s", d)
		}
	}
	if got := h.fake.Calls(); got != calls {
		t.Fatalf("breaker open: upstream calls grew from %d to %d", calls, got)
	}
}

func TestLookupRespectsCallerContext(t *testing.T) {
	h := newHarness(t, func(_ *config.Profiles, p *profiles.DecorateParams) { p.LookupWait = 10 * time.Second })
	release := h.fake.Hold()
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if got := h.c.Lookup(ctx, []string{"alice"}); len(got) != 0 {
		t.Fatalf("Lookup = %v", got)
	}
	release()
	// The detached fetch still fills the cache.
	eventually(t, "background fill", func() bool { return h.lookup(t, "alice")["alice"] == alice })
	if got := h.fake.Calls(); got != 1 {
		t.Errorf("upstream calls = %d, want 1", got)
	}
}

func TestCanChat(t *testing.T) {
	t.Run("answers", func(t *testing.T) {
		h := newHarness(t, nil)
		h.fake.Deny("alice", "bob")
		for _, tc := range []struct {
			from, to string
			want     bool
		}{{"alice", "bob", false}, {"bob", "alice", false}, {"alice", "carol", true}} {
			if got := h.c.CanChat(t.Context(), tc.from, tc.to); got != tc.want {
				t.Errorf("CanChat(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.want)
			}
		}
	})
	t.Run("fail closed", func(t *testing.T) {
		h := newHarness(t, nil)
		h.fake.FailWith(errors.New("down"))
		if h.c.CanChat(t.Context(), "alice", "carol") {
			t.Error("provider down: CanChat = true, want false")
		}
	})
	t.Run("fail open", func(t *testing.T) {
		h := newHarness(t, func(c *config.Profiles, _ *profiles.DecorateParams) { c.CanChatFailOpen = true })
		h.fake.FailWith(errors.New("down"))
		if !h.c.CanChat(t.Context(), "alice", "carol") {
			t.Error("provider down, can_chat_fail_open: CanChat = false, want true")
		}
	})
	t.Run("caller gives up", func(t *testing.T) {
		h := newHarness(t, nil)
		h.fake.Hang(true)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if h.c.CanChat(ctx, "alice", "carol") {
			t.Error("caller gave up: CanChat = true, want fail closed")
		}
	})
	t.Run("concurrent questions share a call", func(t *testing.T) {
		h := newHarness(t, func(c *config.Profiles, _ *profiles.DecorateParams) { c.Timeout = 10 * time.Second })
		release := h.fake.Hold() // the first call stays in flight while all others ask
		defer release()
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				defer cancel()
				if h.c.CanChat(ctx, "alice", "carol") {
					t.Error("caller gave up: CanChat = true, want fail closed")
				}
			})
		}
		wg.Wait()
		if got := h.fake.PairCalls(); got != 1 {
			t.Errorf("upstream CanChat calls = %d for 20 concurrent questions, want 1", got)
		}
		release()
		if !h.c.CanChat(t.Context(), "alice", "carol") {
			t.Error("after release: CanChat = false, want true")
		}
	})
	t.Run("provider without PairChecker allows all", func(t *testing.T) {
		c, err := profiles.Decorate(profiles.DecorateParams{Provider: profilesOnly{}, Cfg: profilestest.TestConfig()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !c.CanChat(t.Context(), "a", "b") {
			t.Error("CanChat = false, want true")
		}
	})
}

type profilesOnly struct{}

func (profilesOnly) Profiles(context.Context, []string) (map[string]profiles.Profile, error) {
	return nil, errors.New("unused")
}

func TestProviderPanicIsAFailure(t *testing.T) {
	c, err := profiles.Decorate(profiles.DecorateParams{Provider: panicky{}, Cfg: profilestest.TestConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		if got := c.Lookup(t.Context(), []string{"a"}); len(got) != 0 {
			t.Fatalf("Lookup = %v", got)
		}
	}
	if s := c.Breaker().State(); s != "open" {
		t.Errorf("after 3 panics breaker is %s, want open", s)
	}
}

type panicky struct{}

func (panicky) Profiles(context.Context, []string) (map[string]profiles.Profile, error) {
	panic("plugin bug")
}

func TestClose(t *testing.T) {
	h := newHarness(t, func(c *config.Profiles, _ *profiles.DecorateParams) { c.Timeout = time.Hour })
	h.lookup(t, "alice")
	h.fake.Hang(true)
	h.clock.Advance(2 * time.Minute)
	h.lookup(t, "alice") // stale: starts a hanging refresh
	waitStarted(t, h.fake)
	waitStarted(t, h.fake)
	done := make(chan error, 1)
	go func() { done <- h.c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the hanging upstream call")
	}
	calls := h.fake.Calls()
	if got := h.lookup(t, "alice", "bob"); got["alice"] != alice || len(got) != 1 {
		t.Errorf("after Close: Lookup = %v, want cached alice only", got)
	}
	if h.fake.Calls() != calls {
		t.Error("after Close the provider was called")
	}
}
