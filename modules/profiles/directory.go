package profiles

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
)

// DefaultLookupWait is how long Lookup waits for the provider when an id is
// not cached (never longer than profiles.timeout). The fetch itself goes on
// in the background up to profiles.timeout and fills the cache for the next
// Lookup, so a slow or hung provider costs a send at most this long, and
// nothing once the breaker is open.
const DefaultLookupWait = 250 * time.Millisecond

var errClosed = errors.New("profile directory closed")

// clock is the time source of the cache; otter.Clock plus Now.
type clock interface {
	otter.Clock
	Now() time.Time
}

// CachedDirectory is the Directory in front of the guarded provider
// (Breaker):
//
//   - an otter cache (W-TinyLFU, profiles.cache.size) of profiles, fresh for
//     profiles.cache.ttl and then served as stale for up to
//     profiles.cache.stale_for while a refresh runs in the background, plus
//     short negative entries (profiles.cache.negative_ttl) for ids the
//     provider says do not exist;
//   - batching and deduplication: one upstream call fetches every id of a
//     Lookup that nobody is fetching yet, and concurrent Lookups of an id
//     share the call in flight (N concurrent cold lookups → 1 call). otter
//     does both (BulkGet with a bulk loader and refresh-after-write); this
//     type bounds how long a Lookup waits for them.
//
// Lookup never returns an error and waits for the provider at most
// LookupWait: upstream calls run detached from the caller and fill the cache
// when they finish. CanChat waits for the answer (at most profiles.timeout,
// nothing when the breaker is open) and applies profiles.can_chat_fail_open
// when there is none.
type CachedDirectory struct {
	name     string
	upstream *Breaker
	log      *slog.Logger
	m        *metrics
	entries  *otter.Cache[string, entry]
	loader   otter.BulkLoader[string, entry]
	sf       singleflight.Group
	now      func() time.Time

	ttl, negativeTTL, lookupWait time.Duration
	failOpen                     bool

	base   context.Context // canceled by Close; bounds background calls
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards closed and wg.Add
	closed bool

	waitHook func() // tests: called when a Lookup starts waiting on fetches
}

var _ Directory = (*CachedDirectory)(nil)

// entry is one cached answer: a profile, or "the provider does not know this id".
type entry struct {
	profile    Profile
	found      bool
	freshUntil time.Time
}

func newCachedDirectory(p DecorateParams, upstream *Breaker, m *metrics) (*CachedDirectory, error) {
	cfg := p.Cfg
	c := &CachedDirectory{
		name:        p.Name,
		upstream:    upstream,
		log:         p.Log,
		m:           m,
		now:         time.Now,
		ttl:         cfg.Cache.TTL,
		negativeTTL: cfg.Cache.NegativeTTL,
		lookupWait:  min(cmp.Or(p.LookupWait, DefaultLookupWait), cfg.Timeout),
		failOpen:    cfg.CanChatFailOpen,
	}
	c.loader = otter.BulkLoaderFunc[string, entry](c.load)
	opts := &otter.Options[string, entry]{
		MaximumSize: cfg.Cache.Size,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, entry]) time.Duration {
			if e.Value.found {
				return cfg.Cache.TTL + cfg.Cache.StaleFor
			}
			return cfg.Cache.NegativeTTL
		}),
		// A profile past ttl is refreshed in the background (BulkRefresh
		// below) while it is served stale.
		RefreshCalculator: otter.RefreshWritingFunc(func(e otter.Entry[string, entry]) time.Duration {
			if e.Value.found {
				return cfg.Cache.TTL
			}
			return cfg.Cache.NegativeTTL
		}),
		Logger: &otter.NoopLogger{}, // load errors are logged once, by load
	}
	if p.clock != nil {
		opts.Clock = p.clock
		c.now = p.clock.Now
	}
	var err error
	if c.entries, err = otter.New(opts); err != nil {
		return nil, fmt.Errorf("profiles.cache: %w", err)
	}
	c.base, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Breaker is the decorator this directory calls the provider through.
func (c *CachedDirectory) Breaker() *Breaker { return c.upstream }

// Lookup returns the profiles it has or can get quickly for ids; see CachedDirectory.
func (c *CachedDirectory) Lookup(ctx context.Context, ids []string) map[string]Profile {
	out := make(map[string]Profile, len(ids))
	now := c.now()
	var missing, stale []string
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup || id == "" {
			continue
		}
		seen[id] = struct{}{}
		e, ok := c.entries.GetIfPresent(id)
		switch {
		case !ok:
			missing = append(missing, id)
		case now.Before(e.freshUntil):
			c.m.cache.WithLabelValues("hit").Inc()
			if e.found {
				out[id] = e.profile
			}
		case e.found: // past ttl, within stale_for: serve it, refresh behind the caller
			c.m.cache.WithLabelValues("stale").Inc()
			out[id] = e.profile
			stale = append(stale, id)
		default: // an expired negative entry otter has not dropped yet
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		c.m.cache.WithLabelValues("miss").Add(float64(len(missing)))
	}
	if len(missing)+len(stale) == 0 {
		return out
	}
	// otter loads the missing ids (joining loads in flight) and refreshes
	// the stale ones in the background (joining refreshes in flight).
	done := c.fetch(ctx, append(missing, stale...))
	if len(missing) > 0 && done != nil {
		c.await(ctx, done, missing, out)
	}
	return out
}

