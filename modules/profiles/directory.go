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
//     share the call in flight (N concurrent cold lookups → 1 call).
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
	sf       singleflight.Group
	now      func() time.Time

	ttl, negativeTTL, lookupWait time.Duration
	failOpen                     bool

	base   context.Context // canceled by Close; bounds background calls
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	inflight map[string]*fetch // id → the upstream call fetching it

	waitHook func() // tests: called when a Lookup starts waiting on fetches
}

var _ Directory = (*CachedDirectory)(nil)

// entry is one cached answer: a profile, or "the provider does not know this id".
type entry struct {
	profile    Profile
	found      bool
	freshUntil time.Time
}

// fetch is one upstream Profiles call; done is closed once profiles and err are set.
type fetch struct {
	done     chan struct{}
	profiles map[string]Profile
	err      error
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
		inflight:    make(map[string]*fetch),
	}
	opts := &otter.Options[string, entry]{
		MaximumSize: cfg.Cache.Size,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, entry]) time.Duration {
			if e.Value.found {
				return cfg.Cache.TTL + cfg.Cache.StaleFor
			}
			return cfg.Cache.NegativeTTL
		}),
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
	if len(stale) > 0 {
		_, _ = c.start(ctx, stale) // not waited for: the stale profiles are the answer
	}
	if len(missing) == 0 {
		return out
	}
	c.m.cache.WithLabelValues("miss").Add(float64(len(missing)))
	pending, fresh := c.start(ctx, missing)
	for id, e := range fresh {
		if e.found {
			out[id] = e.profile
		}
	}
	c.await(ctx, pending, out)
	return out
}

// start joins ids to the fetches in flight and starts one upstream call for
// the ids nobody is fetching. An id whose fresh entry appeared meanwhile is
// returned in fresh instead. Checking inflight and then the cache under mu,
// while run fills the cache before it leaves inflight, means no id is ever
// fetched twice at once.
func (c *CachedDirectory) start(ctx context.Context, ids []string) (pending map[string]*fetch, fresh map[string]entry) {
	pending = make(map[string]*fetch, len(ids))
	fresh = make(map[string]entry)
	f := &fetch{done: make(chan struct{})}
	var own []string
	now := c.now()

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if inflight, ok := c.inflight[id]; ok {
			pending[id] = inflight
			continue
		}
		if e, ok := c.entries.GetIfPresent(id); ok && now.Before(e.freshUntil) {
			fresh[id] = e
			continue
		}
		own = append(own, id)
		pending[id] = f
	}
	switch {
	case len(own) == 0:
	case c.closed:
		f.err = errClosed
		close(f.done)
	default:
		for _, id := range own {
			c.inflight[id] = f
		}
		c.wg.Add(1)
		go c.run(ctx, f, own)
	}
	return pending, fresh
}

// run makes the upstream call for ids, caches the answer and completes f.
func (c *CachedDirectory) run(caller context.Context, f *fetch, ids []string) {
	defer c.wg.Done()
	ctx, cancel := c.callContext(caller)
	defer cancel()
	found, err := c.upstream.Profiles(ctx, ids)

	result := make(map[string]Profile, len(ids))
	if err != nil {
		c.logFailure("profiles", err, "ids", len(ids))
	} else {
		now := c.now()
		for _, id := range ids { // ids the provider was not asked for are ignored
			p, ok := found[id]
			switch {
			case ok:
				p.UserID = id
				result[id] = p
				c.entries.Set(id, entry{profile: p, found: true, freshUntil: now.Add(c.ttl)})
			case c.negativeTTL > 0:
				c.entries.Set(id, entry{freshUntil: now.Add(c.negativeTTL)})
			default:
				c.entries.Invalidate(id) // no negative caching: forget a stale profile
			}
		}
	}
	f.profiles, f.err = result, err

	c.mu.Lock()
	for _, id := range ids {
		if c.inflight[id] == f {
			delete(c.inflight, id)
		}
	}
	c.mu.Unlock()
	close(f.done)
}

// await waits for pending fetches up to lookupWait or ctx, then copies what
// finished into out. Fetches still running go on and fill the cache.
func (c *CachedDirectory) await(ctx context.Context, pending map[string]*fetch, out map[string]Profile) {
	if len(pending) == 0 {
		return
	}
	if c.waitHook != nil {
		c.waitHook()
	}
	timer := time.NewTimer(c.lookupWait)
	defer timer.Stop()
	waited := make(map[*fetch]struct{}, 1)
wait:
	for _, f := range pending {
		if _, ok := waited[f]; ok {
			continue
		}
		waited[f] = struct{}{}
		select {
		case <-f.done:
		case <-timer.C:
			c.log.Debug("profile lookup stopped waiting for the provider", "provider", c.name, "wait", c.lookupWait)
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	for id, f := range pending {
		select {
		case <-f.done:
			if p, ok := f.profiles[id]; ok {
				out[id] = p
			}
		default:
		}
	}
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
