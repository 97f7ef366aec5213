package profiles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sony/gobreaker"

	"github.com/chat-service/chat/config"
)

// Breaker is the Provider decorator that guards every upstream call: a
// gobreaker circuit breaker (profiles.breaker.*: max_failures consecutive
// failures open it, one half-open probe after open_timeout), a per-call
// timeout (profiles.timeout), a plugin panic turned into an error, and the
// upstream duration and breaker state metrics. While the breaker is open a
// call fails at once with gobreaker.ErrOpenState. It wraps the upstream
// call, not the cache: CachedDirectory sits in front of it.
type Breaker struct {
	name        string
	provider    Provider
	pairs       PairChecker // nil: every pair is allowed, without a call
	cb          *gobreaker.CircuitBreaker
	timeout     time.Duration
	openTimeout time.Duration
	m           *metrics
	log         *slog.Logger
}

var (
	_ Provider    = (*Breaker)(nil)
	_ PairChecker = (*Breaker)(nil)
)

// NewBreaker wraps p, named name (profiles.provider) in logs, with the
// breaker and timeout of cfg.
func NewBreaker(name string, p Provider, cfg config.Profiles, log *slog.Logger, m *metrics) *Breaker {
	b := &Breaker{name: name, provider: p, timeout: cfg.Timeout, openTimeout: cfg.Breaker.OpenTimeout, m: m, log: log}
	if pc, ok := p.(PairChecker); ok {
		b.pairs = pc
	}
	b.cb = gobreaker.NewCircuitBreaker(gobreaker.Settings{
		Name:        "profiles",
		MaxRequests: 1, // one half-open probe
		Timeout:     cfg.Breaker.OpenTimeout,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return n.ConsecutiveFailures >= cfg.Breaker.MaxFailures
		},
		OnStateChange: func(_ string, from, to gobreaker.State) { b.changed(from, to) },
		// Canceled means the directory closed and stopped the call, which
		// says nothing about the provider.
		IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, context.Canceled) },
	})
	return b
}

// Profiles calls the provider through the breaker, bounded by profiles.timeout.
func (b *Breaker) Profiles(ctx context.Context, ids []string) (map[string]Profile, error) {
	v, err := b.call(ctx, "profiles", func(ctx context.Context) (any, error) { return b.provider.Profiles(ctx, ids) })
	found, _ := v.(map[string]Profile)
	return found, err
}

// CanChat asks the provider through the breaker, bounded by profiles.timeout.
// A provider that cannot veto pairings allows every one, without a call.
func (b *Breaker) CanChat(ctx context.Context, from, to string) (bool, error) {
	if b.pairs == nil {
		return true, nil
	}
	v, err := b.call(ctx, "can_chat", func(ctx context.Context) (any, error) { return b.pairs.CanChat(ctx, from, to) })
	allowed, _ := v.(bool)
	return allowed, err
}

// Close closes the provider if it is an io.Closer.
func (b *Breaker) Close() error {
	if cl, ok := b.provider.(interface{ Close() error }); ok {
		if err := cl.Close(); err != nil {
			return fmt.Errorf("close profile provider %s: %w", b.name, err)
		}
	}
	return nil
}

// State reports the breaker's state: "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.State().String() }

// call runs fn through the breaker with the timeout, timing it and turning
// a plugin panic into an error.
func (b *Breaker) call(ctx context.Context, op string, fn func(context.Context) (any, error)) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.cb.Execute(func() (v any, err error) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				v, err = nil, fmt.Errorf("provider %s panicked: %v", b.name, r)
			}
			b.m.upstream.WithLabelValues(op, outcome(ctx, err)).Observe(time.Since(start).Seconds())
		}()
		return fn(ctx)
	})
}

func outcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "timeout"
	default:
		return "error"
	}
}

// isOpen reports whether err says the breaker refused the call.
func isOpen(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// changed runs inside gobreaker's lock: no breaker calls here.
func (b *Breaker) changed(from, to gobreaker.State) {
	b.m.breaker.Set(breakerValue(to))
	switch to {
	case gobreaker.StateOpen:
		b.log.Warn("profile provider breaker open: serving cached profiles only",
			"provider", b.name, "from", from.String(), "probe_after", b.openTimeout)
	default:
		b.log.Info("profile provider breaker state", "provider", b.name, "from", from.String(), "to", to.String())
	}
}
