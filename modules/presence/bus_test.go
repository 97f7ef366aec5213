package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/platform/platformtest/tcpproxy"
)

// startBusTracker runs a tracker with a bus on url until the test ends.
func startBusTracker(t *testing.T, self, url, exchange string, ttl time.Duration) (*Tracker, *fakeHub) {
	t.Helper()
	h := newFakeHub()
	tr := New(Options{Self: self, TTL: ttl, Flap: 200 * time.Millisecond, Deliver: h,
		Contacts: contacts{"x": {"w"}, "y": {"w"}, "w": {"x", "y"}}})
	b := NewBus(url, exchange, tr, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { tr.Run(ctx); done <- struct{}{} }()
	go func() { b.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	select {
	case <-b.Up():
	case <-time.After(10 * time.Second):
		t.Fatal("the bus did not connect")
	}
	return tr, h
}

func online(tr *Tracker, u string) bool {
	st, err := tr.Status(context.Background(), "w", []string{u})
	return err == nil && st[0].Online
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBusOutage: an instance that loses RabbitMQ keeps its view (it does
// not take the others for dead), and when the connection returns the
// changes it missed reach it by snapshot and are announced.
func TestBusOutage(t *testing.T) {
	amqpURL := os.Getenv("TEST_CHAT_AMQP_URL")
	if amqpURL == "" {
		t.Skip("needs TEST_CHAT_AMQP_URL")
	}
	sfx := make([]byte, 4)
	_, _ = rand.Read(sfx)
	exchange := "chat.presence.test." + hex.EncodeToString(sfx)
	const ttl = 2 * time.Second
	px, viaProxy := tcpproxy.ForURL(t, amqpURL, "5672")
	one, hub := startBusTracker(t, "one", viaProxy, exchange, ttl)
	two, _ := startBusTracker(t, "two", amqpURL, exchange, ttl)

	two.Connected("x")
	waitFor(t, "x online on the other instance", 5*time.Second, func() bool { return online(one, "x") })
	if !hub.wait(t, 2*time.Second) {
		t.Fatal("no presence event for x")
	}

	px.Cut()
	two.Disconnected("x")
	two.Connected("y")
	time.Sleep(ttl) // past the ttl/2 after which a silent instance is dropped
	if !online(one, "x") || hub.wait(t, 10*time.Millisecond) {
		t.Fatalf("cut off from RabbitMQ, the instance changed its view: x online %v, events %+v", online(one, "x"), hub.events("w"))
	}

	px.Restore()
	waitFor(t, "the missed changes after the reconnect", 15*time.Second, func() bool { return online(one, "y") && !online(one, "x") })
	waitFor(t, "presence events for both changes", 5*time.Second, func() bool { return len(hub.events("w")) == 3 })
	ev := hub.events("w")
	got := map[string]bool{}
	for _, e := range ev[1:] {
		got[e.UserID] = e.Online
	}
	if len(got) != 2 || !got["y"] || got["x"] {
		t.Fatalf("events after the reconnect %+v, want y online and x offline", ev[1:])
	}
}
