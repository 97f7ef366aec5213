package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	stompc "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/auth/authtest"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/gateway"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

type server struct {
	http *httptest.Server
	gw   *gateway.Gateway
	hub  *stomp.Hub
	b    *stomptest.Backend
	reg  *prometheus.Registry
}

type tweak struct {
	gw   func(*gateway.Options)
	stmp func(*stomp.Options)
}

// newServer serves the gateway on an httptest server with the real JWT
// verifier (authtest's HS256 secret) and the in-memory chat backend.
func newServer(t *testing.T, tw tweak) *server {
	t.Helper()
	b := stomptest.NewBackend()
	reg := prometheus.NewRegistry()
	v := authtest.Verifier(t)
	cfg := config.Defaults()
	cfg.Limits.HeartbeatMin = 20 * time.Millisecond
	so := stomp.Options{
		Chat: b, Commands: b, Auth: gateway.StompAuthenticator(v), Registerer: reg,
		Limits: cfg.Limits, Features: cfg.Features, Recovery: cfg.Recovery,
	}
	if tw.stmp != nil {
		tw.stmp(&so)
	}
	hub, err := stomp.NewHub(so)
	if err != nil {
		t.Fatal(err)
	}
	b.SetHub(hub)
	gop := gateway.Options{Hub: hub, Auth: v, Server: cfg.Server, Limits: so.Limits, Features: so.Features, Registerer: reg}
	if tw.gw != nil {
		tw.gw(&gop)
	}
	gw, err := gateway.New(gop)
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	gw.Register(r)
	hs := httptest.NewServer(r)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		hs.Close()
	})
	return &server{http: hs, gw: gw, hub: hub, b: b, reg: reg}
}

func (s *server) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(s.http.URL, "http") + path
}

// dial opens a WebSocket to /ws; query and header are optional.
func (s *server) dial(t *testing.T, query url.Values, header http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := s.wsURL("/ws")
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(u, header)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() }) // already closed by most tests
	}
	return c, resp, err
}

// wsStream is the net.Conn-like adapter go-stomp's client runs over: reads
// see the WebSocket messages as one byte stream, each write is one message.
type wsStream struct {
	c  *websocket.Conn
	r  io.Reader
	mu sync.Mutex
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			_, r, err := s.c.NextReader()
			if err != nil {
				return 0, err
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if err == io.EOF {
			s.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (s *wsStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.c.WriteMessage(websocket.TextMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *wsStream) Close() error { return s.c.Close() }

// stompClient connects go-stomp's client as user over /ws, with the token
// in the CONNECT frame.
func (s *server) stompClient(t *testing.T, user string) *stompc.Conn {
	t.Helper()
	ws, _, err := s.dial(t, nil, nil, "v12.stomp")
	if err != nil {
		t.Fatal(err)
	}
	return connectOver(t, ws, stompc.ConnOpt.Header("Authorization", "Bearer "+authtest.Token(t, user)))
}

func connectOver(t *testing.T, ws *websocket.Conn, opts ...func(*stompc.Conn) error) *stompc.Conn {
	t.Helper()
	opts = append([]func(*stompc.Conn) error{stompc.ConnOpt.Host("chat"), stompc.ConnOpt.HeartBeat(0, 0), stompc.ConnOpt.Logger(quiet{})}, opts...)
	c, err := stompc.Connect(&wsStream{c: ws}, opts...)
	if err != nil {
		t.Fatalf("STOMP connect: %v", err)
	}
	t.Cleanup(func() { _ = c.MustDisconnect() }) // the test may have ended the connection already
	return c
}

// barrier returns once every frame sent before it was processed (a SEND
// with a receipt; the server handles a connection's frames in order).
func barrier(t *testing.T, c *stompc.Conn, sessionID string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"sessionId": sessionID, "seq": 0})
	if err := c.Send(stomp.AppRead, "application/json", body, stompc.SendOpt.Receipt); err != nil {
		t.Fatalf("barrier: %v", err)
	}
}

func readMsg(t *testing.T, sub *stompc.Subscription) *stompc.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok || m == nil {
			t.Fatalf("subscription %s closed", sub.Destination())
		}
		if m.Err != nil {
			t.Fatalf("subscription %s: %v", sub.Destination(), m.Err)
		}
		return m
	case <-time.After(stomptest.Wait):
		t.Fatalf("no message on %s", sub.Destination())
		return nil
	}
}

func eventOf(t *testing.T, body []byte) chat.Event {
	t.Helper()
	var ev chat.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("event %q: %v", body, err)
	}
	return ev
}

// rawConnect sends a CONNECT over ws with extra headers and returns the reply frame.
func rawConnect(t *testing.T, ws *websocket.Conn, headers ...string) *frame.Frame {
	t.Helper()
	f := frame.New(frame.CONNECT, append([]string{"accept-version", "1.2", "host", "chat"}, headers...)...)
	if err := ws.WriteMessage(websocket.TextMessage, stomp.AppendFrame(nil, f, stomp.V12)); err != nil {
		t.Fatal(err)
	}
	return readFrame(t, ws)
}

// readFrame reads the next non-heart-beat frame from ws.
func readFrame(t *testing.T, ws *websocket.Conn) *frame.Frame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(stomptest.Wait))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		if string(b) == "\n" {
			continue
		}
		d := stomp.NewDecoder(1 << 24)
		d.SetVersion(stomp.V12)
		d.Write(b)
		f, err := d.Next()
		if err != nil || f == nil {
			t.Fatalf("frame %q: %v", b, err)
		}
		return f
	}
}

// expectClosed reads until ws is closed and returns the close error.
func expectClosed(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(stomptest.Wait))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("connection not closed")
			}
			return err
		}
	}
}

// quiet is a go-stomp logger that drops everything (the client logs its
// subscriptions' closing at the end of every test).
type quiet struct{}

func (quiet) Debugf(string, ...any)   {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Errorf(string, ...any)   {}
func (quiet) Debug(string)            {}
func (quiet) Info(string)             {}
func (quiet) Warning(string)          {}
func (quiet) Error(string)            {}
