package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/stomp"
)

// Module provides the *Tracker, makes it the STOMP hub's connection
// observer and, with relay.driver amqp, connects it to the other instances
// over the presence exchange. Platform includes it only when
// features.presence is on, before the gateway: its stop hook then runs
// after the gateway's drain, so that the drain's disconnects are still
// told to the other instances before the goodbye.
var Module = fx.Module("presence",
	fx.Decorate(func(log *slog.Logger) *slog.Logger { return log.With("module", "presence") }),
	fx.Provide(NewTracker),
	fx.Invoke(start),
)

// Hub is the STOMP hub as presence uses it.
type Hub interface {
	Deliverer
	Observe(o stomp.ConnObserver)
}

// Params are what the Tracker needs from the application.
type Params struct {
	fx.In
	Cfg      config.Presence
	Relay    config.Relay
	Contacts Contacts
	Hub      Hub
	Log      *slog.Logger

	Registerer prometheus.Registerer `optional:"true"`
}

// NewTracker builds the tracker (and its bus with relay.driver amqp) and
// makes it the hub's observer. It starts nothing.
func NewTracker(p Params) (*Tracker, *Bus, error) {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, nil, fmt.Errorf("presence instance id: %w", err)
	}
	t := New(Options{Self: hex.EncodeToString(id), TTL: p.Cfg.TTL, Contacts: p.Contacts, Deliver: p.Hub, Log: p.Log})
	var b *Bus
	if p.Relay.Driver == "amqp" {
		b = NewBus(p.Relay.AMQP.URL, p.Cfg.Exchange, t, p.Log)
	}
	if err := t.register(p.Registerer, b != nil); err != nil {
		return nil, nil, fmt.Errorf("presence metrics: %w", err)
	}
	p.Hub.Observe(t) // before the listener starts: no connection is missed
	return t, b, nil
}

func start(lc fx.Lifecycle, t *Tracker, b *Bus) {
	ctx, stop := context.WithCancel(context.Background()) // lives until OnStop
	done := make(chan struct{}, 2)
	lc.Append(fx.Hook{
		OnStart: func(start context.Context) error {
			go func() { t.Run(ctx); done <- struct{}{} }()
			if b == nil {
				done <- struct{}{}
				return nil
			}
			go func() { b.Run(ctx); done <- struct{}{} }()
			select { // a dead broker fails start-up, as the relay does
			case <-b.Up():
				return nil
			case <-start.Done():
				return fmt.Errorf("presence: connect to RabbitMQ exchange %s: %w", b.exchange, start.Err())
			}
		},
		OnStop: func(c context.Context) error {
			stop()
			for range 2 {
				select {
				case <-done:
				case <-c.Done():
					return c.Err()
				}
			}
			return nil
		},
	})
}
