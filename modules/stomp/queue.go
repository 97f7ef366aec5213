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

// outItem is one queued outbound frame. Bodies are shared between
// connections; headers that differ per connection (subscription,
// message-id) are written by the writer.
type outItem struct {
	kind    itemKind
	sub     *subscription // kindMessage
	p       *payload      // kindMessage
	receipt string        // RECEIPT's receipt-id; a problem MESSAGE's receipt-id
	// kindError
	msg    string
	detail string
	// kindError and kindClose
	code   int
	reason string
	// kindConnected
	connected *connectedInfo
}

func (it *outItem) size() int {
	n := 128 + len(it.receipt) + len(it.msg) + len(it.detail)
	if it.p != nil {
		n += len(it.p.body)
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
// the writer takes everything queued at once.
type outQueue struct {
	mu     sync.Mutex
	items  []*outItem
	spare  []*outItem
	bytes  int
	limit  int // items, for live traffic
	blimit int // bytes, for live traffic
	closed bool
	abort  bool
	notify chan struct{}
}

func newOutQueue(limit, blimit int) *outQueue {
	return &outQueue{limit: limit, blimit: blimit, notify: make(chan struct{}, 1)}
}

func (q *outQueue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// push queues it when there is room below limit+extra items (extra lets a
// since-seq replay, itself bounded by recovery.max_messages, through).
// A full queue drops transient items first; when none is left to drop, the
// result is overflow and the caller disconnects the slow consumer.
func (q *outQueue) push(it *outItem, extra int) pushResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return dropped
	}
	sz := it.size()
	if len(q.items) >= q.limit+extra || (extra == 0 && q.bytes+sz > q.blimit && len(q.items) > 0) {
		if it.transient() {
			return dropped
		}
		q.dropTransientLocked()
		if len(q.items) >= q.limit+extra || (extra == 0 && q.bytes+sz > q.blimit && len(q.items) > 0) {
			return overflow
		}
	}
	q.items = append(q.items, it)
	q.bytes += sz
	q.wake()
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
func (q *outQueue) pushControl(it *outItem) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.items = append(q.items, it)
	q.bytes += it.size()
	q.wake()
	return true
}

// closeWith queues a final item (ERROR or close) and refuses everything
// after it. When discard is set, what was queued before is dropped (a slow
// consumer gets its ERROR without waiting behind its backlog).
func (q *outQueue) closeWith(it *outItem, discard bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if discard {
		clear(q.items)
		q.items, q.bytes = q.items[:0], 0
	}
	q.items = append(q.items, it)
	q.closed = true
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
func (q *outQueue) take() (items []*outItem, aborted bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.abort {
		return nil, true
	}
	items = q.items
	clear(q.spare)
	if cap(q.spare) > 1024 {
		q.spare = nil
	}
	q.items, q.spare, q.bytes = q.spare[:0], items, 0
	if len(items) == 0 && cap(items) > 64 {
		// an idle connection keeps no large buffers
		q.items, q.spare = nil, nil
	}
	return items, false
}
