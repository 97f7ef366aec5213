package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chat-service/chat/config"
)

// How shard consumers share the shards between instances. RabbitMQ gives
// each queue's single active consumer to the consumer that registered
// first, so the first instance up would consume every shard. Every
// rebalanceEvery, an instance that consumed more than its share of shards
// within activeFor (its share: shards / consumers of a shard, rounded up)
// gives the extra ones up: it finishes its batch, closes the channel and
// registers again, at the back of the line, and RabbitMQ activates the
// next instance's consumer. Commands not yet acknowledged return to the
// queue in order when the channel closes.
const (
	rebalanceEvery = 2 * time.Second
	activeFor      = 4 * time.Second
	// drainIdle is how long a leftover queue must deliver nothing before
	// it is checked for emptiness.
	drainIdle = 200 * time.Millisecond
)

// amqpCommands is the RabbitMQ command queue: persistent messages on
// commands.shards durable queues, published through the default exchange
// with publisher confirms, on connections of its own.
type amqpCommands struct {
	cfg      config.Commands
	pubConn  *amqpConn
	subConn  *amqpConn
	pub      *amqpPublisher
	log      *slog.Logger
	consumed atomic.Int64 // commands this instance stored (tests, logs)
}

// queueArgs are the arguments every shard is declared with: one consumer
// at a time (so one session's commands are stored in order), of the
// configured type.
func queueArgs(cfg config.Commands) amqp.Table {
	return amqp.Table{"x-single-active-consumer": true, "x-queue-type": cfg.QueueType}
}

// dialAMQPCommands connects and declares every shard, so that no command
// is published to a queue that does not exist (the default exchange would
// drop it).
func dialAMQPCommands(ctx context.Context, url, instance string, cfg config.Commands, log *slog.Logger, m *metrics) (*amqpCommands, error) {
	setup := func(ch *amqp.Channel) error {
		for i := range cfg.Shards {
			name := shardQueue(cfg.Queue, i)
			if _, err := ch.QueueDeclare(name, true, false, false, false, queueArgs(cfg)); err != nil {
				return fmt.Errorf("queue %s (commands.queue_type %s; a queue of another type must be drained and deleted first): %w", name, cfg.QueueType, err)
			}
		}
		return nil
	}
	q := &amqpCommands{cfg: cfg, log: log}
	var err error
	if q.pubConn, err = dialAMQP(ctx, url, "chat-service "+instance+" commands publish", setup, log, m.relayUp("commands_publish")); err != nil {
		return nil, err
	}
	if q.subConn, err = dialAMQP(ctx, url, "chat-service "+instance+" commands consume", setup, log, m.relayUp("commands_consume")); err != nil {
		_ = q.pubConn.Close() // the dial error is the one to report
		return nil, err
	}
	q.pub = &amqpPublisher{conn: q.pubConn}
	return q, nil
}

func (q *amqpCommands) submit(ctx context.Context, sessionID string, msg *message.Message) error {
	return q.pub.publish(ctx, "", shardQueue(q.cfg.Queue, shardOf(sessionID, q.cfg.Shards)), msg, true)
}

func (q *amqpCommands) close() error {
	return errors.Join(q.subConn.Close(), q.pubConn.Close())
}

// shard is one queue this instance consumes.
type shard struct {
	queue   string
	lastGot atomic.Int64 // unix nanoseconds of the last delivery
	yield   atomic.Bool  // give the queue to another instance after this batch
}

// consume first drains what an earlier sharding left behind (see
// leftovers), so that those commands are stored before any command queued
// since, then consumes every shard and keeps the shards shared.
func (q *amqpCommands) consume(ctx context.Context, st *commandStore) {
	q.drainLeftovers(ctx, st, false)
	shards := make([]*shard, q.cfg.Shards)
	var wg sync.WaitGroup
	for i := range shards {
		shards[i] = &shard{queue: shardQueue(q.cfg.Queue, i)}
		wg.Add(1)
		go func() { defer wg.Done(); q.consumeQueue(ctx, shards[i], st, false) }()
	}
	// Commands an instance of the old sharding still held (unacknowledged)
	// return to a leftover queue when it stops: look again now and then.
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(ctx, leftoverCheck, func() { q.drainLeftovers(ctx, st, true) })
	}()
	every(ctx, rebalanceEvery, func() { q.rebalance(ctx, shards) })
	wg.Wait()
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fn()
		}
	}
}

