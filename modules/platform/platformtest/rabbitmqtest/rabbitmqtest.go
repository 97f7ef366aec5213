// Package rabbitmqtest lets a test stop and start the RabbitMQ broker it
// runs against. That disturbs everyone else using the broker, so the tests
// that do it run only when asked (TEST_CHAT_RABBITMQ_RESTART=1), alone.
package rabbitmqtest

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRestart skips the test unless TEST_CHAT_RABBITMQ_RESTART=1.
func RequireRestart(t *testing.T) {
	t.Helper()
	if os.Getenv("TEST_CHAT_RABBITMQ_RESTART") != "1" {
		t.Skip("restarts the shared RabbitMQ: set TEST_CHAT_RABBITMQ_RESTART=1")
	}
}

// Ctl runs rabbitmqctl on the node TEST_CHAT_RABBITMQ_NODE names, else on
// rabbitmqctl's default: a private broker for TEST_CHAT_AMQP_URL spares the
// shared one.
func Ctl(t *testing.T, args ...string) {
	t.Helper()
	if node := os.Getenv("TEST_CHAT_RABBITMQ_NODE"); node != "" {
		args = append([]string{"-n", node}, args...)
	}
	out, err := exec.Command("rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Errorf("rabbitmqctl %v: %v: %s", args, err, out)
	}
}

// StopApp stops the broker's application; the test's cleanup starts it
// again if the test does not, so the broker is never left stopped.
func StopApp(t *testing.T) {
	t.Helper()
	Ctl(t, "stop_app")
	t.Cleanup(func() { Ctl(t, "start_app") })
}

// StartApp starts the broker's application again.
func StartApp(t *testing.T) {
	t.Helper()
	Ctl(t, "start_app")
}
