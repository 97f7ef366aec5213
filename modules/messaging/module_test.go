package messaging

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store"
	"github.com/chat-service/chat/modules/store/storetest"
)

// TestModule assembles store.Module and Module with fx, as the platform
// does, for the embedded default and for PostgreSQL + RabbitMQ on the
// default amq.topic exchange: it provides chat.Events, *Commands and
// *Messaging (ready once started), and its routers run between start and stop.
func TestModule(t *testing.T) {
	cases := []struct {
		name    string
		storage func(testing.TB) config.Storage
		relay   string
	}{
		{"sqlite_memory", storetest.NewSQLite, config.RelayMemory},
		{"postgres_amqp", storetest.NewPostgres, config.RelayAMQP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, tc.storage(t), tc.relay)
			if tc.relay == config.RelayAMQP {
				s.relay.AMQP.Exchange = "amq.topic" // the shipped default, declared passively
			}
			hub, sender := newRecordingHub(), newFakeSender()
			var (
				events chat.Events
				cmds   *Commands
				m      *Messaging
			)
			app := fxtest.New(t,
				fx.NopLogger,
				fx.Supply(s.storage, s.relay, s.outbox, s.commands),
				fx.Provide(
					func() prometheus.Registerer { return prometheus.NewRegistry() },
					func() *slog.Logger { return testLogger(t) },
					func() Hub { return hub },
					func() Sender { return sender },
				),
				store.Module,
				Module,
				fx.Populate(&events, &cmds, &m),
			)
			app.RequireStart()
			defer app.RequireStop()

			if err := m.Ready(context.Background()); err != nil {
				t.Errorf("relay not ready: %v", err)
			}
			if err := cmds.Submit(context.Background(), "alice", chat.SendRequest{SessionID: "s", Content: "hi", ClientMessageID: "c-1"}); err != nil {
				t.Fatal(err)
			}
			sender.waitStored(t, 1)
			if err := events.Transient(context.Background(), chat.Event{Type: chat.EventTyping, SessionID: "s", UserID: "bob", Participants: users, Except: "bob"}); err != nil {
				t.Fatal(err)
			}
			// amq.topic is shared: other users of the broker may put events
			// in this instance's queue too. Look for this one.
			hub.waitFor(t, 10*time.Second, "the typing event", func(evs []chat.Event) bool {
				return slices.ContainsFunc(evs, func(ev chat.Event) bool {
					return ev.Type == chat.EventTyping && ev.SessionID == "s" && ev.Except == "bob"
				})
			})
		})
	}
}