// leftoverCheck is how often an instance looks for commands in leftover
// queues after its start-up drain.
const leftoverCheck = 30 * time.Second

// drainLeftovers consumes the command queues of another commands.shards
// until each is empty, and deletes them: the unsharded queue of older
// versions (commands.queue itself) and shards numbered from
// commands.shards up to MaxCommandShards. At start-up every such queue
// that exists is drained (its commands may be held, unacknowledged, by a
// stopping instance and return in a moment); later (nonEmpty) only those
// holding commands.
func (q *amqpCommands) drainLeftovers(ctx context.Context, st *commandStore, nonEmpty bool) {
	names := []string{q.cfg.Queue}
	for i := q.cfg.Shards; i < config.MaxCommandShards; i++ {
		names = append(names, shardQueue(q.cfg.Queue, i))
	}
	for _, name := range names {
		info, ok := q.inspect(ctx, name)
		if !ok || nonEmpty && info.Messages == 0 {
			continue
		}
		q.log.Info("draining a command queue of another sharding", "queue", name, "commands", info.Messages)
		q.consumeQueue(ctx, &shard{queue: name}, st, true)
	}
}

// depth returns how many messages queue name holds and its consumers
// count, or ok=false when it does not exist or RabbitMQ is unreachable.
func (q *amqpCommands) depth(ctx context.Context, name string) (int, bool) {
	info, ok := q.inspect(ctx, name)
	return info.Messages, ok
}

func (q *amqpCommands) inspect(ctx context.Context, name string) (amqp.Queue, bool) {
	conn, err := q.subConn.wait(ctx)
	if err != nil {
		return amqp.Queue{}, false
	}
	ch, err := conn.Channel()
	if err != nil {
		return amqp.Queue{}, false
	}
	defer func() { _ = ch.Close() }() // a 404 has closed it already
	info, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	return info, err == nil
}

// consumeQueue consumes one queue until ctx ends (drain: until the queue is
// empty), reconnecting as needed.
func (q *amqpCommands) consumeQueue(ctx context.Context, sh *shard, st *commandStore, drain bool) {
	bo := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		done, err := q.consumeOnce(ctx, sh, st, drain)
		if done {
			return
		}
		if err != nil && ctx.Err() == nil {
			q.log.Debug("command queue consumer stopped; resuming", "queue", sh.queue, "err", err)
			if !bo.Sleep(ctx) {
				return
			}
			continue
		}
		bo.Reset()
	}
}

