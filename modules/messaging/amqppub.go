package messaging

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpPublisher publishes through one confirm-mode channel, shared by
// concurrent callers (each waits for its own confirmations), reopened when
// the channel or the connection is lost.
type amqpPublisher struct {
	conn *amqpConn

	mu     sync.Mutex
	ch     *amqp.Channel
	chConn *amqp.Connection
}

func (p *amqpPublisher) channel() (*amqp.Channel, error) {
	conn, err := p.conn.current()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil && p.chConn == conn && !p.ch.IsClosed() {
		return p.ch, nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close() // the confirm error is the one to report
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	p.ch, p.chConn = ch, conn
	return ch, nil
}

// publish sends msg to exchange with key and returns once RabbitMQ has
// confirmed it (for a persistent message to a durable queue: written to disk).
func (p *amqpPublisher) publish(ctx context.Context, exchange, key string, msg *message.Message, persistent bool) error {
	m := transientMarshaler
	if persistent {
		m = marshaler
	}
	pub, err := m.Marshal(msg)
	if err != nil {
		return fmt.Errorf("marshal message %s: %w", msg.UUID, err)
	}
	ch, err := p.channel()
	if err != nil {
		return err
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, pub)
	if err != nil {
		return fmt.Errorf("publish to %q with key %q: %w", exchange, key, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("wait for confirmation of %s: %w", msg.UUID, err)
	}
	if !ok {
		return fmt.Errorf("RabbitMQ did not confirm message %s (nack or channel closed)", msg.UUID)
	}
	return nil
}

// publishAll publishes pubs to exchange in order on one channel without
// waiting between them, and waits for their confirmations in the
// background: one round trip for the batch instead of one per message,
// and the caller may publish the next batch meanwhile. The confirmation
// counts the leading publications RabbitMQ confirmed. Publishing stops at
// the first error, and a batch never moves to another channel halfway, so
// what reaches a queue is a prefix of what was published, in order
// (RabbitMQ keeps the order of one channel's messages to one queue). The
// exception is a nack, which RabbitMQ sends only when a queue process
// fails: later messages may have been enqueued by then, as when a queue
// loses its transient messages.
func (p *amqpPublisher) publishAll(ctx context.Context, exchange string, pubs []publication, persistent bool) *confirmation {
	if len(pubs) == 0 {
		return confirmed(0, nil)
	}
	m := transientMarshaler
	if persistent {
		m = marshaler
	}
	ch, err := p.channel()
	if err != nil {
		return confirmed(0, err)
	}
	dcs := make([]*amqp.DeferredConfirmation, 0, len(pubs))
	var perr error
	for _, pb := range pubs {
		out, err := m.Marshal(pb.msg)
		if err != nil {
			perr = fmt.Errorf("marshal message %s: %w", pb.msg.UUID, err)
			break
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, pb.key, false, false, out)
		if err != nil {
			perr = fmt.Errorf("publish to %q with key %q: %w", exchange, pb.key, err)
			break
		}
		dcs = append(dcs, dc)
	}
	if len(dcs) == 0 {
		return confirmed(0, perr)
	}
	c := &confirmation{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for i, dc := range dcs {
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				c.n, c.err = i, fmt.Errorf("wait for confirmation of %s: %w", pubs[i].msg.UUID, err)
				return
			}
			if !ok {
				c.n, c.err = i, fmt.Errorf("RabbitMQ did not confirm message %s (nack or channel closed)", pubs[i].msg.UUID)
				return
			}
		}
		c.n, c.err = len(dcs), perr
	}()
	return c
}
