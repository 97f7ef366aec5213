package messaging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store"
	"github.com/chat-service/chat/modules/store/storetest"
)

// AMQPEnv names the RabbitMQ server tests use.
const AMQPEnv = "TEST_CHAT_AMQP_URL"

// amqpURL returns TEST_CHAT_AMQP_URL or skips the test.
func amqpURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(AMQPEnv)
	if u == "" {
		tb.Skip("needs " + AMQPEnv)
	}
	return u
}

// testName is tb.Name() made safe for RabbitMQ and SQL names, plus a
// random suffix.
func testName(tb testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, tb.Name())
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return name + "_" + hex.EncodeToString(b)
}

// openStore opens (and migrates) the database of cfg for the test.
func openStore(tb testing.TB, cfg config.Storage) *store.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("open %s: %v", cfg.Driver, err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// backends are the storage backends delivery tests run on.
var backends = []struct {
	name string
	new  func(testing.TB) config.Storage
}{
	{"sqlite", storetest.NewSQLite},
	{"postgres", storetest.NewPostgres},
}

// testLogger writes warnings and errors to the test log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// recordingHub is a Hub that records every event it gets.
type recordingHub struct {
	mu      sync.Mutex
	events  []chat.Event
	resyncs []time.Time // the since of each Resync
	notify  chan struct{}
}

// Resync implements Resyncer.
func (h *recordingHub) Resync(since time.Time) {
	h.mu.Lock()
	h.resyncs = append(h.resyncs, since)
	h.mu.Unlock()
}

func (h *recordingHub) resyncCalls() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.resyncs)
}

func newRecordingHub() *recordingHub { return &recordingHub{notify: make(chan struct{}, 1)} }

func (h *recordingHub) Deliver(ev chat.Event) {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	select {
	case h.notify <- struct{}{}:
	default:
	}
}

func (h *recordingHub) snapshot() []chat.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]chat.Event(nil), h.events...)
}

// waitFor waits until cond holds for the hub's events or the timeout ends.
func (h *recordingHub) waitFor(tb testing.TB, timeout time.Duration, what string, cond func([]chat.Event) bool) []chat.Event {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		evs := h.snapshot()
		if cond(evs) {
			return evs
		}
		select {
		case <-h.notify:
		case <-tick.C:
		case <-deadline.C:
			evs = h.snapshot()
			tb.Fatalf("timed out after %s waiting for %s (hub has %d events)", timeout, what, len(evs))
			return nil
		}
	}
}

// messagesBySession groups a hub's message events by session, in arrival order.
func messagesBySession(evs []chat.Event) map[string][]int64 {
	out := map[string][]int64{}
	for _, ev := range evs {
		if ev.Type == chat.EventMessage && ev.Message != nil {
			out[ev.SessionID] = append(out[ev.SessionID], ev.Message.Seq)
		}
	}
	return out
}

// uniqueMessages counts distinct (session, seq) message events.
func uniqueMessages(evs []chat.Event) (unique, duplicates int) {
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.Type != chat.EventMessage || ev.Message == nil {
			continue
		}
		k := ev.SessionID + "/" + ev.Message.ID
		if seen[k] {
			duplicates++
			continue
		}
		seen[k] = true
		unique++
	}
	return unique, duplicates
}

// noSender is a Sender for tests that queue no commands.
type noSender struct{}

func (noSender) SendQueued(_ context.Context, sends []chat.QueuedSend) ([]chat.Appended, error) {
	out := make([]chat.Appended, len(sends))
	for i := range out {
		out[i].Err = &chat.Error{Kind: chat.ErrInvalid, Code: "unexpected", Detail: "no sender in this test"}
	}
	return out, nil
}
