package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/edge"
)

// The command queue: STOMP SEND /app/chat.send is accepted into a durable
// queue (Commands.Submit), and a consumer stores what it takes from there
// in batches through group commit (commandStore). Two kinds:
//
//   - RabbitMQ (relay.driver amqp, commands_amqp.go): commands.shards
//     durable queues, a session's commands always in the same one
//     (shardOf), each queue with a single active consumer across the
//     cluster, so that a session's commands are stored in order while
//     different shards are stored by different instances at once.
//   - SQL (relay.driver memory, commands_sql.go): the chat_command_queue
//     table in watermill-sql's format, read in batches like the outbox.

// Sender stores sends taken from the command queue, in order, each at most
// once (a command can be delivered twice; its message id makes the second
// a duplicate); *chat.Service is one. err is a failure of the whole batch.
type Sender interface {
	SendQueued(ctx context.Context, sends []chat.QueuedSend) ([]chat.Appended, error)
}

// commandQueue is where commands wait.
type commandQueue interface {
	// submit returns once the queue durably holds msg, a command for the
	// session sessionID.
	submit(ctx context.Context, sessionID string, msg *message.Message) error
	// consume stores queued commands through st until ctx ends.
	consume(ctx context.Context, st *commandStore)
	close() error
}

// Commands accepts chat.send commands into the durable command queue while
// messaging runs.
type Commands struct {
	mu sync.RWMutex
	q  commandQueue // nil while stopped
	m  *metrics     // nil: not timed
}

func (c *Commands) set(q commandQueue) {
	c.mu.Lock()
	c.q = q
	c.mu.Unlock()
}

func (c *Commands) queue() commandQueue {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.q
}

// Submit queues a send by userID and returns once the queue has durably
// accepted it (RabbitMQ confirmed it, or the row is committed). A failure
// matches chat.ErrUnavailable: nothing was queued and the client may retry
// (with the same clientMessageId, so that a retry is not a second message).
// The message's id is fixed here, so that however often the command is
// delivered it is stored once. The command is validated again when it is
// taken from the queue; a rejection then is reported as an "error" event
// to user.{userID}.
func (c *Commands) Submit(ctx context.Context, userID string, req chat.SendRequest) error {
	q := c.queue()
	if q == nil {
		return fmt.Errorf("%w: queue chat.send: messaging is not started", chat.ErrUnavailable)
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode chat.send: %w", err)
	}
	msg := message.NewMessage(uuid.Must(uuid.NewV7()).String(), payload)
	msg.Metadata.Set(metaUserID, userID)
	msg.SetContext(ctx)
	start := time.Now()
	if err := q.submit(ctx, req.SessionID, msg); err != nil {
		return fmt.Errorf("%w: queue chat.send from %s: %w", chat.ErrUnavailable, userID, err)
	}
	if c.m != nil {
		c.m.stagePublish.Since(start)
	}
	return nil
}

// shardOf is the shard of a session's commands: FNV-1a of its id, modulo
// the number of shards. Changing the number moves sessions to other
// shards, hence the drain-first procedure in docs/configuration.md.
func shardOf(sessionID string, shards int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(sessionID)) // a hash.Hash never fails to write
	return int(h.Sum32() % uint32(shards))
}

// shardQueue names shard i of the command queue base.
func shardQueue(base string, i int) string { return base + "." + strconv.Itoa(i) }

// commandStore stores batches of queued commands and reports the ones the
// domain rejects to their senders.
type commandStore struct {
	sender Sender
	// report writes error events to the outbox, in one transaction.
	report func(ctx context.Context, evs []chat.Event) error
	m      *metrics
	log    *slog.Logger
}

// store stores msgs, in order. nil means every command is done with
// (stored, a duplicate, or rejected and reported) and may be acknowledged;
// an error means none may be, and the batch is to be tried again later
// (what was stored meanwhile is then a duplicate).
func (c *commandStore) store(ctx context.Context, msgs []*message.Message) error {
	sends := make([]chat.QueuedSend, 0, len(msgs))
	for _, msg := range msgs {
		q := chat.QueuedSend{UserID: msg.Metadata.Get(metaUserID), MessageID: msg.UUID}
		if err := json.Unmarshal(msg.Payload, &q.Request); err != nil || q.UserID == "" || uuid.Validate(q.MessageID) != nil {
			c.log.Error("drop malformed chat.send command", "uuid", msg.UUID, "user_id", q.UserID, "err", err)
			c.m.commands.WithLabelValues("rejected").Inc()
			continue
		}
		sends = append(sends, q)
	}
	if len(sends) == 0 {
		return nil
	}
	start := time.Now()
	res, err := c.sender.SendQueued(ctx, sends)
	c.m.stageCommit.Since(start)
	if err != nil {
		return c.retryLater(err)
	}
	var (
		rejected                 []chat.Event
		stored, duplicates, fail int
	)
	for i, r := range res {
		switch {
		case r.Err == nil && r.Created:
			stored++
		case r.Err == nil:
			duplicates++
		case isTransient(r.Err):
			return c.retryLater(r.Err)
		default:
			fail++
			rejected = append(rejected, c.rejection(sends[i], r.Err))
		}
	}
	if len(rejected) > 0 {
		if err := c.report(ctx, rejected); err != nil {
			return c.retryLater(fmt.Errorf("report %d rejected chat.send commands: %w", len(rejected), err))
		}
	}
	c.m.commands.WithLabelValues("stored").Add(float64(stored))
	c.m.commands.WithLabelValues("duplicate").Add(float64(duplicates))
	c.m.commands.WithLabelValues("rejected").Add(float64(fail))
	c.m.commandBatch.Observe(float64(len(sends)))
	return nil
}

func (c *commandStore) retryLater(err error) error {
	c.m.commandRetries.Inc()
	return err
}

// rejection is the error event that tells q's sender why it was refused.
func (c *commandStore) rejection(q chat.QueuedSend, err error) chat.Event {
	p, _ := edge.Problem(err) // an unexpected error is reported as 500 internal, and logged below
	p.ClientMessageID = q.Request.ClientMessageID
	if p.Status >= 500 {
		c.log.Error("chat.send command failed; reported to the sender", "user_id", q.UserID, "session_id", q.Request.SessionID, "err", err)
	} else {
		c.log.Debug("chat.send command rejected", "user_id", q.UserID, "session_id", q.Request.SessionID, "code", p.Code)
	}
	return chat.Event{Type: chat.EventError, SessionID: q.Request.SessionID, Participants: []string{q.UserID}, Problem: &p}
}

// isTransient reports failures worth retrying: the database is unavailable,
// or the attempt ran out of time.
func isTransient(err error) bool {
	return errors.Is(err, chat.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled)
}
