package gateway_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

// TestIdleWebSocketHoldsOneGoroutine: an idle, subscribed WebSocket
// connection costs the server one goroutine (its reader); deliveries and
// the close still work. Not parallel: it counts the process's goroutines.
func TestIdleWebSocketHoldsOneGoroutine(t *testing.T) {
	s := newServer(t, tweak{stmp: func(o *stomp.Options) { o.Limits.MaxConnsPerUser = 0 }})
	sid := s.b.CreateSession("alice", "bob")
	settle := func() int {
		n := runtime.NumGoroutine()
		for range 100 { // handlers, drains and timers of the set-up end on their own
			time.Sleep(10 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				break
			}
			n = m
		}
		return n
	}
	before := settle()
	const conns = 30
	wss := make([]*websocket.Conn, 0, conns)
	for range conns {
		wss = append(wss, subscribeRaw(t, s, "bob", sid, nil))
	}
	deadline := time.Now().Add(stomptest.Wait) // a writer lingers a while after its last write
	for got := settle() - before; got > conns+5; got = settle() - before {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle WebSocket connections hold %d goroutines; want about one each", conns, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.b.Publish(sid, "alice", "hello")
	for i, ws := range wss {
		if f := readFrame(t, ws); f.Header.Get("seq") != "1" {
			t.Fatalf("connection %s: got %v", strconv.Itoa(i), f.Header)
		}
	}
}

// TestIdleReadersParkOnSmallStacks: between client frames an idle
// connection's reader waits for input on the smallest goroutine stack,
// not inside gorilla's read (which needs twice that), and still reads
// what comes next. Not parallel: it reads the process's stack memory.
func TestIdleReadersParkOnSmallStacks(t *testing.T) {
	s := newServer(t, tweak{stmp: func(o *stomp.Options) { o.Limits.MaxConnsPerUser = 0 }})
	sid := s.b.CreateSession("alice", "bob")
	stacks := func() uint64 {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		runtime.ReadMemStats(&ms)
		return ms.StackInuse
	}
	before, goroutines := stacks(), runtime.NumGoroutine()
	const conns = 200
	wss := make([]*websocket.Conn, 0, conns)
	for range conns {
		wss = append(wss, subscribeRaw(t, s, "bob", sid, nil))
	}
	// The client side of the test holds no goroutines; the server's
	// readers are what is left once the writers stopped lingering, which
	// on a busy machine takes longer than their linger.
	for deadline := time.Now().Add(stomptest.Wait); runtime.NumGoroutine()-goroutines > conns+5; {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections still hold %d goroutines", conns, runtime.NumGoroutine()-goroutines)
		}
		time.Sleep(50 * time.Millisecond)
	}
	limit := 3 << 10 // the smallest stack, 2 KiB, and room for the test's own goroutines
	if raceEnabled {
		// Instrumented frames are larger and the runtime keeps more of them:
		// about 6–8 KiB, where a reader inside gorilla's read takes 16.
		limit = 10 << 10
	}
	// Stacks freed by the last writers return to the heap at a collection:
	// measure until that has happened.
	per := float64(stacks()-before) / conns
	for deadline := time.Now().Add(stomptest.Wait); per > float64(limit) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		per = float64(stacks()-before) / conns
	}
	if per > float64(limit) {
		t.Fatalf("%.0f bytes of goroutine stack per idle connection; want at most %d", per, limit)
	}
	s.b.Publish(sid, "alice", "hello")
	for _, ws := range wss {
		if f := readFrame(t, ws); f.Header.Get("seq") != "1" {
			t.Fatalf("got %v", f.Header)
		}
	}
}

// TestMessagesInOneSegment: two WebSocket messages that arrive in one TCP
// segment are both read, though after the first the socket has nothing
// more to read (the second waits in gorilla's buffer).
func TestMessagesInOneSegment(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	sid := s.b.CreateSession("alice", "bob")
	ws := subscribeRaw(t, s, "bob", sid, nil)
	var seg []byte
	for _, r := range []string{"r1", "r2"} {
		f := "SEND\ndestination:" + stomp.AppRead + "\ncontent-type:application/json\nreceipt:" + r + "\n\n" +
			`{"sessionId":"` + sid + `","seq":0}` + "\x00"
		// A final text frame of 126..65535 bytes, masked with a zero key
		// (the payload as it is).
		seg = append(seg, 0x81, 0x80|126, byte(len(f)>>8), byte(len(f)), 0, 0, 0, 0)
		seg = append(seg, f...)
	}
	if _, err := ws.UnderlyingConn().Write(seg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"r1", "r2"} {
		if f := readFrame(t, ws); f.Command != "RECEIPT" || f.Header.Get("receipt-id") != want {
			t.Fatalf("got %s %v, want RECEIPT %s", f.Command, f.Header, want)
		}
	}
}
