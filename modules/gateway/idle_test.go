package gateway_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/stomp"
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
	if got := settle() - before; got > conns+5 {
		t.Fatalf("%d idle WebSocket connections hold %d goroutines; want about one each", conns, got)
	}
	s.b.Publish(sid, "alice", "hello")
	for i, ws := range wss {
		if f := readFrame(t, ws); f.Header.Get("seq") != "1" {
			t.Fatalf("connection %s: got %v", strconv.Itoa(i), f.Header)
		}
	}
}
