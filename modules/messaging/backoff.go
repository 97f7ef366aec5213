package messaging

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is the one retry schedule of messaging: exponential from
// initial to max, each wait jittered to [d/2, d] so that instances that
// failed together do not retry together. The zero value is not usable;
// newBackoff makes one. Not safe for concurrent use.
type backoff struct {
	initial, max, next time.Duration
}

func newBackoff(initial, max time.Duration) *backoff {
	return &backoff{initial: initial, max: max, next: initial}
}

// Next returns the wait before the next attempt and doubles the one after.
func (b *backoff) Next() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.max)
	return d/2 + rand.N(d/2+1)
}

// Reset starts the schedule again after a success.
func (b *backoff) Reset() { b.next = b.initial }

// Sleep waits Next(), or returns false at once when ctx ends.
func (b *backoff) Sleep(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
