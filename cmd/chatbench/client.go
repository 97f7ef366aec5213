package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/stomp"
)

// conn is a minimal STOMP 1.2 client over a wsConn, enough to load a
// server: CONNECT, SUBSCRIBE with a receipt, SEND, DISCONNECT. After setup
// a poller reads it: a MESSAGE or RECEIPT that fills one WebSocket message
// is recognised by its first bytes without parsing it.
type conn struct {
	ws        *wsConn
	dec       *stomp.Decoder
	nextID    int
	onMessage func(frame, body []byte) // called by the poller with each MESSAGE
	onReceipt func(id []byte)          // called by the poller with each RECEIPT's receipt-id
	onEnd     func(error)              // called by the poller once, when the connection ends
}

// dialSTOMP opens a WebSocket to wsURL and connects: host is the STOMP
// virtual host; login and passcode are sent when login is not empty.
func dialSTOMP(ctx context.Context, wsURL, host, login, passcode string) (*conn, error) {
	ws, err := dialWS(ctx, wsURL, "v12.stomp")
	if err != nil {
		return nil, err
	}
	c := &conn{ws: ws, dec: stomp.NewDecoder(1 << 20)}
	c.dec.SetVersion(stomp.V12)
	hdr := []string{"accept-version", "1.2", "host", host, "heart-beat", "0,0"}
	if login != "" {
		hdr = append(hdr, "login", login, "passcode", passcode)
	}
	if err := c.write(frame.New(frame.CONNECT, hdr...)); err != nil {
		ws.nc.Close()
		return nil, err
	}
	_ = ws.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := c.readFrame()
	if err != nil {
		ws.nc.Close()
		return nil, err
	}
	if f.Command != frame.CONNECTED {
		ws.nc.Close()
		return nil, fmt.Errorf("CONNECT answered %s: %s %s", f.Command, f.Header.Get("message"), f.Body)
	}
	_ = ws.nc.SetReadDeadline(time.Time{})
	return c, nil
}

func (c *conn) write(f *frame.Frame) error {
	return c.ws.writeFrame(opText, stomp.AppendFrame(nil, f, stomp.V12))
}

// readFrame returns the next frame (heart-beats skipped); setup phase only.
func (c *conn) readFrame() (*frame.Frame, error) {
	for range 1 << 16 { // bounded: a server that sends only partial frames fails here eventually
		f, err := c.dec.Next()
		if err != nil {
			return nil, err
		}
		if f != nil {
			return f, nil
		}
		b, err := c.ws.readMessage()
		if err != nil {
			return nil, err
		}
		c.dec.Write(b)
	}
	return nil, errors.New("no complete frame")
}

// await reads until the RECEIPT for id (setup phase only).
func (c *conn) await(what, id string) error {
	_ = c.ws.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer c.ws.nc.SetReadDeadline(time.Time{})
	for range 1000 {
		f, err := c.readFrame()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if f.Command == frame.RECEIPT && f.Header.Get("receipt-id") == id {
			return nil
		}
		if f.Command == frame.ERROR {
			return fmt.Errorf("%s: %s %s", what, f.Header.Get("message"), f.Body)
		}
	}
	return fmt.Errorf("%s: no RECEIPT", what)
}

// subscribe subscribes and waits for the RECEIPT (setup phase only).
func (c *conn) subscribe(dest string) error {
	c.nextID++
	id := strconv.Itoa(c.nextID)
	if err := c.write(frame.New(frame.SUBSCRIBE, "id", id, "destination", dest, "receipt", "sub-"+id)); err != nil {
		return err
	}
	return c.await("SUBSCRIBE "+dest, "sub-"+id)
}

// disconnect sends DISCONNECT, waits for its RECEIPT or for the server to
// close (RabbitMQ closes without a RECEIPT), and closes (setup phase, or a
// connection no poller reads).
func (c *conn) disconnect() error {
	defer c.close()
	if err := c.write(frame.New(frame.DISCONNECT, "receipt", "bye")); err != nil {
		return err
	}
	err := c.await("DISCONNECT", "bye")
	if err != nil && (isNormalClose(err) || errors.Is(err, io.EOF)) {
		return nil
	}
	return err
}

// send sends body to dest, with a receipt header unless receipt is empty.
func (c *conn) send(dest string, body []byte, receipt string) error {
	f := frame.New(frame.SEND, "destination", dest, "content-type", "application/json")
	if receipt != "" {
		f.Header.Add("receipt", receipt)
	}
	f.Body = body
	return c.write(f)
}

