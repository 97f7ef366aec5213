package profiles

import (
	"sync"
	"time"
)

// FakeClock drives the cache's ttl decisions and otter's expiry in tests.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func NewFakeClock() *FakeClock { return &FakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *FakeClock) NowNano() int64 { return c.Now().UnixNano() }

// Tick returns nil: no periodic clean-up, expiry is checked on reads.
func (c *FakeClock) Tick(time.Duration) <-chan time.Time { return nil }

func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// DecorateWithClock is Decorate driven by clk.
func DecorateWithClock(p DecorateParams, clk *FakeClock) (*CachedDirectory, error) {
	p.clock = clk
	return Decorate(p)
}

// SetWaitHook makes every Lookup that waits on the provider call f first.
func SetWaitHook(c *CachedDirectory, f func()) { c.waitHook = f }
