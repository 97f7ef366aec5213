package stomp_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

type env struct {
	hub *stomp.Hub
	b   *stomptest.Backend
	reg *prometheus.Registry
}

func testOptions(b *stomptest.Backend, reg prometheus.Registerer) stomp.Options {
	cfg := config.Defaults()
	cfg.Limits.OutboundQueue = 64
	cfg.Limits.HeartbeatMin = 20 * time.Millisecond
	return stomp.Options{
		Chat: b, Commands: b, Auth: stomptest.Auth, Registerer: reg,
		Limits: cfg.Limits, Features: cfg.Features, Recovery: cfg.Recovery,
	}
}

func newEnv(t *testing.T, mutate func(*stomp.Options)) *env {
	t.Helper()
	b := stomptest.NewBackend()
	reg := prometheus.NewRegistry()
	o := testOptions(b, reg)
	if mutate != nil {
		mutate(&o)
	}
	h, err := stomp.NewHub(o)
	if err != nil {
		t.Fatal(err)
	}
	b.SetHub(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &env{hub: h, b: b, reg: reg}
}

// serve runs one connection over a fake transport.
func (e *env) serve(t *testing.T, opts stomp.ConnOptions, prepare ...func(*stomptest.Transport)) *stomptest.Transport {
	t.Helper()
	tr := stomptest.NewTransport()
	for _, p := range prepare {
		p(tr)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.hub.Serve(context.Background(), tr, opts) // ErrShuttingDown only after cleanup began
	}()
	t.Cleanup(func() {
		_ = tr.Close(stomp.CloseNormal, "test over") // the client side goes away
		select {
		case <-done:
		case <-time.After(stomptest.Wait):
			t.Errorf("Serve did not return after the transport closed")
		}
	})
	return tr
}

// connect serves a connection and completes CONNECT as user.
func (e *env) connect(t *testing.T, user string, headers ...string) *stomptest.Transport {
	t.Helper()
	tr := e.serve(t, stomp.ConnOptions{Transport: "fake"})
	tr.Connect(t, stomptest.Token(user, time.Time{}), headers...)
	return tr
}

// subscribe subscribes with a receipt and waits for it.
func subscribe(t *testing.T, tr *stomptest.Transport, id, dest string, headers ...string) {
	t.Helper()
	h := append([]string{"id", id, "destination", dest, "receipt", "sub-" + id}, headers...)
	tr.SendFrame(frame.SUBSCRIBE, "", h...)
	r := tr.Expect(t, frame.RECEIPT)
	if got := r.Header.Get("receipt-id"); got != "sub-"+id {
		t.Fatalf("receipt-id = %q, want sub-%s", got, id)
	}
}

func sendJSON(tr *stomptest.Transport, dest string, body any, headers ...string) {
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	h := append([]string{"destination", dest, "content-type", "application/json"}, headers...)
	tr.SendFrame(frame.SEND, string(b), h...)
}

func eventOf(t *testing.T, f *frame.Frame) chat.Event {
	t.Helper()
	var ev chat.Event
	if err := json.Unmarshal(f.Body, &ev); err != nil {
		t.Fatalf("event body %q: %v", f.Body, err)
	}
	return ev
}

func expectMessage(t *testing.T, tr *stomptest.Transport, dest string, seq int64) chat.Event {
	t.Helper()
	f := tr.Expect(t, frame.MESSAGE)
	if got := f.Header.Get("destination"); got != dest {
		t.Fatalf("destination = %q, want %q (body %s)", got, dest, f.Body)
	}
	ev := eventOf(t, f)
	if ev.Type != chat.EventMessage || ev.Message == nil || ev.Message.Seq != seq {
		t.Fatalf("got %s, want message seq %d", f.Body, seq)
	}
	if f.Header.Get("seq") != strconv.FormatInt(seq, 10) || f.Header.Get("session-id") != ev.SessionID {
		t.Fatalf("headers seq=%q session-id=%q for %s", f.Header.Get("seq"), f.Header.Get("session-id"), f.Body)
	}
	return ev
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			}
		}
	}
	return total
}

// eventually polls cond until it holds or Wait passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(stomptest.Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
