package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitMQ plumbing. Messages are mapped to and from AMQP with
// watermill-amqp's DefaultMarshaler (persistent delivery, metadata as
// headers), but the connection is kept here: watermill-amqp's
// ConnectionWrapper reassigns its fields without a lock while reconnecting
// (ThreeDotsLabs/watermill#693), which the race detector reports on every
// broker restart. amqpConn guards its state with a mutex and redials on its
// own; publishers use confirm-mode channels; consumers ack after handling.

var errNotConnected = errors.New("not connected to RabbitMQ")

// Commands are persistent (they must survive a broker restart); relay
// events are transient, see amqpRelay.
var (
	marshaler          = wmamqp.DefaultMarshaler{}
	transientMarshaler = wmamqp.DefaultMarshaler{NotPersistentDeliveryMode: true}
)

// amqpConn keeps one connection to RabbitMQ: it dials, runs setup (declares
// the topology it depends on) on every new connection before handing it out,
// and redials with backoff after the connection is lost, until Close.
type amqpConn struct {
	url   string
	name  string
	setup func(ch *amqp.Channel) error
	log   *slog.Logger
	onUp  func(up bool)

	mu     sync.Mutex
	conn   *amqp.Connection // nil while disconnected
	ready  chan struct{}    // closed while conn is set
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// dialAMQP connects synchronously, so that a dead broker fails start-up,
// then keeps the connection up in the background.
func dialAMQP(ctx context.Context, url, name string, setup func(*amqp.Channel) error, log *slog.Logger, onUp func(bool)) (*amqpConn, error) {
	c := &amqpConn{url: url, name: name, setup: setup, log: log, onUp: onUp, ready: make(chan struct{}), done: make(chan struct{})}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.set(conn)
	c.wg.Add(1)
	go c.keep(conn)
	return c, nil
}

func (c *amqpConn) dial(ctx context.Context) (*amqp.Connection, error) {
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(c.name)
	conn, err := amqp.DialConfig(c.url, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: props,
		Dial:       amqp.DefaultDial(timeout),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ: %w", redactURL(err, c.url))
	}
	if c.setup != nil {
		ch, err := conn.Channel()
		if err == nil {
			err = c.setup(ch)
			if cerr := ch.Close(); err == nil && cerr != nil && !errors.Is(cerr, amqp.ErrClosed) {
				err = cerr
			}
		}
		if err != nil {
			_ = conn.Close() // the setup error is the one to report
			return nil, fmt.Errorf("declare RabbitMQ topology: %w", err)
		}
	}
	return conn, nil
}

// keep waits for the connection to close and redials, until Close.
func (c *amqpConn) keep(conn *amqp.Connection) {
	defer c.wg.Done()
	for {
		lost := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-c.done:
			return
		case err := <-lost:
			c.unset()
			c.log.Warn("relay connection to RabbitMQ lost; reconnecting", "connection", c.name, "err", errString(err))
		}
		bo := newBackoff(200*time.Millisecond, 5*time.Second)
		for {
			wait := time.NewTimer(bo.Next())
			select {
			case <-c.done:
				wait.Stop()
				return
			case <-wait.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			next, err := c.dial(ctx)
			cancel()
			if err == nil {
				conn = next
				break
			}
			c.log.Debug("reconnect to RabbitMQ failed", "connection", c.name, "err", err)
		}
		if !c.set(conn) {
			_ = conn.Close() // Close ran while we dialled
			return
		}
		c.log.Info("relay connection to RabbitMQ restored", "connection", c.name)
	}
}

func (c *amqpConn) set(conn *amqp.Connection) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.conn = conn
	close(c.ready)
	if c.onUp != nil {
		c.onUp(true)
	}
	return true
}

func (c *amqpConn) unset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn = nil
		c.ready = make(chan struct{})
		if c.onUp != nil {
			c.onUp(false)
		}
	}
}

// current returns the connection, or errNotConnected at once.
func (c *amqpConn) current() (*amqp.Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.conn.IsClosed() {
		return nil, errNotConnected
	}
	return c.conn, nil
}

// wait returns the connection once there is one, or an error when ctx ends
// or the connection is closed for good.
func (c *amqpConn) wait(ctx context.Context) (*amqp.Connection, error) {
	for {
		c.mu.Lock()
		conn, ready, closed := c.conn, c.ready, c.closed
		c.mu.Unlock()
		if closed {
			return nil, amqp.ErrClosed
		}
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		select {
		case <-ready:
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond): // a closed conn not yet noticed by keep
		}
	}
}

// Close closes the connection and stops reconnecting.
func (c *amqpConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	var err error
	if conn != nil {
		if err = conn.Close(); errors.Is(err, amqp.ErrClosed) {
			err = nil
		}
	}
	c.wg.Wait()
	return err
}

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

// declareExchange declares the relay exchange: passively for the reserved
// amq.* exchanges, which always exist and may not be declared.
func declareExchange(ch *amqp.Channel, name string) error {
	if strings.HasPrefix(name, "amq.") {
		return ch.ExchangeDeclarePassive(name, amqp.ExchangeTopic, true, false, false, false, nil)
	}
	return ch.ExchangeDeclare(name, amqp.ExchangeTopic, true, false, false, false, nil)
}

// redactURL keeps the password of url out of err's text.
func redactURL(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	if i := strings.Index(rawURL, "://"); i >= 0 {
		if j := strings.LastIndex(rawURL, "@"); j > i {
			return errors.New(strings.ReplaceAll(err.Error(), rawURL[i+3:j], "***"))
		}
	}
	return err
}

func errString(err *amqp.Error) string {
	if err == nil {
		return "closed"
	}
	return err.Error()
}