// fetch runs one otter BulkGet for ids in the background; its answer, when
// it comes, is sent on the returned channel (nil after Close).
func (c *CachedDirectory) fetch(ctx context.Context, ids []string) <-chan map[string]entry {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.wg.Add(1)
	c.mu.Unlock()
	done := make(chan map[string]entry, 1)
	go func() {
		defer c.wg.Done()
		bctx, cancel := c.callContext(ctx)
		defer cancel()
		got, _ := c.entries.BulkGet(bctx, ids, c.loader) // a failure is logged by load
		done <- got
	}()
	return done
}

// await waits for done up to lookupWait or ctx and copies the profiles of
// missing into out: from done's answer, or, when the wait ends first, what
// other fetches brought meanwhile. The fetch goes on and fills the cache.
func (c *CachedDirectory) await(ctx context.Context, done <-chan map[string]entry, missing []string, out map[string]Profile) {
	if c.waitHook != nil {
		c.waitHook()
	}
	timer := time.NewTimer(c.lookupWait)
	defer timer.Stop()
	select {
	case got := <-done:
		for _, id := range missing {
			if e, ok := got[id]; ok && e.found {
				out[id] = e.profile
			}
		}
		return
	case <-timer.C:
		c.log.Debug("profile lookup stopped waiting for the provider", "provider", c.name, "wait", c.lookupWait)
	case <-ctx.Done():
	}
	now := c.now()
	for _, id := range missing {
		if e, ok := c.entries.GetIfPresent(id); ok && e.found && now.Before(e.freshUntil) {
			out[id] = e.profile
		}
	}
}

// load is the otter BulkLoader: one upstream call for ids. A profile is
// fresh for profiles.cache.ttl; an id the provider does not know gets a
// negative entry for profiles.cache.negative_ttl, or none (on a refresh
// otter then drops the stale profile). After Close it calls nobody.
func (c *CachedDirectory) load(ctx context.Context, ids []string) (map[string]entry, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	// The caller's values, not its cancellation (the answer fills the cache
	// for everyone); otter hands refreshes a context without one anyway.
	// Close cancels the call.
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.base, cancel)
	defer func() { stop(); cancel() }()

	found, err := c.upstream.Profiles(ctx, ids)
	if err != nil {
		c.logFailure("profiles", err, "ids", len(ids))
		return nil, err
	}
	now := c.now()
	out := make(map[string]entry, len(ids))
	for _, id := range ids { // ids the provider was not asked for are ignored
		p, ok := found[id]
		switch {
		case ok:
			p.UserID = id
			out[id] = entry{profile: p, found: true, freshUntil: now.Add(c.ttl)}
		case c.negativeTTL > 0:
			out[id] = entry{freshUntil: now.Add(c.negativeTTL)}
		}
	}
	return out, nil
}

// CanChat asks the provider whether from may start a conversation with to.
// Concurrent identical questions share one upstream call. Without an answer
// (breaker open, error, timeout, ctx done) it returns profiles.can_chat_fail_open.
func (c *CachedDirectory) CanChat(ctx context.Context, from, to string) bool {
	if c.upstream.pairs == nil {
		return true // the provider vetoes nothing
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.failOpen
	}
	c.wg.Add(1)
	c.mu.Unlock()

	type answer struct {
		v   any
		err error
	}
	res := make(chan answer, 1)
	go func() {
		defer c.wg.Done()
		v, err, _ := c.sf.Do(from+"\x00"+to, func() (any, error) {
			cctx, cancel := c.callContext(ctx)
			defer cancel()
			v, err := c.upstream.CanChat(cctx, from, to)
			if err != nil {
				c.logFailure("can_chat", err, "from", from, "to", to, "fail_open", c.failOpen)
			}
			return v, err
		})
		res <- answer{v, err}
	}()
	select {
	case a := <-res:
		if a.err != nil {
			return c.failOpen
		}
		allowed, _ := a.v.(bool)
		return allowed
	case <-ctx.Done():
		return c.failOpen
	}
}

// callContext derives the context of one upstream call: the caller's values,
// not its cancellation (the answer fills the cache for everyone), canceled
// by Close. The Breaker bounds it with profiles.timeout.
func (c *CachedDirectory) callContext(caller context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(caller))
	stop := context.AfterFunc(c.base, cancel)
	return ctx, func() { stop(); cancel() }
}

func (c *CachedDirectory) logFailure(op string, err error, args ...any) {
	if isOpen(err) {
		c.log.Debug("profile provider call skipped: breaker open", append([]any{"provider", c.name, "op", op}, args...)...)
		return
	}
	if errors.Is(err, errClosed) || c.base.Err() != nil {
		return
	}
	c.log.Warn("profile provider call failed", append([]any{"provider", c.name, "op", op, "err", err}, args...)...)
}

// Close stops background upstream calls, waits for them and closes the
// provider (through the Breaker) if it is an io.Closer. Lookup and CanChat keep answering from the
// cache afterwards without calling the provider.
func (c *CachedDirectory) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.entries.StopAllGoroutines()
	return c.upstream.Close()
}
