package messaging

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store/storetest"
)

// TestBrokerRestart restarts the real RabbitMQ (rabbitmqctl stop_app,
// start_app) while messages are sent. It disturbs every other user of the
// broker, so it runs only when TEST_CHAT_RABBITMQ_RESTART=1; TestRelayOutage
// covers the same recovery through a proxy on every run.
func TestBrokerRestart(t *testing.T) {
	if os.Getenv("TEST_CHAT_RABBITMQ_RESTART") != "1" {
		t.Skip("restarts the shared RabbitMQ: set TEST_CHAT_RABBITMQ_RESTART=1")
	}
	s := newSetup(t, storetest.NewPostgres(t), relayAMQP)
	a := startInstance(t, s, "a")
	b := startInstance(t, s, "b")
	sessions := a.createSessions(t, 4, users...)
	a.sendAll(t, sessions, 25, users)
	b.hub.waitFor(t, 30*time.Second, "messages before the restart", func(evs []chat.Event) bool {
		n, _ := uniqueMessages(evs)
		return n >= 100
	})

	rabbitmqctl(t, "stop_app")
	t.Cleanup(func() { rabbitmqctl(t, "start_app") }) // never leave the broker stopped
	a.sendAll(t, sessions, 50, users)
	rabbitmqctl(t, "start_app")

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

// rabbitmqctl runs on the node TEST_CHAT_RABBITMQ_NODE names, else on
// rabbitmqctl's default: a private broker for TEST_CHAT_AMQP_URL spares the
// shared one.
func rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	if node := os.Getenv("TEST_CHAT_RABBITMQ_NODE"); node != "" {
		args = append([]string{"-n", node}, args...)
	}
	out, err := exec.Command("rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Errorf("rabbitmqctl %v: %v: %s", args, err, out)
	}
}
