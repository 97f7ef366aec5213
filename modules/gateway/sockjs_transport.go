package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"

	"github.com/chat-service/chat/modules/stomp"
)

// serveSockJSSession runs a STOMP connection over an HTTP-transport SockJS
// session, which serveSockJSRequest bound to the user of its access_token.
func (g *Gateway) serveSockJSSession(s sockjs.Session) {
	req := s.Request()
	p, err := g.o.Auth.Verify(req.URL.Query().Get("access_token"))
	if err != nil { // checked on the request already; it expired in between
		_ = s.Close(4008, "unauthorized") // the session ends either way
		return
	}
	b, t := g.sjs.start(s.ID(), p.UserID)
	if b == nil { // not created through serveSockJSRequest; cannot happen
		_ = s.Close(4003, "forbidden")
		return
	}
	defer g.sjs.stop(s.ID(), b)
	if t == nil {
		var refused *refusal
		if t, refused = g.adm.take(clientIP(req.RemoteAddr)); refused != nil {
			_ = s.Close(sockjsCode(stomp.CloseTryAgainLater), refused.code)
			return
		}
	}
	defer t.done()
	tr := &sockjsTransport{s: s, b: b}
	_ = g.o.Hub.Serve(context.Background(), tr, stomp.ConnOptions{ // ErrShuttingDown: Serve closed the session
		Principal:   &p,
		Transport:   "sockjs-" + receiverName(s.ReceiverType()),
		RemoteAddr:  req.RemoteAddr,
		OnConnected: t.authenticated,
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

// sockjsTransport carries STOMP over an igm/sockjs-go session. sockjs-go
// buffers what Send is given until a receiving request takes it, without
// bound; the binding counts those bytes (Backlog) until a response carries
// them off, so that the STOMP writer can treat a client that stops polling
// as the slow consumer it is.
type sockjsTransport struct {
	s sockjs.Session
	b *sockjsBinding
}

func (t *sockjsTransport) Read() ([]byte, error) {
	msg, err := t.s.RecvCtx(context.Background())
	if err != nil {
		return nil, err
	}
	return []byte(msg), nil
}

func (t *sockjsTransport) Write(p []byte) error {
	t.b.backlog.Add(int64(len(p)))
	return t.s.Send(string(p))
}

// Backlog implements stomp.Backlogger.
func (t *sockjsTransport) Backlog() int { return int(t.b.backlog.Load()) }

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
func (g *Gateway) serveSockJSWebsocket(w http.ResponseWriter, r *http.Request, principal *stomp.Principal) {
	t, refused := g.adm.take(clientIP(r.RemoteAddr))
	if refused != nil {
		refused.write(w)
		return
	}
	defer t.done()
	up := *g.upgrader
	up.Subprotocols = nil
	hj := &batchHijacker{ResponseWriter: w, wait: g.o.WriteWait}
	conn, err := up.Upgrade(hj, r, nil)
	if err != nil {
		g.log.Debug("sockjs websocket upgrade failed", "error", err) // Upgrade has answered the client
		return
	}
	tr := &sockjsWS{ws: newWSTransport(conn, hj.conn, g.o)}
	tr.ws.conn.SetReadLimit(2 * g.o.readLimit()) // JSON quoting
	if err := tr.ws.Write([]byte("o")); err != nil {
		_ = conn.Close() // the client is gone before the session opened
		return
	}
	_ = g.o.Hub.Serve(context.WithoutCancel(r.Context()), tr, stomp.ConnOptions{ // ErrShuttingDown: Serve closed the socket
		Principal:   principal,
		PingPeriod:  g.o.SockJSHeartbeat,
		Transport:   "sockjs-websocket",
		RemoteAddr:  r.RemoteAddr,
		OnConnected: t.authenticated,
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
