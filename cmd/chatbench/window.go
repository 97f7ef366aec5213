package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// flights tracks the messages of a windowed sender (fanout -window) that
// have not reached every subscriber yet: each is keyed by the send time it
// carries, and when its last delivery arrives a slot of the window frees.
type flights struct {
	each  int64         // deliveries a message needs: the subscribers
	slots chan struct{} // a token per message in flight
	m     sync.Map      // send time (unix ns) → *atomic.Int64 deliveries still missing
	stall atomic.Int64  // slots taken back after stallAfter without their deliveries
}

// stallAfter is how long a sender waits for a free slot before it assumes
// a message in flight was lost and sends anyway (lost ones show as missing).
const stallAfter = 2 * time.Second

func newFlights(window int, each int64) *flights {
	return &flights{each: each, slots: make(chan struct{}, window)}
}

// delivered counts one delivery of the message sent at ns.
func (f *flights) delivered(ns int64) {
	v, ok := f.m.Load(ns)
	if !ok {
		return
	}
	if v.(*atomic.Int64).Add(-1) == 0 {
		f.m.Delete(ns)
		select {
		case <-f.slots:
		default:
		}
	}
}

// take waits for a free slot; false when stop came first.
func (f *flights) take(stop <-chan struct{}, timer *time.Timer) bool {
	select {
	case f.slots <- struct{}{}:
		return true
	default:
	}
	timer.Reset(stallAfter)
	defer timer.Stop()
	select {
	case f.slots <- struct{}{}:
		return true
	case <-stop:
		return false
	case <-timer.C:
		// A message is late or lost: free the oldest slot and go on.
		f.stall.Add(1)
		return true
	}
}

// windowLoop sends as fast as the window lets it until stop, bounded to
// maxRate messages a second for an hour.
func (l *load) windowLoop(t *target, o options, sd sender, stop <-chan struct{}) {
	dest := t.sendDest(sd.s)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for range int(maxRate) * 3600 {
		if !l.flights.take(stop, timer) {
			return
		}
		now := time.Now()
		body := stampAt(sd.s.id, o.pad, now)
		n := new(atomic.Int64)
		n.Store(l.flights.each)
		l.flights.m.Store(now.UnixNano(), n)
		receipt := ""
		if o.receipts {
			receipt = receiptFor(now)
		}
		if err := sd.c.send(dest, body, receipt); err != nil {
			l.onEnd(fmt.Errorf("send: %w", err))
			return
		}
		if l.inWindow(now) {
			l.sent.Add(1)
		}
	}
}
