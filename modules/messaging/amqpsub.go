package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpSubscriber is a message.Subscriber over one queue. It consumes again
// after every reconnect (the queue is declared by the connection's setup),
// hands messages on one at a time and acks each after the handler did, so
// order holds and an unhandled message returns to the queue.
type amqpSubscriber struct {
	conn     *amqpConn
	queue    string
	prefetch int
	log      *slog.Logger
	// resumed, when set, is called before a consumer that follows another
	// hands on its first message (relay.onResume).
	resumed func()

	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup
}

func newAMQPSubscriber(conn *amqpConn, queue string, prefetch int, log *slog.Logger) *amqpSubscriber {
	return &amqpSubscriber{conn: conn, queue: queue, prefetch: prefetch, log: log, closing: make(chan struct{})}
}

// Subscribe implements message.Subscriber; the topic is ignored (the queue
// is fixed).
func (s *amqpSubscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("subscriber closed")
	default:
	}
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		bo := newBackoff(100*time.Millisecond, 2*time.Second)
		for first := true; ctx.Err() == nil; first = false {
			if err := s.consume(ctx, out, !first); err != nil && ctx.Err() == nil {
				s.log.Debug("consume from RabbitMQ queue stopped; resuming", "queue", s.queue, "err", err)
				bo.Sleep(ctx)
			}
		}
	}()
	return out, nil
}

// consume runs one consumer until its channel or connection goes away;
// resumed says that another ran before it.
func (s *amqpSubscriber) consume(ctx context.Context, out chan<- *message.Message, resumed bool) error {
	conn, err := s.conn.wait(ctx)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Qos(s.prefetch, 0, false); err != nil {
		_ = ch.Close() // the Qos error is the one to report
		return fmt.Errorf("set prefetch: %w", err)
	}
	deliveries, err := ch.Consume(s.queue, "", false, false, false, false, nil)
	if err != nil {
		_ = ch.Close() // the consume error is the one to report
		return fmt.Errorf("consume %s: %w", s.queue, err)
	}
	if resumed && s.resumed != nil {
		s.resumed() // the previous consumer's messages have all been handled: each is acked before the next
	}
	defer func() {
		// Prefetched deliveries must be drained, or the client blocks and
		// Close never completes; RabbitMQ requeues the unacked ones.
		go func() {
			for range deliveries {
			}
		}()
		_ = ch.Close() // the channel may already be gone with its connection
	}()
	for {
		var d amqp.Delivery
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case d, ok = <-deliveries:
			if !ok {
				return errors.New("delivery channel closed")
			}
		}
		msg, err := marshaler.Unmarshal(d)
		if err != nil {
			s.log.Error("drop undecodable RabbitMQ message", "queue", s.queue, "err", err)
			_ = d.Nack(false, false) // requeueing it would only bring it back
			continue
		}
		mctx, cancel := context.WithCancel(ctx)
		msg.SetContext(mctx)
		select {
		case out <- msg:
		case <-ctx.Done():
			cancel()
			return ctx.Err()
		}
		select {
		case <-msg.Acked():
			err = d.Ack(false)
		case <-msg.Nacked():
			err = d.Nack(false, true)
		case <-ctx.Done():
			cancel()
			return ctx.Err() // unacked: RabbitMQ requeues it when the channel closes
		}
		cancel()
		if err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
}

// Close implements message.Subscriber.
func (s *amqpSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}
