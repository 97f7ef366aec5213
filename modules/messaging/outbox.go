package messaging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/chat-service/chat/modules/chat"
)

var _ chat.Events = (*Outbox)(nil)

// Outbox is chat.Events: stored events are written by the watermill-sql
// publisher bound to the caller's transaction into chat_message_outbox (so
// the commit makes both the data and its events durable, or neither), and
// the forwarder publishes them to the relay later. Transient events (typing)
// go to the relay directly.
type Outbox struct{ m *Messaging }

// Stored writes evs to the outbox inside tx.
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
		msgs = append(msgs, msg)
	}
	// A publisher per transaction: it is a small struct bound to tx.
	pub, err := o.m.backend.publisher(tx)
	if err != nil {
		return fmt.Errorf("outbox publisher: %w", err)
	}
	if err := pub.Publish(OutboxTopic, msgs...); err != nil {
		return fmt.Errorf("write %d event(s) to the outbox: %w", len(msgs), err)
	}
	// Tell this instance's forwarder that rows are coming. They become
	// visible when tx commits, shortly after: the forwarder polls often
	// while events come, rather than after outbox.poll_interval.
	select {
	case o.m.wake <- struct{}{}:
	default: // a signal is pending already
	}
	return nil
}

// Transient publishes ev to the relay now; it is not stored and not retried.
func (o *Outbox) Transient(ctx context.Context, ev chat.Event) error {
	r := o.m.currentRelay()
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
