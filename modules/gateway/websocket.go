package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"syscall"
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
// token, check the origin, upgrade, then start the STOMP connection on a
// goroutine of its own (its reader) and return.
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
	tk, refused := g.adm.take(clientIP(r.RemoteAddr))
	if refused != nil {
		refused.write(w)
		return
	}
	hj := &batchHijacker{ResponseWriter: w, wait: g.o.WriteWait}
	conn, err := g.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		tk.done()
		g.log.Debug("websocket upgrade failed", "error", err) // Upgrade has answered the client
		return
	}
	t := newWSTransport(conn, hj.conn, g.o)
	t.br = hj.br
	opts := stomp.ConnOptions{Principal: principal, PingPeriod: g.o.PingPeriod, Transport: "websocket", RemoteAddr: r.RemoteAddr,
		OnConnected: tk.authenticated}
	// The connection runs on goroutines of its own and this handler
	// returns: net/http then drops the request, its response buffers and
	// this goroutine's deep stack, which an idle connection would otherwise
	// keep for its whole life. Its context is not the request's (nothing
	// on the STOMP side reads request values), so that the request, its
	// route variables and its context chain are not kept either.
	if err := g.o.Hub.Start(context.Background(), t, opts, tk.done); err != nil {
		tk.done() // ErrShuttingDown: Start closed the socket
	}
}

// wsTransport carries STOMP over a gorilla WebSocket: one frame (or part of
// one, or several) per text message. gorilla reads; text messages are
// written by the batchConn under it, control frames by gorilla.
type wsTransport struct {
	conn      *websocket.Conn
	batch     *batchConn
	br        *bufio.Reader   // what gorilla reads through; nil: unknown (no WaitReadable)
	raw       syscall.RawConn // the socket, for WaitReadable; nil: none
	peekFn    func(fd uintptr) bool
	pongWait  time.Duration
	writeWait time.Duration
	closeWait time.Duration
	once      sync.Once
}

func newWSTransport(conn *websocket.Conn, batch *batchConn, o Options) *wsTransport {
	t := &wsTransport{conn: conn, batch: batch, pongWait: o.PongWait, writeWait: o.WriteWait, closeWait: o.CloseWait}
	if sc, ok := batch.Conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			t.raw = raw
			t.peekFn = readable // one func value for the connection's life: WaitReadable allocates nothing
		}
	}
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
	return readMessage(r)
}

// WaitReadable implements stomp.ReadWaiter: it returns once gorilla's
// buffer holds input or the socket is readable (or closed, or its read
// deadline passed: the error then), without reading.
func (t *wsTransport) WaitReadable() error {
	if t.br == nil || t.raw == nil || t.br.Buffered() > 0 {
		return nil
	}
	if err := t.conn.SetReadDeadline(time.Now().Add(t.pongWait)); err != nil {
		return err
	}
	return t.raw.Read(t.peekFn)
}

// readPool lends readMessage a buffer to read a message of unknown length
// into; the message is then copied out at its exact size.
var readPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readMessage reads r to the end into a slice of its own.
func readMessage(r io.Reader) ([]byte, error) {
	buf := readPool.Get().(*[]byte)
	b := (*buf)[:0]
	var err error
	for { // ends at EOF or an error; gorilla's read limit bounds the size
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		var n int
		n, err = r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	out := bytes.Clone(b)
	if cap(b) <= 64<<10 {
		*buf = b[:0]
		readPool.Put(buf)
	}
	switch {
	case err == io.EOF:
		return out, nil
	case errors.Is(err, websocket.ErrReadLimit):
		return nil, stomp.ErrMessageTooLarge
	}
	return nil, err
}

// Write implements stomp.Transport: one text frame, under a write
// deadline (set by the batchConn before each system call).
func (t *wsTransport) Write(p []byte) error { return t.batch.writeText(p) }

// BeginBatch implements stomp.Batcher.
func (t *wsTransport) BeginBatch() { t.batch.begin() }

// EndBatch implements stomp.Batcher.
func (t *wsTransport) EndBatch() error { return t.batch.flush() }

// Ping implements stomp.Transport.
func (t *wsTransport) Ping() error {
	return t.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(t.writeWait))
}

// Close implements stomp.Transport: a close frame under a short deadline,
// then the socket.
func (t *wsTransport) Close(code int, reason string) error {
	var err error
	t.once.Do(func() {
		_ = t.batch.flush() // an ERROR written in a batch goes before the close frame; best effort
		if len(reason) > 120 {
			reason = reason[:120] // a close frame's payload is at most 125 bytes
		}
		_ = t.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason),
			time.Now().Add(t.closeWait)) // best effort: the peer may be gone already
		err = t.conn.Close()
	})
	return err
}
