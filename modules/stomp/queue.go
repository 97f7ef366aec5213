package stomp

import "sync"

// itemKind says how the writer encodes an outItem.
type itemKind uint8

const (
	kindMessage   itemKind = iota + 1 // MESSAGE for a subscription
	kindReceipt                       // RECEIPT
	kindConnected                     // CONNECTED (starts heart-beats and the expiry timer)
	kindError                         // ERROR, then close
	kindClose                         // close without a frame
)

// outItem is one queued outbound frame, held by value in the queue so that
// a delivery allocates nothing. Bodies are shared between connections;
// headers that differ per connection (subscription, message-id) are written
// by the writer.
type outItem struct {
	kind    itemKind
	sub     *subscription // kindMessage
	p       *payload      // kindMessage
	receipt string        // RECEIPT's receipt-id; a problem MESSAGE's receipt-id
	ctl     *control      // kindConnected, kindError, kindClose
}

// control is what the rare control items carry.
type control struct {
	// kindError
	msg    string
	detail string
	// kindError and kindClose
	code   int
	reason string
	// kindConnected
	connected *connectedInfo
}

func errorItem(pe *ProtocolError, receipt string) outItem {
	return outItem{kind: kindError, receipt: receipt, ctl: &control{msg: pe.Message, detail: pe.Detail, code: pe.Code}}
}

func closeItem(code int, reason string) outItem {
	return outItem{kind: kindClose, ctl: &control{code: code, reason: reason}}
}

// size is what the item will take on the wire, headers included: a
// MESSAGE repeats its subscription's destination and id, and a client
// controls those (up to maxHeaderID bytes each), so they count against the
// byte bound like the body does.
func (it *outItem) size() int {
	n := 64 + len(it.receipt)
	if it.receipt != "" {
		n += len("receipt-id:\n")
	}
	if it.ctl != nil {
		n += len(it.ctl.msg) + len(it.ctl.detail)
	}
	if it.p != nil {
		n += len(it.p.tail(V12)) // content headers, seq, session-id, body
	}
	if it.sub != nil {
		n += len(it.sub.head) + 20 // destination, subscription, message-id
	}
	return n
}

func (it *outItem) transient() bool { return it.kind == kindMessage && it.p.transient }

// pushResult reports what became of a pushed item.
type pushResult uint8

const (
	pushed   pushResult = iota
	dropped             // a transient item that found the queue full, or a closed queue
	overflow            // the queue was full of non-transient items: slow consumer
)

// outQueue is a connection's bounded outbound queue. Push never blocks;
// the writer takes everything queued at once. The two slices start empty
// and grow on demand; an idle connection gives large ones back.
//
// The writer is not a goroutine of its own: an idle connection has none.
// The first item queued (or a timer, or a close) starts a drain goroutine
// (run), which writes until the queue is empty; it then waits (parked) for
// more while the connection was active within writerLinger, and ends after
// that. running makes sure that at most one drain owns the transport at a
// time, kicked that a wake-up during a drain is not lost. A busy
// connection so keeps its writer goroutine, whose stack has grown to what
// a write needs, instead of starting (and growing) one per delivery.
type outQueue struct {
	mu      sync.Mutex
	items   []outItem
	spare   []outItem
	bytes   int
	limit   int // items, for live traffic
	blimit  int // bytes, for live traffic
	closed  bool
	abort   bool
	running bool          // a drain owns the writer
	parked  bool          // the drain waits on notify
	kicked  bool          // woken while a drain ran: it looks again before it ends
	done    bool          // the writer has finished: no drain starts again
	run     func()        // the drain; nil until the writer starts
	notify  chan struct{} // wakes a parked drain; made with the writer
}

func (q *outQueue) init(limit, blimit int) {
	q.limit, q.blimit = limit, blimit
}

// wake makes the writer look at the queue and its timers: it starts a
// drain unless one runs already.
func (q *outQueue) wake() {
	q.mu.Lock()
	start := q.claimLocked()
	q.mu.Unlock()
	if start {
		go q.run()
	}
}

// claim is wake for a caller that runs the drain itself when it gets it.
func (q *outQueue) claim() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.claimLocked()
}

