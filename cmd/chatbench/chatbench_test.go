package main

import (
	"net"
	"os"
	"testing"
	"time"
)

// small is a tiny load for the tests: short windows, few connections.
func small(t *testing.T) options {
	return options{
		duration: time.Second, warmup: 200 * time.Millisecond, drain: 500 * time.Millisecond,
		pad: 10, concurrency: 8, settle: 100 * time.Millisecond, receipts: true, users: 5, members: 4, count: 100,
	}
}

// builtinTarget is the built-in server in this process, as the chat-service target.
func builtinTarget(t *testing.T) *target {
	t.Helper()
	srv, err := startBuiltin("127.0.0.1:0", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() }) // the test is over
	o := small(t)
	o.urls, o.pids = []string{srv.URL}, []int{os.Getpid()}
	tg, stop, err := serviceTarget(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return tg
}

// checkComplete fails unless everything sent in the window was accepted
// and delivered to every subscriber, with latencies and server CPU measured.
func checkComplete(t *testing.T, r result) {
	t.Helper()
	if r.Sent == 0 || r.Accepted != r.Sent || r.Rejected != 0 || r.Delivered != r.Expected || r.Missing != 0 ||
		r.Errors != 0 || r.P99ms <= 0 || r.AcceptP99ms <= 0 || !r.ServerMeasured {
		t.Fatalf("incomplete: %+v", r)
	}
}

// TestShapesBuiltin runs every shape at a tiny scale against the built-in
// server: all delivered, every count consistent.
func TestShapesBuiltin(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of load")
	}
	tg := builtinTarget(t)
	t.Run("pairs", func(t *testing.T) {
		o := small(t)
		o.shape, o.sessions, o.rate = "pairs", 5, 5
		r, err := runShape(t.Context(), o, tg)
		if err != nil {
			t.Fatal(err)
		}
		checkComplete(t, r)
		if r.Connections != 10 || r.Sessions != 5 || r.Expected != 2*r.Sent || r.SendRate != 50 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("groups", func(t *testing.T) {
		o := small(t)
		o.shape, o.sessions, o.members, o.rate = "groups", 3, 4, 8
		r, err := runShape(t.Context(), o, tg)
		if err != nil {
			t.Fatal(err)
		}
		checkComplete(t, r)
		if r.Connections != 12 || r.Expected != 4*r.Sent || r.SendRate != 24 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("fanout", func(t *testing.T) {
		o := small(t)
		o.shape, o.conns, o.rate = "fanout", 20, 20
		r, err := runShape(t.Context(), o, tg)
		if err != nil {
			t.Fatal(err)
		}
		checkComplete(t, r)
		if r.Expected != 20*r.Sent || r.Connections != 20+fanoutSenders(20, 5) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("idle", func(t *testing.T) {
		o := small(t)
		o.shape, o.conns = "idle", 20
		r, err := runShape(t.Context(), o, tg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Connections != 20 || r.ServerRSS == 0 || r.BaseRSS == 0 || r.Errors != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("churn", func(t *testing.T) {
		o := small(t)
		o.shape, o.conns, o.count = "churn", 4, 40
		r, err := runShape(t.Context(), o, tg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cycles != 40 || r.Errors != 0 || r.CyclesPerS <= 0 || r.P99ms <= 0 {
			t.Fatalf("the count bounds churn: %+v", r)
		}
	})
	t.Run("churn stops at the deadline", func(t *testing.T) {
		o := small(t)
		o.shape, o.conns, o.count, o.rate, o.duration = "churn", 2, 1000, 10, 500*time.Millisecond
		start := time.Now()
		r, err := runShape(t.Context(), o, tg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cycles == 0 || r.Cycles > 10 || time.Since(start) > 10*time.Second {
			t.Fatalf("paced to 10/s for 0.5 s: %d cycles in %s", r.Cycles, time.Since(start))
		}
	})
}

// TestRejectedSendsCounted sends to a session the user is not in: the
// service refuses it on /user/queue/errors with no RECEIPT, and the load
// counts it as rejected, not accepted.
func TestRejectedSendsCounted(t *testing.T) {
	tg := builtinTarget(t)
	o := small(t)
	creds, err := tg.credentials(t.Context(), []string{"outsider"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoad()
	defer l.close()
	conns, err := l.open(t.Context(), o, tg, 1, func(int) string { return creds[0] },
		func(int) []string { return []string{tg.errorsDest()} })
	if err != nil {
		t.Fatal(err)
	}
	l.from.Store(time.Now().Add(-time.Second).UnixNano())
	body, at := stamp("0193a3c5-0000-7000-8000-000000000000", 0)
	if err := conns[0].send(tg.sendDest(session{id: "x"}), body, receiptFor(at)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.rejected.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a counter the poller goroutines update
	}
	if l.rejected.Load() != 1 || l.accepted.Load() != 0 || l.delivered.Load() != 0 {
		t.Fatalf("rejected %d, accepted %d, delivered %d", l.rejected.Load(), l.accepted.Load(), l.delivered.Load())
	}
}

// webStompURL is RabbitMQ's Web-STOMP endpoint when it listens here.
func webStompURL(t *testing.T) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:15674", time.Second)
	if err != nil {
		t.Skip("RabbitMQ Web-STOMP is not listening on 127.0.0.1:15674 (scripts/rabbitmq-web-stomp.sh enables it)")
	}
	c.Close()
	return "ws://127.0.0.1:15674/ws"
}

// TestShapesRabbitMQ runs the shapes against RabbitMQ Web-STOMP: a session
// is a topic; everything sent is received by every subscriber.
func TestShapesRabbitMQ(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of load")
	}
	o := small(t)
	o.peer, o.peerURL, o.peerLogin, o.peerPasscode = "rabbitmq", webStompURL(t), "guest", "guest"
	tg, err := peerTarget(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("pairs", func(t *testing.T) {
		o := o
		o.shape, o.sessions, o.rate = "pairs", 5, 5
		r, err := runShape(t.Context(), o, tg)
		if err != nil {
			t.Fatal(err)
		}
		r.ServerMeasured = true // the broker's pid may be out of reach; its traffic is what is tested
		checkComplete(t, r)
		if r.Expected != 2*r.Sent {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("fanout", func(t *testing.T) {
		o := o
		o.shape, o.conns, o.rate = "fanout", 10, 20
		r, err := runShape(t.Context(), o, tg)
		if err != nil {
			t.Fatal(err)
		}
		r.ServerMeasured = true // as above
		checkComplete(t, r)
	})
	t.Run("churn", func(t *testing.T) {
		o := o
		o.shape, o.conns, o.count = "churn", 2, 10
		r, err := runShape(t.Context(), o, tg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cycles != 10 || r.Errors != 0 {
			t.Fatalf("%+v", r)
		}
	})
}
