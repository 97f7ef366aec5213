package profiles

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/config"
)

// DecorateParams configures Decorate.
type DecorateParams struct {
	// Name is the provider's name (profiles.provider), for logs.
	Name     string
	Provider Provider
	// Cfg supplies profiles.cache.*, profiles.breaker.*, profiles.timeout and
	// profiles.can_chat_fail_open, as config validated them.
	Cfg config.Profiles
	// Log may be nil (discard).
	Log *slog.Logger
	// Registerer may be nil: the metrics are then kept but not exported.
	Registerer prometheus.Registerer
	// LookupWait bounds how long Lookup waits on the provider for ids it
	// does not have; 0 means DefaultLookupWait. Capped at Cfg.Timeout.
	LookupWait time.Duration

	clock clock // tests: drives ttl decisions and otter's expiry
}

// Decorate wraps p.Provider in the decorators every provider gets, from the
// inside out: Breaker (circuit breaker, per-call timeout) and
// CachedDirectory (cache, negative cache, stale serving, batching).
func Decorate(p DecorateParams) (*CachedDirectory, error) {
	if p.Provider == nil {
		return nil, errors.New("profiles: Decorate without a provider")
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(p.Registerer)
	if err != nil {
		return nil, err
	}
	b := NewBreaker(p.Name, p.Provider, p.Cfg, p.Log, m)
	return newCachedDirectory(p, b, m)
}
