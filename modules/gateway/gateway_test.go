package gateway_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	stompc "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/auth/authtest"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/gateway"
	"github.com/chat-service/chat/modules/stomp"
)

func TestTokenPlacements(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		query   func(t *testing.T) url.Values
		header  func(t *testing.T) http.Header
		connect func(t *testing.T) []func(*stompc.Conn) error
	}{
		{name: "upgrade Authorization header", header: func(t *testing.T) http.Header {
			return http.Header{"Authorization": {"Bearer " + authtest.Token(t, "alice")}}
		}},
		{name: "access_token query", query: func(t *testing.T) url.Values {
			return url.Values{"access_token": {authtest.Token(t, "alice")}}
		}},
		{name: "CONNECT Authorization header", connect: func(t *testing.T) []func(*stompc.Conn) error {
			return []func(*stompc.Conn) error{stompc.ConnOpt.Header("Authorization", "Bearer "+authtest.Token(t, "alice"))}
		}},
		{name: "header wins over an invalid CONNECT token", header: func(t *testing.T) http.Header {
			return http.Header{"Authorization": {"Bearer " + authtest.Token(t, "alice")}}
		}, connect: func(t *testing.T) []func(*stompc.Conn) error {
			return []func(*stompc.Conn) error{stompc.ConnOpt.Header("Authorization", "Bearer invalid")}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, tweak{})
			sid := s.b.CreateSession("alice", "bob")
			var q url.Values
			var h http.Header
			var opts []func(*stompc.Conn) error
			if tc.query != nil {
				q = tc.query(t)
			}
			if tc.header != nil {
				h = tc.header(t)
			}
			if tc.connect != nil {
				opts = tc.connect(t)
			}
			ws, _, err := s.dial(t, q, h, "v12.stomp")
			if err != nil {
				t.Fatal(err)
			}
			alice := connectOver(t, ws, opts...)
			if alice.Version() != stompc.V12 {
				t.Fatalf("version %v", alice.Version())
			}
			bob := s.stompClient(t, "bob")
			topic, err := bob.Subscribe(stomp.TopicSessionPrefix+sid, stompc.AckAuto)
			if err != nil {
				t.Fatal(err)
			}
			queue, err := bob.Subscribe(stomp.QueueMessages, stompc.AckAuto)
			if err != nil {
				t.Fatal(err)
			}
			barrier(t, bob, sid)
			body, _ := json.Marshal(chat.SendRequest{SessionID: sid, Content: "hi bob", ClientMessageID: "c-1"})
			if err := alice.Send(stomp.AppSend, "application/json", body, stompc.SendOpt.Receipt); err != nil {
				t.Fatalf("send with receipt: %v", err)
			}
			for _, sub := range []*stompc.Subscription{topic, queue} {
				m := readMsg(t, sub)
				ev := eventOf(t, m.Body)
				if ev.Message == nil || ev.Message.Content != "hi bob" || ev.Message.SenderID != "alice" ||
					m.Header.Get("seq") != "1" || m.Header.Get("session-id") != sid {
					t.Fatalf("%s got %v %s", sub.Destination(), m.Header, m.Body)
				}
			}
		})
	}
}

func TestUpgradeRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		query  url.Values
		header func(t *testing.T) http.Header
		status int
	}{
		{name: "invalid header token", header: func(*testing.T) http.Header { return http.Header{"Authorization": {"Bearer nope"}} }, status: 401},
		{name: "non-bearer header", header: func(*testing.T) http.Header { return http.Header{"Authorization": {"Basic YTpi"}} }, status: 401},
		{name: "invalid query token", query: url.Values{"access_token": {"nope"}}, status: 401},
		{name: "empty query token", query: url.Values{"access_token": {""}}, status: 401},
		{name: "invalid header is not rescued by a valid query token", header: func(*testing.T) http.Header {
			return http.Header{"Authorization": {"Bearer nope"}}
		}, query: url.Values{"access_token": {"placeholder"}}, status: 401},
		{name: "expired token", header: func(t *testing.T) http.Header {
			return http.Header{"Authorization": {"Bearer " + authtest.TokenExpiring(t, "alice", time.Now().Add(-time.Hour))}}
		}, status: 401},
		{name: "foreign origin", header: func(*testing.T) http.Header { return http.Header{"Origin": {"https://evil.example"}} }, status: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, tweak{})
			q := tc.query
			if q.Get("access_token") == "placeholder" {
				q = url.Values{"access_token": {authtest.Token(t, "alice")}}
			}
			var h http.Header
			if tc.header != nil {
				h = tc.header(t)
			}
			_, resp, err := s.dial(t, q, h)
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("dial: %v, response %v, want status %d", err, resp, tc.status)
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestOrigins(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{gw: func(o *gateway.Options) {
		o.Server = config.Server{CORS: config.CORS{AllowedOrigins: []string{"https://app.example"}}}
	}})
	for origin, ok := range map[string]bool{"https://app.example": true, "https://evil.example": false, "": true, s.http.URL: true} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := s.dial(t, nil, h)
		if ok != (err == nil) {
			t.Fatalf("origin %q: err %v, response %v", origin, err, resp)
		}
		if ws != nil {
			_ = ws.Close()
		}
	}
}

func TestSubprotocolNegotiation(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{"v10.stomp", "v11.stomp", "v12.stomp"}, "v12.stomp"},
		{[]string{"v10.stomp"}, "v10.stomp"},
		{nil, ""},
	} {
		ws, _, err := s.dial(t, nil, nil, tc.offer...)
		if err != nil {
			t.Fatal(err)
		}
		if got := ws.Subprotocol(); got != tc.want {
			t.Errorf("offer %v: got %q, want %q", tc.offer, got, tc.want)
		}
		_ = ws.Close()
	}
}

func TestInvalidConnectTokenGetsError(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	ws, _, err := s.dial(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := rawConnect(t, ws, "Authorization", "Bearer invalid")
	if f.Command != frame.ERROR || f.Header.Get("message") != "unauthorized" {
		t.Fatalf("got %s %v", f.Command, f.Header)
	}
	expectClosed(t, ws)
}

func TestBadInputOverWebSocket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		send func(ws *websocket.Conn) error
	}{
		{"binary message", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.BinaryMessage, []byte("SEND\n\n\x00"))
		}},
		{"10 MB message", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.TextMessage, []byte("SEND\ndestination:/app/chat.send\n\n"+strings.Repeat("x", 10<<20)+"\x00"))
		}},
		{"frame over the limit across messages", func(ws *websocket.Conn) error {
			if err := ws.WriteMessage(websocket.TextMessage, []byte("SEND\ndestination:/app/chat.send\n\n")); err != nil {
				return err
			}
			for range 3 {
				if err := ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 30000))); err != nil {
					return err
				}
			}
			return nil
		}},
		{"garbage", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.TextMessage, []byte("\x01\x02garbage\n"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, tweak{})
			ws, _, err := s.dial(t, url.Values{"access_token": {authtest.Token(t, "alice")}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if f := rawConnect(t, ws); f.Command != frame.CONNECTED {
				t.Fatalf("got %s", f.Command)
			}
			_ = tc.send(ws) // the server may close mid-write
			// Either an ERROR then close, or a close (a message far over the
			// WebSocket read limit is refused by the WebSocket layer).
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				_, b, err := ws.ReadMessage()
				if err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) || strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "EOF") {
						return
					}
					t.Fatalf("read: %v", err)
				}
				if !strings.HasPrefix(string(b), "ERROR\n") && string(b) != "\n" {
					t.Fatalf("unexpected %q", b)
				}
			}
		})
	}
}

