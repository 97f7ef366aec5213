package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// wsConn is the client end of one WebSocket, kept as lean as the load
// needs so that chatbench's own CPU, which shares the machine with the
// server, stays small: the handshake by hand, masked frames out, and
// frames parsed straight from the bytes read (no per-message reader or
// goroutine). While connecting, reads block on the socket; once the
// connection is handed to a poller, the poller reads it.
type wsConn struct {
	nc   net.Conn // until a poller takes the socket over
	fd   int      // the socket once a poller has it (linux); -1 before
	wmu  sync.Mutex
	wbuf []byte
	mask [4]byte
	rbuf []byte // rbuf[r:w] is read but not yet parsed
	r, w int
	frag []byte // a fragmented message being assembled
}

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// errClosed reports a close frame from the server; code is its status.
type errClosed struct {
	code   int
	reason string
}

func (e *errClosed) Error() string { return fmt.Sprintf("websocket: close %d %s", e.code, e.reason) }

// dialWS opens a WebSocket to a ws:// URL with one subprotocol.
func dialWS(ctx context.Context, rawURL, protocol string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("%q: not a ws:// URL", rawURL)
	}
	addr := hostPort(u)
	if err := loopbackOnly(addr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	_ = nc.SetDeadline(dl) // the handshake is bounded; cleared below
	var key [16]byte
	_, _ = rand.Read(key[:]) // crypto/rand does not fail on Linux
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + k +
		"\r\nSec-WebSocket-Protocol: " + protocol + "\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	res.Body.Close()
	sum := sha1.Sum([]byte(k + wsGUID))
	if res.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("websocket handshake: %s", res.Status)
	}
	if res.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		nc.Close()
		return nil, errors.New("websocket handshake: bad Sec-WebSocket-Accept")
	}
	c := &wsConn{nc: nc, fd: -1}
	_, _ = rand.Read(c.mask[:]) // as above
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n) // n bytes are buffered
		c.rbuf = make([]byte, max(4096, 2*n))
		c.w = copy(c.rbuf, b)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// writeFrame sends one final frame, masked as a client must.
func (c *wsConn) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.wbuf[:0]
	b = append(b, 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, c.mask[:]...)
	start := len(b)
	b = append(b, p...)
	for i := range b[start:] {
		b[start+i] ^= c.mask[i&3]
	}
	c.wbuf = b
	if c.fd >= 0 {
		return writeFD(c.fd, b, 10*time.Second)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// next parses the next complete message from what was read: a text
// message's payload (valid until the next room or fill), or nil when more
// bytes are needed. Pings are answered; a close frame is an *errClosed.
func (c *wsConn) next() ([]byte, error) {
	for {
		fin, op, payload, n, err := parseWSFrame(c.rbuf[c.r:c.w])
		if err != nil || n == 0 {
			return nil, err
		}
		c.r += n
		switch {
		case op == opPing:
			err = c.writeFrame(opPong, payload)
		case op == opPong:
		case op == opClose:
			e := &errClosed{code: 1005}
			if len(payload) >= 2 {
				e.code, e.reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
			}
			err = e
		case op == opText && fin && len(c.frag) == 0:
			return payload, nil
		case op == opText || op == opContinuation:
			c.frag = append(c.frag, payload...)
			if fin {
				msg := c.frag
				c.frag = c.frag[:0]
				return msg, nil
			}
		default:
			err = fmt.Errorf("websocket: unexpected opcode %d", op)
		}
		if err != nil {
			return nil, err
		}
	}
}

// room moves the unparsed bytes to the front of the buffer, grows it when
// full, and returns the free space to read into.
func (c *wsConn) room() []byte {
	if c.rbuf == nil {
		c.rbuf = make([]byte, 4096)
	}
	if c.r > 0 {
		c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.rbuf) {
		c.rbuf = append(c.rbuf, make([]byte, len(c.rbuf))...)
		c.rbuf = c.rbuf[:cap(c.rbuf)]
	}
	return c.rbuf[c.w:]
}

// fill reads what the socket holds (a blocking read; setup phase only).
func (c *wsConn) fill() error {
	n, err := c.nc.Read(c.room())
	c.w += n
	return err
}

// readMessage blocks for the next text message (setup phase only).
func (c *wsConn) readMessage() ([]byte, error) {
	for range 1 << 16 { // bounded: a server that sends only partial frames fails here eventually
		msg, err := c.next()
		if err != nil || msg != nil {
			return msg, err
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("websocket: no complete message")
}

// parseWSFrame parses one server frame at the start of b; n is 0 when b
// holds only part of it.
func parseWSFrame(b []byte) (fin bool, op byte, payload []byte, n int, err error) {
	if len(b) < 2 {
		return false, 0, nil, 0, nil
	}
	fin, op = b[0]&0x80 != 0, b[0]&0x0f
	if b[1]&0x80 != 0 {
		return false, 0, nil, 0, errors.New("websocket: masked frame from the server")
	}
	size, h := uint64(b[1]&0x7f), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return false, 0, nil, 0, nil
		}
		size, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return false, 0, nil, 0, nil
		}
		size, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if size > 1<<24 {
		return false, 0, nil, 0, fmt.Errorf("websocket: %d-byte frame", size)
	}
	if uint64(len(b)-h) < size {
		return false, 0, nil, 0, nil
	}
	end := h + int(size)
	return fin, op, b[h:end], end, nil
}

func (c *wsConn) close() {
	payload := []byte{0x03, 0xE8}      // 1000
	_ = c.writeFrame(opClose, payload) // best effort
	if c.fd >= 0 {
		_ = closeFD(c.fd) // as below
		return
	}
	_ = c.nc.Close() // the benchmark is over for this connection
}

func isNormalClose(err error) bool {
	var ce *errClosed
	if errors.As(err, &ce) {
		return ce.code == 1000 || ce.code == 1001
	}
	return err != nil && strings.Contains(err.Error(), "use of closed network connection")
}
