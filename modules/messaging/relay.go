package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chat-service/chat/config"
)

// relay fans events out to every instance (RabbitMQ) or within this one
// (gochannel).
type relay interface {
	// publish sends an event with a routing key and returns once the relay
	// has accepted it.
	publish(ctx context.Context, key string, msg *message.Message) error
	// publishAll sends pubs in order and returns once they are on their
	// way; the confirmation tells how many of them, from the first, the
	// relay accepted. ctx bounds the wait for it. The forwarder acknowledges
	// outbox rows up to that point only.
	publishAll(ctx context.Context, pubs []publication) *confirmation
	// events is the subscriber (and its topic) of this instance's events.
	events() (message.Subscriber, string)
	// onResume sets fn, called when the subscriber consumes again after
	// a broker restart or a lost connection, before it hands on the first
	// event of the new consumer: events queued for this instance may have
	// been lost. Set before the subscriber is used.
	onResume(fn func())
	// ping reports whether the relay is reachable.
	ping(ctx context.Context) error
	close() error
}

// publication is one event for the relay and its routing key.
type publication struct {
	key string
	msg *message.Message
}

// confirmation is the outcome of a publishAll, known once done is closed:
// n publications, from the first, were accepted; err says why the rest
// were not.
type confirmation struct {
	done chan struct{}
	n    int
	err  error
}

// confirmed is a confirmation known at once.
func confirmed(n int, err error) *confirmation {
	c := &confirmation{done: make(chan struct{}), n: n, err: err}
	close(c.done)
	return c
}

// memoryRelay is the in-process relay of a single instance. Publishing
// blocks until the subscriber acked, so events keep their order.
type memoryRelay struct{ gc *gochannel.GoChannel }

func newMemoryRelay(log watermill.LoggerAdapter) *memoryRelay {
	return &memoryRelay{gc: gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, log)}
}

func (r *memoryRelay) publish(_ context.Context, key string, msg *message.Message) error {
	msg.Metadata.Set(metaRoutingKey, key)
	return r.gc.Publish(memoryTopic, msg)
}

// publishAll publishes one at a time: each Publish returns when the hub's
// handler has taken the event, which is about as fast as a batch could be.
func (r *memoryRelay) publishAll(ctx context.Context, pubs []publication) *confirmation {
	for i, p := range pubs {
		if err := r.publish(ctx, p.key, p.msg); err != nil {
			return confirmed(i, err)
		}
	}
	return confirmed(len(pubs), nil)
}

func (r *memoryRelay) events() (message.Subscriber, string) { return r.gc, memoryTopic }
func (r *memoryRelay) onResume(func())                      {} // nothing is lost in process
func (r *memoryRelay) ping(context.Context) error           { return nil }
func (r *memoryRelay) close() error                         { return r.gc.Close() }

// amqpRelay publishes events to a durable topic exchange and consumes this
// instance's queue, bound to session.# and user.#. The queue is durable and
// not exclusive, named after the instance, and expires when no one has used
// it for relayQueueExpires: while this instance reconnects after a broker
// restart or a dropped connection it keeps collecting events, so none is
// lost; an instance that is gone for good leaves nothing behind.
//
// Publishing and consuming use separate connections, as RabbitMQ advises
// (flow control blocks publishing connections).
type amqpRelay struct {
	cfg     config.Relay
	queue   string
	pubConn *amqpConn
	subConn *amqpConn
	pub     *amqpPublisher
	sub     *amqpSubscriber
	log     *slog.Logger
	// persistent (relay.amqp.persistent) publishes events persistent:
	// those queued for an instance when RabbitMQ restarts survive it. Off,
	// they are lost, and the instance recovers the messages among them from
	// the store when it consumes again (onResume, the hub's Resync); other
	// events (read, typing, session) are not stored and stay lost. A dropped
	// connection loses nothing either way. BENCHMARKS.md has the cost.
	persistent bool
}

