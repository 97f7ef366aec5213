package messaging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/chat-service/chat/modules/chat"
)

var _ chat.Events = (*Outbox)(nil)

// Outbox is chat.Events: stored events are written by the watermill-sql
// publisher bound to the caller's transaction into chat_message_outbox (so
// the commit makes both the data and its events durable, or neither), and
// the forwarder publishes them to the relay later. Transient events (typing)
// go to the relay directly.
type Outbox struct {
	backend *sqlBackend
	// wake tells this instance's forwarder that rows were committed.
	wake chan struct{}

	mu    sync.RWMutex
	relay relay // for Transient; nil while stopped
}

func newOutbox(b *sqlBackend) *Outbox {
	return &Outbox{backend: b, wake: make(chan struct{}, 1)}
}

// Stored writes evs to the outbox inside tx, in one statement.
func (o *Outbox) Stored(_ context.Context, tx *sql.Tx, evs ...chat.Event) error {
	if len(evs) == 0 {
		return nil
	}
	msgs := make(message.Messages, 0, len(evs))
	for _, ev := range evs {
		msg, err := newEventMessage(ev)
		if err != nil {
			return err
		}
		if rs := routes(ev); len(rs) == 1 && !rs[0].narrowed {
			msg.Metadata.Set(metaRoute, rs[0].key)
		}
		msgs = append(msgs, msg)
	}
	// A publisher per transaction: it is a small struct bound to tx.
	pub, err := o.backend.publisher(tx)
	if err != nil {
		return fmt.Errorf("outbox publisher: %w", err)
	}
	if err := pub.Publish(OutboxTopic, msgs...); err != nil {
		return fmt.Errorf("write %d event(s) to the outbox: %w", len(msgs), err)
	}
	return nil
}

// Committed wakes this instance's forwarder: a transaction that may have
// written outbox rows has committed. The store calls it after every write
// (store.Store.OnCommit); it never blocks.
func (o *Outbox) Committed() { signal(o.wake) }

// Transient publishes ev to the relay now; it is not stored and not retried.
func (o *Outbox) Transient(ctx context.Context, ev chat.Event) error {
	o.mu.RLock()
	r := o.relay
	o.mu.RUnlock()
	if r == nil {
		return errors.New("publish transient event: messaging is not started")
	}
	for _, rt := range routes(ev) {
		msg, err := newEventMessage(rt.ev)
		if err != nil {
			return err
		}
		msg.SetContext(ctx)
		if err := r.publish(ctx, rt.key, msg); err != nil {
			return fmt.Errorf("publish %s event to %s: %w", ev.Type, rt.key, err)
		}
	}
	return nil
}

func (o *Outbox) setRelay(r relay) {
	o.mu.Lock()
	o.relay = r
	o.mu.Unlock()
}

// report writes events to the outbox in a transaction of their own: the
// command queue's rejections, which reach their senders through the relay
// like every other event.
func (o *Outbox) report(ctx context.Context, evs []chat.Event) error {
	tx, err := o.backend.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := o.Stored(ctx, tx, evs...); err != nil {
		_ = tx.Rollback() // the write error is the one to report
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	o.Committed()
	return nil
}
