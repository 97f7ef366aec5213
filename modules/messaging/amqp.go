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
// events are persistent or not as relay.amqp.persistent says (amqpRelay).
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
