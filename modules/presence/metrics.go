package presence

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/modules/metrics"
)

// register adds the tracker's gauges and counters to reg; nil: none.
func (t *Tracker) register(reg prometheus.Registerer, withBus bool) error {
	if reg == nil {
		return nil
	}
	gauge := func(name, help string, f func() float64) error {
		_, err := metrics.Register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "chat", Subsystem: "presence", Name: name, Help: help,
		}, f))
		return err
	}
	locked := func(f func() float64) func() float64 {
		return func() float64 { t.mu.Lock(); defer t.mu.Unlock(); return f() }
	}
	if err := gauge("online_users", "Users online on any instance, in this instance's view.",
		locked(func() float64 { return float64(len(t.online)) })); err != nil {
		return err
	}
	if err := gauge("local_users", "Users with at least one STOMP connection to this instance.",
		locked(func() float64 { return float64(len(t.local)) })); err != nil {
		return err
	}
	if withBus {
		if err := gauge("instances", "Instances this one hears on the presence exchange, itself included.",
			locked(func() float64 { return float64(len(t.peers) + 1) })); err != nil {
			return err
		}
		if err := gauge("bus_up", "1 while the presence exchange connection is up.",
			locked(func() float64 {
				if t.busUp {
					return 1
				}
				return 0
			})); err != nil {
			return err
		}
	}
	events, err := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "chat", Subsystem: "presence", Name: "events_total",
		Help: "Presence changes announced by this instance to its connections, by result (sent, dropped: delivery queue full, failed: contacts unreadable).",
	}, []string{"result"}))
	if err != nil {
		return err
	}
	t.sent, t.dropped, t.failed = events.WithLabelValues("sent"), events.WithLabelValues("dropped"), events.WithLabelValues("failed")
	return nil
}
