package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Bus carries presence messages between instances over a RabbitMQ fanout
// exchange of its own (not the relay's): every instance binds one
// exclusive, auto-deleted queue to it, publishes its changes, heartbeats
// and snapshots there, and reads everyone else's. The exchange is
// auto-deleted too: it lives while an instance is bound to it. Messages
// are transient (not persisted): what a restart loses, the next snapshot
// or heartbeat repairs.
type Bus struct {
	url, exchange string
	t             *Tracker
	log           *slog.Logger
	out           chan wire
	overflow      atomic.Bool // a message was dropped: publish a snapshot next
	up            chan struct{}
	upOnce        atomic.Bool
}

// NewBus returns a bus for t on the exchange at url; Run connects it.
func NewBus(url, exchange string, t *Tracker, log *slog.Logger) *Bus {
	b := &Bus{url: url, exchange: exchange, t: t, log: log, out: make(chan wire, 8192), up: make(chan struct{})}
	t.attach(b)
	return b
}

// Publish implements publisher: it queues m and never blocks. A full
// queue drops m; a snapshot follows so that peers catch up.
func (b *Bus) Publish(m wire) {
	select {
	case b.out <- m:
	default:
		b.overflow.Store(true)
	}
}

// Up is closed once the bus first connected.
func (b *Bus) Up() <-chan struct{} { return b.up }

// Run keeps the bus connected until ctx ends, then says goodbye.
func (b *Bus) Run(ctx context.Context) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.session(ctx)
		b.t.busDisconnected()
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("presence bus disconnected; reconnecting", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// session is one connection: declare, bind, consume and publish until it
// fails or ctx ends.
func (b *Bus) session(ctx context.Context) error {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("chat-service presence " + b.t.o.Self)
	conn, err := amqp.DialConfig(b.url, amqp.Config{Properties: props, Heartbeat: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("dial: %s", strings.ReplaceAll(err.Error(), b.url, "<relay.amqp.url>"))
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := ch.ExchangeDeclare(b.exchange, amqp.ExchangeFanout, false, true, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", b.exchange, err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fmt.Errorf("declare queue: %w", err)
	}
	if err := ch.QueueBind(q.Name, "", b.exchange, false, nil); err != nil {
		return fmt.Errorf("bind queue: %w", err)
	}
	in, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	// What was queued before this snapshot is in it.
	snap := b.t.busConnected()
	b.overflow.Store(false)
	if err := b.publish(ctx, ch, snap); err != nil {
		return err
	}
	if err := b.publish(ctx, ch, wire{T: kindHello, I: b.t.o.Self}); err != nil {
		return err
	}
	if b.upOnce.CompareAndSwap(false, true) {
		close(b.up)
	}
	for {
		select {
		case <-ctx.Done():
			pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = b.publish(pctx, ch, wire{T: kindBye, I: b.t.o.Self, At: time.Now().UnixMilli()}) // best effort: peers expire us anyway
			cancel()
			return nil
		case e := <-closed:
			if e == nil {
				return errors.New("connection closed")
			}
			return e
		case d, ok := <-in:
			if !ok {
				return errors.New("consumer closed")
			}
			var m wire
			if err := json.Unmarshal(d.Body, &m); err != nil {
				b.log.Warn("presence: undecodable bus message dropped", "error", err)
				continue
			}
			b.t.receive(m)
		case m := <-b.out:
			if stale(m, snap.S) {
				continue // the last snapshot sent holds it already
			}
			if (m.T == kindDelta || m.T == kindBeat || m.T == kindSnap) && b.overflow.Swap(false) {
				b.t.mu.Lock()
				m = b.t.snapshotLocked() // in place of what the full queue dropped
				b.t.mu.Unlock()
			}
			if m.T == kindSnap {
				snap = m
			}
			if err := b.publish(ctx, ch, m); err != nil {
				return err
			}
		}
	}
}

// stale reports whether m says nothing a snapshot of sequence snapSeq
// did not: a change it includes, a heartbeat or snapshot older than it.
func stale(m wire, snapSeq uint64) bool {
	switch m.T {
	case kindDelta:
		return m.S <= snapSeq
	case kindBeat, kindSnap:
		return m.S < snapSeq
	}
	return false
}

func (b *Bus) publish(ctx context.Context, ch *amqp.Channel, m wire) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ch.PublishWithContext(pctx, b.exchange, "", false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Transient, Body: body,
	}); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}
