package stomp

import (
	"strconv"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// writer is the state of a connection's writer. It is used by one drain
// at a time (outQueue.running); successive drains are ordered by the
// queue's mutex.
type writer struct {
	c         *conn
	buf       *[]byte // borrowed from bufPool for a batch; nil between batches
	version   Version
	msgID     uint64
	connected bool
	wrote     bool // the current batch wrote something
	hbOut     time.Duration
	hbIn      time.Duration
	expires   time.Time
	connectBy time.Time
	lastWrite time.Time
	lastPing  time.Time
	timer     *time.Timer // starts a drain when a timer is due
	due       time.Time   // when timer fires; zero: stopped
}

// writerLinger is how long a drain waits for more after a connection's
// last write (lastWrite) before its goroutine ends.
const writerLinger = 250 * time.Millisecond

var heartbeatEOL = []byte{'\n'}

// bufPool lends the writers their encoding buffers for the length of a
// batch, so that an idle connection holds none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// startWriter starts the connection's writer, the only code that writes
// to or closes the transport. It drains the outbound queue, sends
// heart-beats and pings, and enforces the connect timeout, the client's
// heart-beat, token expiry and the incomplete-frame timeout. It has no
// goroutine while there is nothing to do: a queued item, a close or a due
// timer starts a drain (outQueue.wake), which ends when the queue is
// empty, so that an idle connection costs its reader goroutine and one
// runtime timer. c.writer is done once the writer has closed the transport.
func (c *conn) startWriter() {
	c.writer.Add(1)
	now := time.Now()
	w := &writer{c: c, version: V10, lastWrite: now, lastPing: now, connectBy: now.Add(c.h.o.ConnectTimeout)}
	w.due = w.connectBy
	w.timer = time.AfterFunc(c.h.o.ConnectTimeout, func() {
		if c.q.claim() {
			w.drain() // the timer's own goroutine does the work
		}
	})
	c.q.mu.Lock()
	c.q.run, c.q.notify = w.drain, make(chan struct{}, 1)
	c.q.mu.Unlock()
	c.q.wake() // anything queued before now, and the first look at the timers
}

// drain writes what is queued and runs the timers until the queue stays
// empty; it ends the writer when the connection is closed.
func (w *writer) drain() {
	c := w.c
	for {
		items, aborted := c.q.take()
		if aborted {
			_ = c.t.Close(CloseGoingAway, "") // the peer is gone; nothing to tell it
			w.finish()
			return
		}
		if done := w.writeBatch(items); done {
			w.finish()
			return
		}
		if done := w.timers(w.connectBy); done {
			w.finish()
			return
		}
		if !c.q.idle(time.Since(w.lastWrite) < writerLinger) {
			return
		}
	}
}

// finish ends the writer: nothing more is accepted, the timer stops and
// the connection's context ends.
func (w *writer) finish() {
	c := w.c
	w.timer.Stop()
	c.q.finish()
	c.q.abortNow() // nothing more is accepted once the writer is gone
	c.cancel()
	c.writer.Done()
}

// timers runs what is due after a batch (or a timer's wake-up) and arms
// the timer for the next check; done means the connection is closed.
func (w *writer) timers(connectBy time.Time) (done bool) {
	c := w.c
	now := time.Now()
	w.expires = c.tok.expiry() // moved by a token refresh (refresh.go)
	if w.wrote {
		w.lastWrite, w.wrote = now, false
	}
	var pe *ProtocolError
	switch {
	case !w.connected && !now.Before(connectBy):
		pe = ReasonExpectedConnect.Withf("no CONNECT frame within %s", c.h.o.ConnectTimeout)
	case w.connected && w.hbIn > 0 && now.Sub(time.Unix(0, c.lastRead.Load())) > 2*w.hbIn:
		pe = ReasonHeartBeatTimeout.Withf("nothing received for more than twice the negotiated %s", w.hbIn)
	case w.connected && !w.expires.IsZero() && !now.Before(w.expires):
		pe = ReasonTokenExpired.With("the token has expired; reconnect with a fresh one")
	case c.partialSince.Load() != 0 && now.Sub(time.Unix(0, c.partialSince.Load())) > c.h.o.PartialTimeout:
		pe = errMalformed("an incomplete frame was not finished in time")
	}
	if pe != nil {
		c.lg().Info("stomp connection closed", "reason", pe.Message)
		it := errorItem(pe, "")
		w.write(&it)
		return true
	}
	if w.connected && w.hbOut > 0 && now.Sub(w.lastWrite) >= w.hbOut {
		if err := c.t.Write(heartbeatEOL); err != nil {
			_ = c.t.Close(CloseGoingAway, "") // the write error already ended the connection
			return true
		}
		c.h.m.outHeartbeat.Inc()
		w.lastWrite = now
	}
	if p := c.pingPeriod; p > 0 && now.Sub(w.lastPing) >= p {
		if err := c.t.Ping(); err != nil {
			_ = c.t.Close(CloseGoingAway, "") // as above
			return true
		}
		w.lastPing = now
	}
	// Re-arm only when the next check is earlier than the armed one or the
	// armed one has passed: a timer that fires early finds nothing due and
	// re-arms, which is cheaper than moving the timer on every write.
	next := w.nextWake(now, connectBy)
	if w.due.IsZero() || next.Before(w.due) || !now.Before(w.due) {
		w.due = next
		w.timer.Reset(next.Sub(now))
	}
	return false
}

// writeBatch writes what the queue held, coalesced when the transport can.
func (w *writer) writeBatch(items []outItem) (done bool) {
	if len(items) == 0 {
		return false
	}
	w.buf = bufPool.Get().(*[]byte)
	defer w.putBuf()
	if bl, ok := w.c.t.(Backlogger); ok && bl.Backlog() > w.c.h.o.QueueBytes {
		// The carrier holds more than the bound for a peer that does not collect it.
		w.c.h.m.slowConsumers.Inc()
		w.c.lg().Info("slow consumer disconnected", "backlog_bytes", bl.Backlog())
		it := errorItem(errSlowConsumer, "")
		return w.write(&it)
	}
	b, ok := w.c.t.(Batcher)
	if ok && len(items) > 1 {
		b.BeginBatch()
	} else {
		ok = false
	}
	for i := range items {
		if done := w.write(&items[i]); done {
			return true // the transport is closed; Close sent what was buffered
		}
	}
	if ok {
		if err := b.EndBatch(); err != nil {
			w.c.debug("stomp write failed", "error", err)
			_ = w.c.t.Close(CloseGoingAway, "") // the write error already ended the connection
			return true
		}
	}
	for i := range items { // the write stage, timed by the batch's first live event
		if it := &items[i]; it.kind == kindMessage && it.p.at != 0 {
			w.c.h.m.stageWrite.Observe(time.Duration(time.Now().UnixNano() - it.p.at))
			break
		}
	}
	return false
}

func (w *writer) putBuf() {
	if cap(*w.buf) <= 64<<10 { // a rare huge frame's buffer is not kept
		*w.buf = (*w.buf)[:0]
		bufPool.Put(w.buf)
	}
	w.buf = nil
}

// nextWake is when the writer must next look at its timers.
func (w *writer) nextWake(now, connectBy time.Time) time.Time {
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
	if end := w.lastWrite.Add(writerLinger + time.Millisecond); end.After(now) {
		earlier(end) // the lingering drain ends then
	}
	if p := c.pingPeriod; p > 0 {
		earlier(w.lastPing.Add(p))
	}
	if min := now.Add(time.Millisecond); next.Before(min) {
		next = min
	}
	return next
}

// write sends one item; done means the transport is closed.
func (w *writer) write(it *outItem) (done bool) {
	c := w.c
	var b []byte
	if w.buf != nil {
		b = (*w.buf)[:0]
	}
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
		info := it.ctl.connected
		w.version, w.connected = info.version, true
		w.hbOut, w.hbIn, w.expires = info.hbOut, info.hbIn, info.expires
		b = AppendFrame(b, &frame.Frame{Command: frame.CONNECTED, Header: info.header}, w.version)
		c.h.m.outConnected.Inc()
	case kindError:
		ctl := it.ctl
		f := frame.New(frame.ERROR, frame.Message, ctl.msg)
		if !w.connected && ctl.msg == "unsupported version" {
			f.Header.Add(frame.Version, SupportedVersions)
		}
		if it.receipt != "" {
			f.Header.Add(frame.ReceiptId, it.receipt)
		}
		if ctl.detail != "" {
			f.Header.Add(frame.ContentType, "text/plain")
			f.Body = []byte(ctl.detail)
		}
		b = AppendFrame(b, f, w.version)
		c.h.m.outError.Inc()
		_ = c.t.Write(b) // best effort: the connection closes whether or not the ERROR arrives
		_ = c.t.Close(ctl.code, ctl.msg)
		return true
	case kindClose:
		_ = c.t.Close(it.ctl.code, it.ctl.reason) // closing is all that is left to do
		return true
	}
	if w.buf != nil {
		*w.buf = b
	}
	if err := c.t.Write(b); err != nil {
		c.debug("stomp write failed", "error", err)
		_ = c.t.Close(CloseGoingAway, "") // the write error already ended the connection
		return true
	}
	w.wrote = true
	return false
}

// appendMessage encodes a MESSAGE from the subscription's pre-encoded
// head, the connection's message-id and the payload's pre-encoded tail:
// the event was encoded once for every connection it goes to.
func (w *writer) appendMessage(b []byte, it *outItem) []byte {
	b = append(b, it.sub.head...)
	b = strconv.AppendUint(b, w.msgID, 10)
	b = append(b, '\n')
	if it.receipt != "" {
		b = appendHeader(b, frame.ReceiptId, it.receipt, w.version, false)
	}
	return append(b, it.p.tail(w.version)...)
}

func fmtMillis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func formatUint(n uint64) string { return strconv.FormatUint(n, 10) }