// process handles every complete message read so far; an error ends the
// connection.
func (c *conn) process() error {
	for {
		msg, err := c.ws.next()
		if err != nil || msg == nil {
			return err
		}
		if !c.dec.Pending() && oneFrame(msg) {
			if bytes.HasPrefix(msg, messagePrefix) {
				c.onMessage(msg, frameBody(msg))
				continue
			}
			if bytes.HasPrefix(msg, receiptPrefix) {
				c.onReceipt(headerValue(msg, "receipt-id"))
				continue
			}
		}
		c.dec.Write(msg)
		for {
			f, err := c.dec.Next()
			if err != nil {
				return err
			}
			if f == nil {
				break
			}
			switch f.Command {
			case frame.MESSAGE:
				c.onMessage(stomp.AppendFrame(nil, f, stomp.V12), f.Body)
			case frame.RECEIPT:
				c.onReceipt([]byte(f.Header.Get("receipt-id")))
			case frame.ERROR:
				return fmt.Errorf("ERROR %s: %s", f.Header.Get("message"), f.Body)
			}
		}
	}
}

var (
	messagePrefix = []byte("MESSAGE\n")
	receiptPrefix = []byte("RECEIPT\n")
)

// oneFrame reports whether msg holds exactly one frame: its only NUL is at
// the end, followed by heart-beat EOLs at most (a frame with a body that
// holds NULs, or several frames in one message, go to the decoder).
func oneFrame(msg []byte) bool {
	i := bytes.IndexByte(msg, 0)
	return i >= 0 && len(bytes.TrimLeft(msg[i+1:], "\r\n")) == 0
}

// frameBody is the body of a one-frame message: after the blank line, up
// to the NUL.
func frameBody(msg []byte) []byte {
	i := bytes.Index(msg, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	b := msg[i+2:]
	if j := bytes.IndexByte(b, 0); j >= 0 {
		b = b[:j]
	}
	return b
}

// headerValue is the first value of header name in a frame's header block,
// unescaped only as far as the load needs (its own receipt ids have no escapes).
func headerValue(f []byte, name string) []byte {
	end := bytes.Index(f, []byte("\n\n"))
	if end < 0 {
		end = len(f)
	}
	h := f[:end]
	for len(h) > 0 {
		line := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line, h = h[:i], h[i+1:]
		} else {
			h = nil
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(k) == name {
			return bytes.TrimSuffix(v, []byte("\r"))
		}
	}
	return nil
}

func (c *conn) close() { c.ws.close() }

// stamp is a message body carrying its send time in the content; the same
// body goes to the service and to the peer.
func stamp(sessionID string, pad int) ([]byte, time.Time) {
	now := time.Now()
	return stampAt(sessionID, pad, now), now
}

func stampAt(sessionID string, pad int, at time.Time) []byte {
	content := "t=" + strconv.FormatInt(at.UnixNano(), 10) + ";" + strings.Repeat("x", pad)
	b, _ := json.Marshal(map[string]string{"sessionId": sessionID, "content": content}) // strings always marshal
	return b
}

// sentAt reads the send time a body carries.
func sentAt(body []byte) (time.Time, bool) {
	i := bytes.Index(body, []byte("t="))
	if i < 0 {
		return time.Time{}, false
	}
	t, n := parseNanos(body[i+2:])
	return t, n > 0
}

// receiptFor names a SEND's receipt after its send time, so that the
// RECEIPT tells how long the server took to accept it.
func receiptFor(at time.Time) string { return "r" + strconv.FormatInt(at.UnixNano(), 10) }

// receiptTime reads the send time back from a receipt id.
func receiptTime(id []byte) (time.Time, bool) {
	if len(id) < 2 || id[0] != 'r' {
		return time.Time{}, false
	}
	t, n := parseNanos(id[1:])
	return t, n > 0 && n == len(id)-1
}

// parseNanos reads the decimal Unix nanoseconds at the start of b and
// returns how many digits it took (0: none, or too many for an int64).
func parseNanos(b []byte) (time.Time, int) {
	var n int64
	digits := 0
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			break
		}
		if n > (math.MaxInt64-int64(ch-'0'))/10 {
			return time.Time{}, 0
		}
		n = n*10 + int64(ch-'0')
		digits++
	}
	if digits == 0 {
		return time.Time{}, 0
	}
	return time.Unix(0, n), digits
}
