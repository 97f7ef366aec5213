package profiles

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker"
)

// metrics are the profile Directory's Prometheus series.
type metrics struct {
	cache    *prometheus.CounterVec   // result: hit | miss | stale
	upstream *prometheus.HistogramVec // op: profiles | can_chat; outcome: ok | error | timeout
	breaker  prometheus.Gauge         // 0 closed, 1 half-open, 2 open
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_profiles_cache_requests_total",
			Help: "Profile lookups per id by cache result: hit (fresh, or known unknown), miss, stale (served past ttl).",
		}, []string{"result"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chat_profiles_upstream_duration_seconds",
			Help:    "Duration of calls to the profile provider, by operation and outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op", "outcome"}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chat_profiles_breaker_state",
			Help: "Circuit breaker around the profile provider: 0 closed, 1 half-open, 2 open.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.cache, err = register(reg, m.cache); err != nil {
		return nil, err
	}
	if m.upstream, err = register(reg, m.upstream); err != nil {
		return nil, err
	}
	if m.breaker, err = register(reg, m.breaker); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same name (a second Directory in one process shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register profile metrics: %w", err)
}

func breakerValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	default:
		return 0
	}
}
