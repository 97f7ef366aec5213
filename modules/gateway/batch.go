package gateway

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// batchConn is the network connection under a gorilla WebSocket. It writes
// the STOMP writer's text messages itself, one unfragmented WebSocket frame
// each (header and payload in one system call, none of gorilla's
// per-message locking, buffer pooling and deadline calls), and lets the
// writer send a batch of them with one system call: between begin and
// flush, writes are buffered. Under load a connection's writer finds
// several frames queued at once, so the number of system calls falls as
// the load rises, where it matters.
//
// gorilla still writes the handshake and the control frames (pings, pongs,
// close) through Write; the mutex keeps every frame whole. The buffer is
// borrowed from a pool for the duration of a write or a batch, so an idle
// connection holds none.
type batchConn struct {
	net.Conn
	wait     time.Duration // write deadline of each system call this type makes
	mu       sync.Mutex
	batching bool
	buf      *[]byte   // borrowed from bufPool while in use
	deadline time.Time // the write deadline set last (by send)
}

const batchFlushAt = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 4*batchFlushAt {
		return // let a rare huge one go
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// Write is gorilla's path: the handshake and control frames.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.Conn.Write(p) // gorilla has set the deadline
	}
	*b.buf = append(*b.buf, p...)
	if len(*b.buf) >= batchFlushAt {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// SetWriteDeadline is gorilla's (control frames): send then sets its own
// deadline again before its next write.
func (b *batchConn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	b.deadline = time.Time{}
	b.mu.Unlock()
	return b.Conn.SetWriteDeadline(t)
}

// writeText sends p as one final text frame (a server's frames are not
// masked).
func (b *batchConn) writeText(p []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching {
		*b.buf = appendFrameHeader(*b.buf, len(p))
		*b.buf = append(*b.buf, p...)
		if len(*b.buf) >= batchFlushAt {
			return b.flushLocked()
		}
		return nil
	}
	buf := getBuf()
	defer putBuf(buf)
	*buf = appendFrameHeader(*buf, len(p))
	*buf = append(*buf, p...)
	return b.send(*buf)
}

// send writes p to the network under a write deadline between wait/2 and
// wait away: the deadline is moved only when less than half of wait is
// left, so that a busy connection does not reset the runtime's deadline
// timer on every write.
func (b *batchConn) send(p []byte) error {
	now := time.Now()
	if b.deadline.Sub(now) < b.wait/2 {
		b.deadline = now.Add(b.wait)
		if err := b.Conn.SetWriteDeadline(b.deadline); err != nil {
			return err
		}
	}
	_, err := b.Conn.Write(p)
	return err
}

// appendFrameHeader appends the header of a final, unmasked text frame
// with an n-byte payload (RFC 6455, section 5.2).
func appendFrameHeader(dst []byte, n int) []byte {
	const finText = 0x80 | 0x1
	switch {
	case n <= 125:
		return append(dst, finText, byte(n))
	case n <= 0xffff:
		return append(dst, finText, 126, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, finText, 127), uint64(n))
	}
}

func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	if b.buf == nil {
		b.buf = getBuf()
	}
	b.mu.Unlock()
}

// flush ends the batch and sends what it buffered.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	if b.buf == nil {
		return nil
	}
	err := b.flushLocked()
	putBuf(b.buf)
	b.buf = nil
	return err
}

func (b *batchConn) flushLocked() error {
	if len(*b.buf) == 0 {
		return nil
	}
	err := b.send(*b.buf)
	*b.buf = (*b.buf)[:0]
	return err
}

// batchHijacker hands gorilla's Upgrader a batchConn instead of the raw
// connection, and a small read buffer of the gateway's own (readBufferSize)
// that gorilla reads through (Upgrader.ReadBufferSize 0 takes the
// hijacked reader), so that the transport can tell whether gorilla holds
// input already (wsTransport.WaitReadable).
type batchHijacker struct {
	http.ResponseWriter
	wait time.Duration // the batchConn's write deadline
	conn *batchConn
	br   *bufio.Reader
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
	h.conn = &batchConn{Conn: c, wait: h.wait}
	if rw.Reader.Buffered() > 0 {
		return h.conn, rw, nil // gorilla refuses input before the handshake's end
	}
	h.br = bufio.NewReaderSize(h.conn, readBufferSize)
	return h.conn, bufio.NewReadWriter(h.br, rw.Writer), nil
}

func (h *batchHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