// dialAMQPRelay connects both connections and declares the topology.
func dialAMQPRelay(ctx context.Context, cfg config.Relay, instance string, log *slog.Logger, m *metrics) (*amqpRelay, error) {
	r := &amqpRelay{cfg: cfg, queue: relayQueuePrefix + instance, log: log, persistent: cfg.AMQP.Persistent}
	pubSetup := func(ch *amqp.Channel) error {
		if err := declareExchange(ch, cfg.AMQP.Exchange); err != nil {
			return fmt.Errorf("exchange %s: %w", cfg.AMQP.Exchange, err)
		}
		return nil
	}
	subSetup := func(ch *amqp.Channel) error {
		if err := pubSetup(ch); err != nil {
			return err
		}
		args := amqp.Table{"x-expires": int64(relayQueueExpires.Milliseconds())}
		if _, err := ch.QueueDeclare(r.queue, true, false, false, false, args); err != nil {
			return fmt.Errorf("queue %s: %w", r.queue, err)
		}
		for _, key := range []string{bindAllSessions, bindAllUsers} {
			if err := ch.QueueBind(r.queue, key, cfg.AMQP.Exchange, false, nil); err != nil {
				return fmt.Errorf("bind %s to %s: %w", r.queue, key, err)
			}
		}
		return nil
	}
	var err error
	r.pubConn, err = dialAMQP(ctx, cfg.AMQP.URL, "chat-service "+instance+" publish", pubSetup, log, m.relayUp("publish"))
	if err != nil {
		return nil, err
	}
	r.subConn, err = dialAMQP(ctx, cfg.AMQP.URL, "chat-service "+instance+" consume", subSetup, log, m.relayUp("consume"))
	if err != nil {
		_ = r.pubConn.Close() // the dial error is the one to report
		return nil, err
	}
	r.pub = &amqpPublisher{conn: r.pubConn}
	r.sub = newAMQPSubscriber(r.subConn, r.queue, 256, log)
	return r, nil
}

func (r *amqpRelay) publish(ctx context.Context, key string, msg *message.Message) error {
	return r.pub.publish(ctx, r.cfg.AMQP.Exchange, key, msg, r.persistent)
}

func (r *amqpRelay) publishAll(ctx context.Context, pubs []publication) *confirmation {
	return r.pub.publishAll(ctx, r.cfg.AMQP.Exchange, pubs, r.persistent)
}

func (r *amqpRelay) events() (message.Subscriber, string) { return r.sub, r.queue }
func (r *amqpRelay) onResume(fn func())                   { r.sub.resumed = fn }

func (r *amqpRelay) ping(context.Context) error {
	if _, err := r.pubConn.current(); err != nil {
		return fmt.Errorf("publish connection: %w", err)
	}
	if _, err := r.subConn.current(); err != nil {
		return fmt.Errorf("consume connection: %w", err)
	}
	return nil
}

// close deletes this instance's queue (best effort: it expires anyway) and
// closes both connections.
func (r *amqpRelay) close() error {
	err := r.sub.Close() // the router closed it already; this is idempotent
	if conn, cerr := r.subConn.current(); cerr == nil {
		if ch, cerr := conn.Channel(); cerr == nil {
			_, _ = ch.QueueDelete(r.queue, false, false, false) // best effort; x-expires removes it otherwise
			_ = ch.Close()
		}
	}
	return errors.Join(err, r.subConn.Close(), r.pubConn.Close())
}

// relayHandler hands every relay event to the local hub.
type relayHandler struct {
	hub Hub
	m   *metrics
	log *slog.Logger
	// mark is the creation time (Unix ms) of the newest message handed to
	// the hub, or of the handler's start: a consumer that resumes after a
	// loss may have missed messages created from about then on.
	mark atomic.Int64
}

func newRelayHandler(hub Hub, m *metrics, log *slog.Logger) *relayHandler {
	h := &relayHandler{hub: hub, m: m, log: log}
	h.mark.Store(time.Now().UnixMilli())
	return h
}

// resyncSlack widens the window of a resync: the relay carries messages in
// outbox order, which follows creation time only up to the length of a
// transaction and the clock skew between instances.
const resyncSlack = 5 * time.Second

func (h *relayHandler) handle(msg *message.Message) error {
	ev, err := decodeEvent(msg.Payload)
	if err != nil {
		h.log.Error("drop undecodable relay event", "uuid", msg.UUID, "err", err)
		return nil
	}
	if n, err := strconv.ParseInt(msg.Metadata.Get(metaSentAt), 10, 64); err == nil {
		h.m.stageRelay.Observe(time.Since(time.Unix(0, n)))
	}
	h.hub.Deliver(ev)
	if ev.Message != nil {
		if at := ev.Message.CreatedAt.UnixMilli(); at > h.mark.Load() {
			h.mark.Store(at) // one handler goroutine writes; resumed reads
		}
	}
	h.m.relayReceived.Inc()
	return nil
}

// resumed runs when the relay consumes again after events queued for this
// instance may have been lost (a broker restart): the hub recovers the
// messages among them from the store.
func (h *relayHandler) resumed() {
	since := time.UnixMilli(h.mark.Load()).Add(-resyncSlack)
	h.m.relayResyncs.Inc()
	r, ok := h.hub.(Resyncer)
	if !ok {
		h.log.Warn("relay consumer resumed; events queued for this instance may be lost and the hub cannot recover them")
		return
	}
	h.log.Info("relay consumer resumed; recovering messages the relay may have lost", "since", since)
	r.Resync(since)
}
