package profiles

import (
	sharedmetrics "github.com/chat-service/chat/modules/metrics"

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
	if m.cache, err = sharedmetrics.Register(reg, m.cache); err != nil {
		return nil, err
	}
	if m.upstream, err = sharedmetrics.Register(reg, m.upstream); err != nil {
		return nil, err
	}
	if m.breaker, err = sharedmetrics.Register(reg, m.breaker); err != nil {
		return nil, err
	}
	return m, nil
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