// consumeOnce runs one consumer on its own channel until the channel or
// connection goes away, ctx ends, the shard is to be yielded (then it
// returns nil, and consumeQueue registers again), or a drained queue is
// empty (done).
func (q *amqpCommands) consumeOnce(ctx context.Context, sh *shard, st *commandStore, drain bool) (done bool, err error) {
	conn, err := q.subConn.wait(ctx)
	if err != nil {
		return false, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	// Closing the channel returns every unacknowledged command to the
	// queue, in order; prefetched deliveries must be drained for Close to
	// complete.
	var deliveries <-chan amqp.Delivery
	defer func() {
		if deliveries != nil {
			go func() {
				for range deliveries {
				}
			}()
		}
		_ = ch.Close() // the channel may be gone with its connection
	}()
	if err := ch.Qos(q.cfg.Prefetch, 0, false); err != nil {
		return false, fmt.Errorf("set prefetch: %w", err)
	}
	tag := "chat-" + uuid.NewString()
	if deliveries, err = ch.Consume(sh.queue, tag, false, false, false, false, nil); err != nil {
		return false, fmt.Errorf("consume %s: %w", sh.queue, err)
	}
	idle := time.NewTicker(drainIdle)
	defer idle.Stop()
	lastGot := time.Now()
	bo := newBackoff(100*time.Millisecond, 5*time.Second)
	batch := make([]amqp.Delivery, 0, q.cfg.Prefetch)
	msgs := make([]*message.Message, 0, q.cfg.Prefetch)
	for {
		if sh.yield.CompareAndSwap(true, false) {
			q.log.Debug("giving a command shard to another instance", "queue", sh.queue)
			return false, nil
		}
		var first amqp.Delivery
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case d, ok := <-deliveries:
			if !ok {
				return false, errors.New("delivery channel closed")
			}
			first = d
		case <-idle.C:
			// Drained: nothing delivered for a while, nothing of ours
			// unacknowledged (every batch is acked before this select),
			// and nothing ready in the queue. Delete it only if no other
			// consumer (another instance, holding unacknowledged ones)
			// and no message is left; otherwise that instance will.
			if drain && time.Since(lastGot) >= drainIdle {
				if n, ok := q.depth(ctx, sh.queue); ok && n == 0 {
					if err := ch.Cancel(tag, false); err == nil {
						_, _ = ch.QueueDelete(sh.queue, true, true, false) // refused while in use or not empty
					}
					return true, nil
				}
			}
			continue
		}
		lastGot = time.Now()
		batch = append(batch[:0], first)
		batch = collect(batch, deliveries, q.cfg.Prefetch)
		sh.lastGot.Store(time.Now().UnixNano())
		msgs = msgs[:0]
		for _, d := range batch {
			msg, err := marshaler.Unmarshal(d)
			if err != nil {
				q.log.Error("drop undecodable chat.send command", "queue", sh.queue, "err", err)
				continue
			}
			msgs = append(msgs, msg)
		}
		for {
			err := st.store(ctx, msgs)
			if err == nil {
				break
			}
			q.log.Debug("store chat.send commands; retrying", "queue", sh.queue, "commands", len(msgs), "err", err)
			if !bo.Sleep(ctx) {
				return false, ctx.Err() // unacknowledged: they return to the queue
			}
		}
		bo.Reset()
		if err := ch.Ack(batch[len(batch)-1].DeliveryTag, true); err != nil {
			return false, fmt.Errorf("ack: %w", err)
		}
		q.consumed.Add(int64(len(batch)))
	}
}

// batchLinger is how long a consumer waits for the next delivery of a
// batch. amqp091 hands prefetched deliveries over an unbuffered channel, one
// at a time, from a goroutine of its own: a batch taken only from what is
// ready at once held one command (measured: 1.0 per batch under 2,000
// sends/s), and every command then cost a transaction.
const batchLinger = 500 * time.Microsecond

// collect adds to batch the deliveries that arrive within batchLinger of
// each other, up to max.
func collect(batch []amqp.Delivery, deliveries <-chan amqp.Delivery, max int) []amqp.Delivery {
	if len(batch) >= max {
		return batch
	}
	t := time.NewTimer(batchLinger)
	defer t.Stop()
	for len(batch) < max {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return batch
			}
			batch = append(batch, d)
			t.Reset(batchLinger) // no stale fire to drain since Go 1.23
		case <-t.C:
			return batch
		}
	}
	return batch
}

// rebalance hands the shards this instance consumes beyond its share to
// the other instances.
func (q *amqpCommands) rebalance(ctx context.Context, shards []*shard) {
	info, ok := q.inspect(ctx, shards[0].queue)
	if !ok || info.Consumers < 2 {
		return
	}
	share := (len(shards) + info.Consumers - 1) / info.Consumers
	since := time.Now().Add(-activeFor).UnixNano()
	var active []*shard
	for _, sh := range shards {
		if sh.lastGot.Load() > since {
			active = append(active, sh)
		}
	}
	for _, sh := range active[min(share, len(active)):] {
		sh.lastGot.Store(0)
		sh.yield.Store(true)
	}
}
