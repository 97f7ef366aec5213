package messaging

import (
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest/rabbitmqtest"
	"github.com/chat-service/chat/modules/store/storetest"
)

// TestBrokerRestart restarts the real RabbitMQ (rabbitmqctl stop_app,
// start_app) while messages are sent. It disturbs every other user of the
// broker, so it runs only when TEST_CHAT_RABBITMQ_RESTART=1; TestRelayOutage
// covers the same recovery through a proxy on every run.
func TestBrokerRestart(t *testing.T) {
	rabbitmqtest.RequireRestart(t)
	s := newSetup(t, storetest.NewPostgres(t), config.RelayAMQP)
	a := startInstance(t, s, "a")
	b := startInstance(t, s, "b")
	sessions := a.createSessions(t, 4, users...)
	a.sendAll(t, sessions, 25, users)
	b.hub.waitFor(t, 30*time.Second, "messages before the restart", func(evs []chat.Event) bool {
		n, _ := uniqueMessages(evs)
		return n >= 100
	})

	rabbitmqtest.StopApp(t)
	a.sendAll(t, sessions, 50, users)
	rabbitmqtest.StartApp(t)

	for _, in := range []*instance{a, b} {
		evs := in.hub.waitFor(t, 120*time.Second, "every message on "+in.name+" after the restart", func(evs []chat.Event) bool {
			n, _ := uniqueMessages(evs)
			return n >= 300
		})
		n, dups := uniqueMessages(evs)
		t.Logf("%s: %d distinct messages, %d duplicates", in.name, n, dups)
		assertSeqOrderIgnoringDuplicates(t, in.name, evs)
	}
}
