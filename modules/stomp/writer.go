package stomp

import (
	"strconv"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// writer is the state of a connection's writer loop.
type writer struct {
	c         *conn
	buf       []byte
	version   Version
	msgID     uint64
	connected bool
	hbOut     time.Duration
	hbIn      time.Duration
	expires   time.Time
	lastWrite time.Time
	lastPing  time.Time
}

var heartbeatEOL = []byte{'\n'}

// writeLoop is the only goroutine that writes to or closes the transport.
// It drains the outbound queue, sends heart-beats and pings, and enforces
// the connect timeout, the client's heart-beat, token expiry and the
// incomplete-frame timeout.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	defer c.cancel()
	defer c.q.abortNow() // nothing more is accepted once the writer is gone
	start := time.Now()
	w := &writer{c: c, version: V10, lastWrite: start, lastPing: start}
	connectBy := start.Add(c.h.o.ConnectTimeout)
	timer := time.NewTimer(c.h.o.ConnectTimeout)
	defer timer.Stop()
	for {
		select {
		case <-c.q.notify:
		case <-timer.C:
		case <-c.ctx.Done():
			_ = c.t.Close(CloseGoingAway, "server shutting down") // the connection ends either way
			return
		}
		items, aborted := c.q.take()
		if aborted {
			_ = c.t.Close(CloseGoingAway, "") // the peer is gone; nothing to tell it
			return
		}
		if done := w.writeBatch(items); done {
			return
		}
		now := time.Now()
		var pe *ProtocolError
		switch {
		case !w.connected && !now.Before(connectBy):
			pe = protocolErr("expected CONNECT", "no CONNECT frame within %s", c.h.o.ConnectTimeout)
		case w.connected && w.hbIn > 0 && now.Sub(time.Unix(0, c.lastRead.Load())) > 2*w.hbIn:
			pe = protocolErr("heart-beat timeout", "nothing received for more than twice the negotiated %s", w.hbIn)
		case w.connected && !w.expires.IsZero() && !now.Before(w.expires):
			pe = errPolicy("token expired", "the token has expired; reconnect with a fresh one")
		case c.partialSince.Load() != 0 && now.Sub(time.Unix(0, c.partialSince.Load())) > c.h.o.PartialTimeout:
			pe = errMalformed("an incomplete frame was not finished in time")
		}
		if pe != nil {
			c.lg().Info("stomp connection closed", "reason", pe.Message)
			w.write(&outItem{kind: kindError, msg: pe.Message, detail: pe.Detail, code: pe.Code})
			return
		}
		if w.connected && w.hbOut > 0 && now.Sub(w.lastWrite) >= w.hbOut {
			if err := c.t.Write(heartbeatEOL); err != nil {
				_ = c.t.Close(CloseGoingAway, "") // the write error already ended the connection
				return
			}
			c.h.m.outHeartbeat.Inc()
			w.lastWrite = now
		}
		if p := c.opts.PingPeriod; p > 0 && now.Sub(w.lastPing) >= p {
			if err := c.t.Ping(); err != nil {
				_ = c.t.Close(CloseGoingAway, "") // as above
				return
			}
			w.lastPing = now
		}
		timer.Reset(w.nextWake(now, connectBy))
	}
}

// writeBatch writes what the queue held, coalesced when the transport can.
func (w *writer) writeBatch(items []*outItem) (done bool) {
	b, ok := w.c.t.(Batcher)
	if ok && len(items) > 1 {
		b.BeginBatch()
	} else {
		ok = false
	}
	for _, it := range items {
		if done := w.write(it); done {
			return true // the transport is closed; Close sent what was buffered
		}
	}
	if ok {
		if err := b.EndBatch(); err != nil {
			w.c.lg().Debug("stomp write failed", "error", err)
			_ = w.c.t.Close(CloseGoingAway, "") // the write error already ended the connection
			return true
		}
	}
	return false
}

