package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
)

// batchConn lets the STOMP writer send a batch of WebSocket messages with
// one system call: between begin and flush, writes are buffered. Outside a
// batch it writes through. Under load a connection's writer finds several
// frames queued at once, so the number of system calls falls as the load
// rises, where it matters.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
}

const batchFlushAt = 64 << 10

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= batchFlushAt {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// flush ends the batch and sends what it buffered.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	return b.flushLocked()
}

func (b *batchConn) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	if cap(b.buf) > 4*batchFlushAt {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

// batchHijacker hands gorilla's Upgrader a batchConn instead of the raw
// connection.
type batchHijacker struct {
	http.ResponseWriter
	conn *batchConn
}

func (h *batchHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("gateway: the response writer cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &batchConn{Conn: c}
	return h.conn, rw, nil
}

func (h *batchHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
