package gateway_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/auth/authtest"
	"github.com/chat-service/chat/modules/gateway"
	"github.com/chat-service/chat/modules/stomp"
)

// subscribeRaw connects user over a raw WebSocket and subscribes it to
// session sid's topic.
func subscribeRaw(t *testing.T, s *server, user, sid string, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	q := url.Values{"access_token": {authtest.Token(t, user)}}
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	}
	ws, _, err := d.Dial(s.wsURL("/ws")+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	if f := rawConnect(t, ws); f.Command != "CONNECTED" {
		t.Fatalf("CONNECT: %s %v", f.Command, f.Header)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("SUBSCRIBE\nid:1\ndestination:"+stomp.TopicSessionPrefix+sid+"\nreceipt:r\n\n\x00")); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, ws); f.Command != "RECEIPT" {
		t.Fatalf("SUBSCRIBE: %s %v", f.Command, f.Header)
	}
	return ws
}

// TestWritesKeepOrderAndContent: many connections receiving bursts at once,
// their frames encoded in pooled buffers and coalesced into shared write
// buffers, each get every frame once, whole and in order (run with -race:
// a buffer given back to a pool while still being written is a race, and
// shows as a corrupted frame).
func TestWritesKeepOrderAndContent(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{stmp: func(o *stomp.Options) { o.Limits.OutboundQueue = 1000 }})
	const conns, msgs = 8, 150
	sids := make([]string, conns)
	wss := make([]*websocket.Conn, conns)
	for i := range conns {
		sender, reader := "alice"+strconv.Itoa(i), "bob"+strconv.Itoa(i)
		sids[i] = s.b.CreateSession(sender, reader)
		wss[i] = subscribeRaw(t, s, reader, sids[i], nil)
	}
	content := func(i, n int) string {
		// Sizes around the pools' initial capacities (1 KiB, 2 KiB, 4 KiB).
		return fmt.Sprintf("c%d-m%d-", i, n) + strings.Repeat(string(rune('a'+(i+n)%26)), (n*97)%5000)
	}
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range msgs {
				s.b.Publish(sids[i], "alice"+strconv.Itoa(i), content(i, n))
			}
		}()
	}
	errs := make(chan error, conns)
	for i, ws := range wss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			d := stomp.NewDecoder(1 << 24)
			d.SetVersion(stomp.V12)
			for n := 0; n < msgs; {
				_, b, err := ws.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("connection %d, message %d: %w", i, n, err)
					return
				}
				d.Write(b)
				for {
					f, err := d.Next()
					if err != nil {
						errs <- fmt.Errorf("connection %d: frame %q: %w", i, b, err)
						return
					}
					if f == nil {
						break
					}
					if f.Command != "MESSAGE" || f.Header.Get("seq") != strconv.Itoa(n+1) ||
						!strings.Contains(string(f.Body), `"content":"`+content(i, n)+`"`) {
						errs <- fmt.Errorf("connection %d, message %d: got %s seq %s body %.80q", i, n, f.Command, f.Header.Get("seq"), f.Body)
						return
					}
					n++
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLoneFrameIsNotHeld: coalescing never holds a frame back waiting for
// others; one delivery to an otherwise quiet connection leaves at once.
func TestLoneFrameIsNotHeld(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	sid := s.b.CreateSession("alice", "bob")
	ws := subscribeRaw(t, s, "bob", sid, nil)
	var worst time.Duration
	for n := range 20 {
		start := time.Now()
		s.b.Publish(sid, "alice", "m"+strconv.Itoa(n))
		if f := readFrame(t, ws); f.Header.Get("seq") != strconv.Itoa(n+1) {
			t.Fatalf("got seq %s, want %d", f.Header.Get("seq"), n+1)
		}
		worst = max(worst, time.Since(start))
		time.Sleep(5 * time.Millisecond) // the writer goes idle between them
	}
	if worst > time.Second {
		t.Fatalf("a lone frame took %s to arrive", worst)
	}
}

// TestSlowConsumerCutAtByteBudget: with write coalescing, a client that
// stops reading is still disconnected once what waits for it passes its
// byte budget (limits.outbound_queue_bytes), long before the frame bound
// or the write deadline would; the other subscriber goes on in order.
func TestSlowConsumerCutAtByteBudget(t *testing.T) {
	t.Parallel()
	const budget = 64 << 10
	s := newServer(t, tweak{
		gw: func(o *gateway.Options) { o.WriteWait = 3 * time.Second },
		stmp: func(o *stomp.Options) {
			o.Limits.OutboundQueue = 100000 // frames: only the byte bound can fire
			o.QueueBytes = budget
		},
	})
	sid := s.b.CreateSession("alice", "bob", "carol")
	fast := subscribeRaw(t, s, "bob", sid, nil)
	// carol's socket has a small receive buffer and is never read again.
	small := &websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}}
	subscribeRaw(t, s, "carol", sid, small)
	content := strings.Repeat("x", 4000)
	n := 0
	for ; counterValue(t, s, "chat_stomp_slow_consumer_disconnects_total") == 0; n++ {
		if n == 2000 {
			t.Fatal("no slow consumer after 2000 messages of 4 KB")
		}
		s.b.Publish(sid, "alice", content)
		if f := readFrame(t, fast); f.Header.Get("seq") != strconv.Itoa(n+1) {
			t.Fatalf("fast consumer got seq %s, want %d", f.Header.Get("seq"), n+1)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.hub.Connections() > 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow consumer was not disconnected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.b.Publish(sid, "alice", "after")
	if f := readFrame(t, fast); f.Header.Get("seq") != strconv.Itoa(n+1) {
		t.Fatalf("fast consumer got seq %s after the cut, want %d", f.Header.Get("seq"), n+1)
	}
}
