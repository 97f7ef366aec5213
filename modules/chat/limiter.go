package chat

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is the per-user send budget shared by REST and STOMP
// (limits.rate_per_second, limits.burst). Idle users' buckets are dropped
// by a sweep so the map does not grow with every user ever seen.
type Limiter struct {
	rate   rate.Limit
	burst  int
	detail string // the rate_limited problem's detail

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleAfter is how long an untouched bucket lives; by then it is full again,
// so dropping it changes nothing a user could notice.
func (l *Limiter) idleAfter() time.Duration {
	full := time.Duration(float64(l.burst) / float64(l.rate) * float64(time.Second))
	return max(full, time.Minute)
}

// NewLimiter makes a limiter of perSecond sends with a burst.
func NewLimiter(perSecond float64, burst int) *Limiter {
	return &Limiter{rate: rate.Limit(perSecond), burst: burst, detail: "too many messages; slow down", buckets: map[string]*bucket{}, swept: time.Now()}
}

// NewReadLimiter makes the per-user read budget (limits.read_rate_per_second):
// history pages, session lists, /unread and since-seq replays. A rate <= 0
// means no budget (nil), which Allow accepts.
func NewReadLimiter(perSecond float64, burst int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	l := NewLimiter(perSecond, burst)
	l.detail = "too many reads; slow down"
	return l
}

// Allow spends one token of userID's budget, or returns a rate_limited
// error carrying how long until a token is available.
func (l *Limiter) Allow(userID string) error {
	if l == nil {
		return nil
	}
	now := time.Now()
	l.mu.Lock()
	b, ok := l.buckets[userID]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[userID] = b
	}
	b.seen = now
	if now.Sub(l.swept) > l.idleAfter() {
		for id, other := range l.buckets {
			if now.Sub(other.seen) > l.idleAfter() {
				delete(l.buckets, id)
			}
		}
		l.swept = now
	}
	l.mu.Unlock()

	r := b.lim.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	r.CancelAt(now)
	secs := int(math.Ceil(delay.Seconds()))
	return &Error{Kind: ErrRateLimited, Code: "rate_limited", Detail: l.detail, RetryAfter: time.Duration(secs) * time.Second}
}
