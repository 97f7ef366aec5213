package presence

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

type fakeBus struct {
	mu   sync.Mutex
	sent []wire
}

func (b *fakeBus) Publish(m wire) { b.mu.Lock(); b.sent = append(b.sent, m); b.mu.Unlock() }

func (b *fakeBus) syncsTo(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.sent {
		if m.T == kindSync && m.To == id {
			n++
		}
	}
	return n
}

// fakeHub records presence events per recipient.
type fakeHub struct {
	mu  sync.Mutex
	got map[string][]Event
	ch  chan struct{}
}

func newFakeHub() *fakeHub { return &fakeHub{got: map[string][]Event{}, ch: make(chan struct{}, 100)} }

func (h *fakeHub) Connections() int { return 1 }

func (h *fakeHub) DeliverToUsers(users []string, body []byte) int {
	if len(users) == 0 {
		return 0
	}
	var ev Event
	_ = json.Unmarshal(body, &ev)
	h.mu.Lock()
	for _, u := range users {
		h.got[u] = append(h.got[u], ev)
	}
	h.mu.Unlock()
	h.ch <- struct{}{}
	return len(users)
}

func (h *fakeHub) events(u string) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.got[u]...)
}

type contacts map[string][]string

func (c contacts) Contacts(_ context.Context, u string, _ []string) ([]string, error) {
	return c[u], nil
}

func newTestTracker(t *testing.T, ttl time.Duration) (*Tracker, *fakeBus, *fakeHub) {
	t.Helper()
	h := newFakeHub()
	tr := New(Options{Self: "me", TTL: ttl, Flap: 200 * time.Millisecond, Contacts: contacts{"x": {"watcher"}, "watcher": {"x", "y", "z"}}, Deliver: h})
	b := &fakeBus{}
	tr.attach(b)
	tr.busConnected()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return tr, b, h
}

func (h *fakeHub) wait(t *testing.T, d time.Duration) bool {
	t.Helper()
	select {
	case <-h.ch:
		return true
	case <-time.After(d):
		return false
	}
}

// A peer's first snapshot right after start is the state joined, not news;
// a gap in its sequence makes this instance ask it for a snapshot.
func TestSnapshotAtStartIsSilentAndGapAsksAgain(t *testing.T) {
	tr, b, h := newTestTracker(t, 30*time.Second)
	tr.receive(wire{T: kindSnap, I: "p", S: 5, Users: []string{"x"}})
	if h.wait(t, 300*time.Millisecond) {
		t.Fatalf("the start-up snapshot was announced: %+v", h.events("watcher"))
	}
	if st, _ := tr.Status(context.Background(), "watcher", []string{"x"}); !st[0].Online {
		t.Fatal("x is not online after the snapshot")
	}
	tr.receive(wire{T: kindDelta, I: "p", S: 6, U: "y", On: true})
	if n := b.syncsTo("p"); n != 0 {
		t.Fatalf("asked for a snapshot %d times without a gap", n)
	}
	tr.receive(wire{T: kindDelta, I: "p", S: 8, U: "z", On: true})
	if n := b.syncsTo("p"); n != 1 {
		t.Fatalf("asked for a snapshot %d times after a gap, want 1", n)
	}
	// The snapshot that answers drops what the lost message removed.
	tr.receive(wire{T: kindSnap, I: "p", S: 8, Users: []string{"y", "z"}})
	if !h.wait(t, 2*time.Second) {
		t.Fatal("no offline event for x after the repairing snapshot")
	}
	if ev := h.events("watcher"); len(ev) != 1 || ev[0].UserID != "x" || ev[0].Online || ev[0].LastSeenAt == nil {
		t.Fatalf("events %+v", ev)
	}
}

// A silent peer is dropped after ttl/2 and its users go offline at once,
// last seen at its last heartbeat; a goodbye keeps the flap window, so a
// user reconnecting to another instance within it is never offline.
func TestSilentPeerAndGoodbye(t *testing.T) {
	tr, _, h := newTestTracker(t, time.Second)
	tr.receive(wire{T: kindSnap, I: "p", S: 1, Users: []string{"x"}})
	heard := time.Now()
	h.wait(t, 100*time.Millisecond) // silent or not: the start-up snapshot
	h.mu.Lock()
	h.got = map[string][]Event{}
	h.mu.Unlock()
	if !h.wait(t, 2*time.Second) {
		t.Fatal("a silent peer's user was not reported offline")
	}
	if d := time.Since(heard); d > time.Second {
		t.Fatalf("offline %s after the last heartbeat, ttl is 1s", d)
	}
	ev := h.events("watcher")
	if len(ev) != 1 || ev[0].Online || ev[0].LastSeenAt == nil || ev[0].LastSeenAt.Sub(heard) > 50*time.Millisecond {
		t.Fatalf("events %+v, last heard %s", ev, heard)
	}

	tr.receive(wire{T: kindSnap, I: "q", S: 1, Users: []string{"x"}})
	if !h.wait(t, time.Second) {
		t.Fatal("x back online on q was not announced")
	}
	tr.receive(wire{T: kindBye, I: "q", At: time.Now().UnixMilli()})
	tr.receive(wire{T: kindDelta, I: "r", S: 1, U: "x", On: true}) // reconnected elsewhere
	if h.wait(t, 500*time.Millisecond) {
		t.Fatalf("a reconnect within the flap window was announced: %+v", h.events("watcher"))
	}
}
