package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"

	"github.com/chat-service/chat/modules/problem"
	"github.com/chat-service/chat/modules/stomp"
)

// SockJS at base URL /ws. The HTTP transports (xhr-streaming, xhr-polling
// and the others sockjs-client may pick) are igm/sockjs-go's, behind a
// wrapper that authenticates access_token, bounds request bodies and puts a
// deadline on every response write. The websocket transport
// (/ws/{server}/{session}/websocket) is served here instead, so that it has
// the same read limit, deadlines and origin check as /ws.

var sockjsWebsocketPath = regexp.MustCompile(`^/ws/[^/.]+/[^/.]+/websocket$`)

func (g *Gateway) newSockJS() http.Handler {
	opts := sockjs.DefaultOptions
	opts.Websocket = true // advertised in /info; served by serveSockJSWebsocket
	opts.HeartbeatDelay = g.o.SockJSHeartbeat
	opts.DisconnectDelay = g.o.SockJSDisconnect
	opts.JSessionID = nil
	// CORS is the httpserver middleware's job (server.cors.allowed_origins);
	// sockjs-go adds no headers of its own.
	opts.CheckOrigin = func(*http.Request) bool { return false }
	h := sockjs.NewHandler("/ws", opts, g.serveSockJSSession)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.closing.Load() {
			problem.Error(w, http.StatusServiceUnavailable, "unavailable", "the server is shutting down")
			return
		}
		// A token in access_token is checked on every request, so a bad one
		// is refused with 401 before any session exists.
		if _, ok := g.upgradePrincipal(w, r, false); !ok {
			return
		}
		if sockjsWebsocketPath.MatchString(r.URL.Path) {
			g.serveSockJSWebsocket(w, r)
			return
		}
		if r.Method == http.MethodPost {
			limit := g.o.readLimit() * 2 // JSON-quoted frames
			if r.ContentLength > limit {
				problem.Error(w, http.StatusRequestEntityTooLarge, "payload_too_large", "SockJS message over the frame limit")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		h.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), wait: g.o.WriteWait}, r)
	})
}

// deadlineWriter puts a write deadline on every write of a SockJS HTTP
// response, so that a client that stops reading an xhr-streaming response
// cannot block the connection's writer for ever.
type deadlineWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	wait time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.wait)) // unsupported only by test recorders; then writes have no deadline
	return d.ResponseWriter.Write(p)
}

func (d *deadlineWriter) Flush() {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.wait)) // as in Write
	_ = d.rc.Flush()                                  // a failed flush shows up as a failed write next
}

func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// serveSockJSSession runs a STOMP connection over an HTTP-transport SockJS session.
func (g *Gateway) serveSockJSSession(s sockjs.Session) {
	var principal *stomp.Principal
	if q := s.Request().URL.Query(); q.Has("access_token") {
		p, err := g.o.Auth.Verify(q.Get("access_token"))
		if err != nil { // checked on the request already; it expired in between
			_ = s.Close(4008, "unauthorized") // the session ends either way
			return
		}
		principal = &stomp.Principal{UserID: p.UserID, ExpiresAt: p.ExpiresAt}
	}
	t := &sockjsTransport{s: s}
	_ = g.o.Hub.Serve(context.Background(), t, stomp.ConnOptions{ // ErrShuttingDown: Serve closed the session
		Principal:  principal,
		Transport:  "sockjs-" + receiverName(s.ReceiverType()),
		RemoteAddr: s.Request().RemoteAddr,
	})
}

func receiverName(t sockjs.ReceiverType) string {
	switch t {
	case sockjs.ReceiverTypeXHR:
		return "xhr"
	case sockjs.ReceiverTypeXHRStreaming:
		return "xhr_streaming"
	case sockjs.ReceiverTypeEventSource:
		return "eventsource"
	case sockjs.ReceiverTypeHtmlFile:
		return "htmlfile"
	case sockjs.ReceiverTypeJSONP:
		return "jsonp"
	}
	return "http"
}

// sockjsCode maps a WebSocket close code to a SockJS one: SockJS clients
// accept 1000 and 3000-4999, so 1xxx becomes 4xxx.
func sockjsCode(code int) uint32 {
	if code == stomp.CloseNormal || code >= 3000 {
		return uint32(code)
	}
	return uint32(code + 3000)
}