// nextWake is how long the writer may sleep before a timer is due.
func (w *writer) nextWake(now, connectBy time.Time) time.Duration {
	c := w.c
	next := now.Add(time.Hour)
	earlier := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	if !w.connected {
		earlier(connectBy)
	} else {
		if w.hbOut > 0 {
			earlier(w.lastWrite.Add(w.hbOut))
		}
		if w.hbIn > 0 {
			earlier(time.Unix(0, c.lastRead.Load()).Add(2*w.hbIn + time.Millisecond))
		}
		if !w.expires.IsZero() {
			earlier(w.expires)
		}
	}
	if ps := c.partialSince.Load(); ps != 0 {
		earlier(time.Unix(0, ps).Add(c.h.o.PartialTimeout + time.Millisecond))
	}
	if p := c.opts.PingPeriod; p > 0 {
		earlier(w.lastPing.Add(p))
	}
	d := next.Sub(now)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// write sends one item; done means the transport is closed.
func (w *writer) write(it *outItem) (done bool) {
	c := w.c
	b := w.buf[:0]
	switch it.kind {
	case kindMessage:
		if !it.sub.active.Load() {
			return false // unsubscribed while queued
		}
		w.msgID++
		b = w.appendMessage(b, it)
		c.h.m.outMessage.Inc()
	case kindReceipt:
		b = append(b, "RECEIPT\n"...)
		b = appendHeader(b, frame.ReceiptId, it.receipt, w.version, false)
		b = append(b, '\n', 0)
		c.h.m.outReceipt.Inc()
	case kindConnected:
		info := it.connected
		w.version, w.connected = info.version, true
		w.hbOut, w.hbIn, w.expires = info.hbOut, info.hbIn, info.expires
		b = AppendFrame(b, &frame.Frame{Command: frame.CONNECTED, Header: info.header}, w.version)
		c.h.m.outConnected.Inc()
	case kindError:
		f := frame.New(frame.ERROR, frame.Message, it.msg)
		if !w.connected && it.msg == "unsupported version" {
			f.Header.Add(frame.Version, SupportedVersions)
		}
		if it.receipt != "" {
			f.Header.Add(frame.ReceiptId, it.receipt)
		}
		if it.detail != "" {
			f.Header.Add(frame.ContentType, "text/plain")
			f.Body = []byte(it.detail)
		}
		b = AppendFrame(b, f, w.version)
		c.h.m.outError.Inc()
		_ = c.t.Write(b) // best effort: the connection closes whether or not the ERROR arrives
		_ = c.t.Close(it.code, it.msg)
		return true
	case kindClose:
		_ = c.t.Close(it.code, it.reason) // closing is all that is left to do
		return true
	}
	w.buf = b
	if cap(w.buf) > 64<<10 {
		w.buf = nil // do not keep a large buffer on an idle connection
	}
	if err := c.t.Write(b); err != nil {
		c.lg().Debug("stomp write failed", "error", err)
		_ = c.t.Close(CloseGoingAway, "") // the write error already ended the connection
		return true
	}
	w.lastWrite = time.Now()
	return false
}

func (w *writer) appendMessage(b []byte, it *outItem) []byte {
	v, p := w.version, it.p
	b = append(b, "MESSAGE\n"...)
	b = appendHeader(b, frame.Destination, it.sub.dest, v, false)
	b = appendHeader(b, frame.Subscription, it.sub.id, v, false)
	b = append(b, "message-id:"...)
	b = strconv.AppendUint(b, w.msgID, 10)
	b = append(b, '\n')
	b = append(b, "content-type:"...)
	b = append(b, p.contentType...)
	b = append(b, '\n')
	b = append(b, "content-length:"...)
	b = strconv.AppendInt(b, int64(len(p.body)), 10)
	b = append(b, '\n')
	if p.seq > 0 {
		b = append(b, "seq:"...)
		b = strconv.AppendInt(b, p.seq, 10)
		b = append(b, '\n')
		b = appendHeader(b, "session-id", p.sessionID, v, false)
	}
	if it.receipt != "" {
		b = appendHeader(b, frame.ReceiptId, it.receipt, v, false)
	}
	b = append(b, '\n')
	b = append(b, p.body...)
	return append(b, 0)
}

func fmtMillis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func formatUint(n uint64) string { return strconv.FormatUint(n, 10) }
