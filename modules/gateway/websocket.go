package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/problem"
	"github.com/chat-service/chat/modules/stomp"
)

// Subprotocols are the STOMP WebSocket subprotocols, the server's
// preference first. A client offering none is served too; the STOMP
// version then comes from CONNECT's accept-version alone.
var Subprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// serveWebSocket is GET /ws: authenticate the upgrade when it carries a
// token, check the origin, upgrade, then run the STOMP connection with this
// goroutine as its reader.
func (g *Gateway) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if g.closing.Load() {
		problem.Error(w, http.StatusServiceUnavailable, "unavailable", "the server is shutting down")
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		problem.Error(w, http.StatusUpgradeRequired, "upgrade_required", "GET /ws is a WebSocket endpoint")
		return
	}
	if !g.checkOrigin(r) {
		problem.Error(w, http.StatusForbidden, "origin_not_allowed", "the Origin is not in server.cors.allowed_origins")
		return
	}
	principal, ok := g.upgradePrincipal(w, r, true)
	if !ok {
		return
	}
	hj := &batchHijacker{ResponseWriter: w}
	conn, err := g.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		g.log.Debug("websocket upgrade failed", "error", err) // Upgrade has answered the client
		return
	}
	t := newWSTransport(conn, hj.conn, g.o)
	// The connection outlives the handler's request context; Serve owns its lifetime.
	_ = g.o.Hub.Serve(context.WithoutCancel(r.Context()), t, stomp.ConnOptions{ // ErrShuttingDown: Serve closed the socket
		Principal:  principal,
		PingPeriod: g.o.PingPeriod,
		Transport:  "websocket",
		RemoteAddr: r.RemoteAddr,
	})
}

// wsTransport carries STOMP over a gorilla WebSocket: one frame (or part of
// one, or several) per text message.
type wsTransport struct {
	conn      *websocket.Conn
	batch     *batchConn // nil: every message is its own write
	writeWait time.Duration
	pongWait  time.Duration
	closeWait time.Duration
	once      sync.Once
}

func newWSTransport(conn *websocket.Conn, batch *batchConn, o Options) *wsTransport {
	t := &wsTransport{conn: conn, batch: batch, writeWait: o.WriteWait, pongWait: o.PongWait, closeWait: o.CloseWait}
	conn.SetReadLimit(o.readLimit())
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(t.pongWait))
	})
	return t
}

// Read implements stomp.Transport. Each message, pong or ping pushes the
// read deadline forward.
func (t *wsTransport) Read() ([]byte, error) {
	if err := t.conn.SetReadDeadline(time.Now().Add(t.pongWait)); err != nil {
		return nil, err
	}
	typ, r, err := t.conn.NextReader()
	if err != nil {
		if errors.Is(err, websocket.ErrReadLimit) {
			return nil, stomp.ErrMessageTooLarge
		}
		return nil, err
	}
	if typ != websocket.TextMessage {
		return nil, stomp.ErrBinaryMessage
	}
	b, err := io.ReadAll(r)
	if errors.Is(err, websocket.ErrReadLimit) {
		return nil, stomp.ErrMessageTooLarge
	}
	return b, err
}

// Write implements stomp.Transport.
func (t *wsTransport) Write(p []byte) error {
	if err := t.conn.SetWriteDeadline(time.Now().Add(t.writeWait)); err != nil {
		return err
	}
	return t.conn.WriteMessage(websocket.TextMessage, p)
}

// BeginBatch implements stomp.Batcher.
func (t *wsTransport) BeginBatch() {
	if t.batch != nil {
		t.batch.begin()
	}
}

// EndBatch implements stomp.Batcher.
func (t *wsTransport) EndBatch() error {
	if t.batch == nil {
		return nil
	}
	if err := t.conn.SetWriteDeadline(time.Now().Add(t.writeWait)); err != nil {
		return err
	}
	return t.batch.flush()
}

// Ping implements stomp.Transport.
func (t *wsTransport) Ping() error {
	return t.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(t.writeWait))
}

// Close implements stomp.Transport: a close frame under a short deadline,
// then the socket.
func (t *wsTransport) Close(code int, reason string) error {
	var err error
	t.once.Do(func() {
		if t.batch != nil {
			_ = t.batch.flush() // an ERROR written in a batch goes before the close frame; best effort
		}
		if len(reason) > 120 {
			reason = reason[:120] // a close frame's payload is at most 125 bytes
		}
		_ = t.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason),
			time.Now().Add(t.closeWait)) // best effort: the peer may be gone already
		err = t.conn.Close()
	})
	return err
}