// sockjsTransport carries STOMP over an igm/sockjs-go session.
type sockjsTransport struct{ s sockjs.Session }

func (t *sockjsTransport) Read() ([]byte, error) {
	msg, err := t.s.RecvCtx(context.Background())
	if err != nil {
		return nil, err
	}
	return []byte(msg), nil
}

func (t *sockjsTransport) Write(p []byte) error { return t.s.Send(string(p)) }

func (t *sockjsTransport) Ping() error { return nil } // sockjs-go sends its own "h" frames

func (t *sockjsTransport) Close(code int, reason string) error {
	err := t.s.Close(sockjsCode(code), reason)
	if errors.Is(err, sockjs.ErrSessionNotOpen) {
		return nil
	}
	return err
}

// serveSockJSWebsocket is the SockJS websocket transport: "o" on open,
// a["frame"] per message, "h" as keep-alive, c[code,"reason"] on close; the
// client sends JSON arrays of strings.
func (g *Gateway) serveSockJSWebsocket(w http.ResponseWriter, r *http.Request) {
	if !g.checkOrigin(r) {
		problem.Error(w, http.StatusForbidden, "origin_not_allowed", "the Origin is not in server.cors.allowed_origins")
		return
	}
	principal, ok := g.upgradePrincipal(w, r, false)
	if !ok {
		return
	}
	up := *g.upgrader
	up.Subprotocols = nil
	hj := &batchHijacker{ResponseWriter: w, wait: g.o.WriteWait}
	conn, err := up.Upgrade(hj, r, nil)
	if err != nil {
		g.log.Debug("sockjs websocket upgrade failed", "error", err) // Upgrade has answered the client
		return
	}
	t := &sockjsWS{ws: newWSTransport(conn, hj.conn, g.o)}
	t.ws.conn.SetReadLimit(2 * g.o.readLimit()) // JSON quoting
	if err := t.ws.Write([]byte("o")); err != nil {
		_ = conn.Close() // the client is gone before the session opened
		return
	}
	_ = g.o.Hub.Serve(context.WithoutCancel(r.Context()), t, stomp.ConnOptions{ // ErrShuttingDown: Serve closed the socket
		Principal:  principal,
		PingPeriod: g.o.SockJSHeartbeat,
		Transport:  "sockjs-websocket",
		RemoteAddr: r.RemoteAddr,
	})
}

// sockjsWS is SockJS framing over a wsTransport.
type sockjsWS struct {
	ws   *wsTransport
	once sync.Once
}

func (t *sockjsWS) Read() ([]byte, error) {
	for {
		b, err := t.ws.Read()
		if err != nil {
			return nil, err
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		var msgs []string
		if b[0] == '[' {
			err = json.Unmarshal(b, &msgs)
		} else {
			var one string
			err = json.Unmarshal(b, &one)
			msgs = []string{one}
		}
		if err != nil {
			return nil, errors.New("sockjs: message is not a JSON array of strings")
		}
		var out []byte
		for _, m := range msgs {
			out = append(out, m...)
		}
		if len(out) > 0 {
			return out, nil
		}
	}
}

func (t *sockjsWS) Write(p []byte) error {
	q, err := json.Marshal([]string{string(p)})
	if err != nil {
		return err
	}
	return t.ws.Write(append([]byte{'a'}, q...))
}

func (t *sockjsWS) BeginBatch()     { t.ws.BeginBatch() }
func (t *sockjsWS) EndBatch() error { return t.ws.EndBatch() }

func (t *sockjsWS) Ping() error { return t.ws.Write([]byte("h")) }

func (t *sockjsWS) Close(code int, reason string) error {
	t.once.Do(func() {
		reasonJSON, _ := json.Marshal(reason)                                                               // a string always marshals
		_ = t.ws.Write([]byte("c[" + strconv.Itoa(int(sockjsCode(code))) + "," + string(reasonJSON) + "]")) // best effort: the peer may be gone
	})
	return t.ws.Close(websocket.CloseNormalClosure, "")
}