func TestSplitFramesAndSeveralFramesPerMessage(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	ws, _, err := s.dial(t, url.Values{"access_token": {authtest.Token(t, "alice")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := rawConnect(t, ws); f.Command != frame.CONNECTED {
		t.Fatalf("got %s", f.Command)
	}
	msgs := []string{
		"SUBSCRIBE\nid:1\ndestination:/user/queue/events\nreceipt:a\n\n\x00SUBSCRIBE\nid:2\ndestination:/user/queue/messages\nreceipt:b\n\n\x00",
		"SUBSCRIBE\nid:3\ndesti", "nation:/user/queue/errors\nreceipt:c\n\n", "\x00",
	}
	for _, m := range msgs {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"a", "b", "c"} {
		if f := readFrame(t, ws); f.Command != frame.RECEIPT || f.Header.Get("receipt-id") != want {
			t.Fatalf("got %s %v, want RECEIPT %s", f.Command, f.Header, want)
		}
	}
}

func TestHeartBeatTimeoutOverWebSocket(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	ws, _, err := s.dial(t, url.Values{"access_token": {authtest.Token(t, "alice")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := rawConnect(t, ws, "heart-beat", "50,0"); f.Header.Get("heart-beat") != "0,50" {
		t.Fatalf("CONNECTED heart-beat %q", f.Header.Get("heart-beat"))
	}
	if f := readFrame(t, ws); f.Command != frame.ERROR || f.Header.Get("message") != "heart-beat timeout" {
		t.Fatalf("got %s %v", f.Command, f.Header)
	}
	expectClosed(t, ws)
}

func TestTokenExpiryOverWebSocket(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	tok := authtest.TokenExpiring(t, "alice", time.Now().Add(1500*time.Millisecond))
	ws, _, err := s.dial(t, nil, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	if f := rawConnect(t, ws); f.Command != frame.CONNECTED {
		t.Fatalf("got %s %v", f.Command, f.Header)
	}
	if f := readFrame(t, ws); f.Command != frame.ERROR || f.Header.Get("message") != "token expired" {
		t.Fatalf("got %s %v", f.Command, f.Header)
	}
	expectClosed(t, ws)
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	ws, _, err := s.dial(t, url.Values{"access_token": {authtest.Token(t, "alice")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rawConnect(t, ws)
	if err := s.gw.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	var ce *websocket.CloseError
	if err := expectClosed(t, ws); !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("close: %v", err)
	}
	_, resp, err := s.dial(t, nil, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %v %v", err, resp)
	}
}

func TestSlowConsumerOverWebSocket(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{
		gw:   func(o *gateway.Options) { o.WriteWait = 300 * time.Millisecond },
		stmp: func(o *stomp.Options) { o.Limits.OutboundQueue = 32 },
	})
	sid := s.b.CreateSession("alice", "bob", "carol")
	fast := s.stompClient(t, "bob")
	sub, err := fast.Subscribe(stomp.TopicSessionPrefix+sid, stompc.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	barrier(t, fast, sid)
	// carol subscribes and then never reads again.
	slow, _, err := s.dial(t, url.Values{"access_token": {authtest.Token(t, "carol")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rawConnect(t, slow)
	if err := slow.WriteMessage(websocket.TextMessage, []byte("SUBSCRIBE\nid:1\ndestination:"+stomp.TopicSessionPrefix+sid+"\nreceipt:r\n\n\x00")); err != nil {
		t.Fatal(err)
	}
	readFrame(t, slow)
	if n := s.hub.Connections(); n != 2 {
		t.Fatalf("%d connections", n)
	}
	content := strings.Repeat("x", 4000)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; s.hub.Connections() > 1; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the slow consumer was not disconnected")
		}
		s.b.Publish(sid, "alice", content)
		m := readMsg(t, sub) // the fast consumer keeps receiving, in order
		if m.Header.Get("seq") != strconv.Itoa(i+1) {
			t.Fatalf("fast consumer got seq %s, want %d", m.Header.Get("seq"), i+1)
		}
	}
	s.b.Publish(sid, "alice", "after")
	if ev := eventOf(t, readMsg(t, sub).Body); ev.Message.Content != "after" {
		t.Fatalf("got %+v", ev.Message)
	}
}