func (q *outQueue) claimLocked() bool {
	if q.running || q.done || q.run == nil {
		q.kicked = true
		q.unparkLocked()
		return false
	}
	q.running, q.kicked = true, false
	return true
}

// unparkLocked wakes a parked drain.
func (q *outQueue) unparkLocked() {
	if q.parked {
		q.parked = false
		q.notify <- struct{}{} // room for one: only a parked drain is sent to, once
	}
}

// idle is what a drain does when it found nothing more to write: it goes
// on at once when something arrived since its last take (or a wake-up
// came); else it waits parked while linger, and returns false when it is
// to end.
func (q *outQueue) idle(linger bool) bool {
	q.mu.Lock()
	if len(q.items) > 0 || q.abort || q.kicked {
		q.kicked = false
		q.mu.Unlock()
		return true
	}
	if !linger {
		q.running = false
		q.mu.Unlock()
		return false
	}
	q.parked = true
	q.mu.Unlock()
	<-q.notify
	return true
}

// finish marks the writer finished: nothing is written any more.
func (q *outQueue) finish() {
	q.mu.Lock()
	q.done = true
	q.mu.Unlock()
}

// push queues it when there is room below limit+extra items (extra lets a
// since-seq replay, itself bounded by recovery.max_messages, through).
// A full queue drops transient items first; when none is left to drop, the
// result is overflow and the caller disconnects the slow consumer.
func (q *outQueue) push(it outItem, extra int) pushResult {
	sz := it.size()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return dropped
	}
	if len(q.items) >= q.limit+extra || (extra == 0 && q.bytes+sz > q.blimit && len(q.items) > 0) {
		if it.transient() {
			q.mu.Unlock()
			return dropped
		}
		q.dropTransientLocked()
		if len(q.items) >= q.limit+extra || (extra == 0 && q.bytes+sz > q.blimit && len(q.items) > 0) {
			q.mu.Unlock()
			return overflow
		}
	}
	q.items = append(q.items, it)
	q.bytes += sz
	// Items need no kick: a running drain takes them before it ends.
	start := !q.running && !q.done && q.run != nil
	q.running = q.running || start
	q.unparkLocked()
	q.mu.Unlock()
	if start {
		go q.run()
	}
	return pushed
}

func (q *outQueue) dropTransientLocked() {
	kept := q.items[:0]
	for _, it := range q.items {
		if it.transient() {
			q.bytes -= it.size()
			continue
		}
		kept = append(kept, it)
	}
	clear(q.items[len(kept):])
	q.items = kept
}

// pushControl queues a control frame (CONNECTED) past the limits.
func (q *outQueue) pushControl(it outItem) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, it)
	q.bytes += it.size()
	q.mu.Unlock()
	q.wake()
	return true
}

// closeWith queues a final item (ERROR or close) and refuses everything
// after it. When discard is set, what was queued before is dropped (a slow
// consumer gets its ERROR without waiting behind its backlog).
func (q *outQueue) closeWith(it outItem, discard bool) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if discard {
		clear(q.items)
		q.items, q.bytes = q.items[:0], 0
	}
	q.items = append(q.items, it)
	q.closed = true
	q.mu.Unlock()
	q.wake()
	return true
}

// abortNow makes the writer close without writing anything more: the peer
// is gone.
func (q *outQueue) abortNow() {
	q.mu.Lock()
	q.closed, q.abort = true, true
	clear(q.items)
	q.items, q.bytes = q.items[:0], 0
	q.mu.Unlock()
	q.wake()
}

// take returns everything queued. The returned slice is valid until the
// next take.
func (q *outQueue) take() (items []outItem, aborted bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.abort {
		return nil, true
	}
	items = q.items
	clear(q.spare) // drop the references the previous batch held
	if cap(q.spare) > 256 {
		q.spare = nil
	}
	q.items, q.spare, q.bytes = q.spare[:0], items, 0
	if len(items) == 0 && cap(items) > 16 {
		// an idle connection keeps no large buffers
		q.items, q.spare = nil, nil
	}
	return items, false
}
