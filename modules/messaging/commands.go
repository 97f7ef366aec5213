package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/chat-service/chat/modules/chat"
)

// Sender stores a send taken from the command queue; *chat.Service is one.
// It must be idempotent on the request's ClientMessageID: a command can be
// delivered more than once.
type Sender interface {
	SendQueued(ctx context.Context, userID string, req chat.SendRequest) (chat.Message, bool, error)
}

// Commands accepts chat.send commands (STOMP SEND /app/chat.send) into the
// durable command queue: a RabbitMQ durable queue with publisher confirms
// when relay.driver is amqp, else the chat_command_queue table.
type Commands struct{ m *Messaging }

// Submit queues a send by userID and returns once the queue has durably
// accepted it (RabbitMQ confirmed it, or the row is committed). A failure
// matches chat.ErrUnavailable: nothing was queued and the client may retry
// (with the same clientMessageId, so that a retry is not a second message).
// The command is validated again when it is taken from the queue; a
// rejection then is reported as an "error" event to user.{userID}.
func (c *Commands) Submit(ctx context.Context, userID string, req chat.SendRequest) error {
	q := c.m.currentCommandQueue()
	if q == nil {
		return fmt.Errorf("%w: queue chat.send: messaging is not started", chat.ErrUnavailable)
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode chat.send: %w", err)
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(metaUserID, userID)
	msg.SetContext(ctx)
	if err := q.submit(ctx, msg); err != nil {
		return fmt.Errorf("%w: queue chat.send from %s: %w", chat.ErrUnavailable, userID, err)
	}
	return nil
}

// commandQueue is where commands wait.
type commandQueue interface {
	submit(ctx context.Context, msg *message.Message) error
	subscriber() (message.Subscriber, string, error)
}

// amqpCommands is the RabbitMQ command queue: persistent messages on a
// durable queue through the default exchange, confirmed by the broker.
type amqpCommands struct {
	relay *amqpRelay
	queue string
	log   *slog.Logger
}

func (q *amqpCommands) submit(ctx context.Context, msg *message.Message) error {
	return q.relay.pub.publish(ctx, "", q.queue, msg, true)
}

func (q *amqpCommands) subscriber() (message.Subscriber, string, error) {
	return newAMQPSubscriber(q.relay.subConn, q.queue, 16, q.log), q.queue, nil
}

// sqlCommands is the command queue in the database (CommandTopic).
type sqlCommands struct {
	backend *sqlBackend
	poll    subscriberConfig
}

func (q *sqlCommands) submit(ctx context.Context, msg *message.Message) error {
	ins, err := q.backend.schema.InsertQuery(CommandTopic, message.Messages{msg})
	if err != nil {
		return err
	}
	if _, err := q.backend.db.ExecContext(ctx, ins.Query, ins.Args...); err != nil {
		return fmt.Errorf("insert into %s: %w", CommandTopic, err)
	}
	return nil
}

func (q *sqlCommands) subscriber() (message.Subscriber, string, error) {
	sub, err := q.backend.subscriber(q.poll)
	return sub, CommandTopic, err
}

// commandConsumer is the router handler that stores queued sends.
type commandConsumer struct {
	sender Sender
	events *Outbox
	m      *Messaging
	log    *slog.Logger
}

// handle stores one command. Transient failures (the database is
// unavailable) return an error, and the retry middleware tries again until
// it works; a command the domain rejects is answered with an error event to
// its sender and acked.
func (c *commandConsumer) handle(msg *message.Message) error {
	ctx := msg.Context()
	userID := msg.Metadata.Get(metaUserID)
	var req chat.SendRequest
	if err := json.Unmarshal(msg.Payload, &req); err != nil || userID == "" {
		c.log.Error("drop malformed chat.send command", "uuid", msg.UUID, "user_id", userID, "err", err)
		c.m.metrics.commands.WithLabelValues("rejected").Inc()
		return nil
	}
	_, created, err := c.sender.SendQueued(ctx, userID, req)
	switch {
	case err == nil && created:
		c.m.metrics.commands.WithLabelValues("stored").Inc()
		return nil
	case err == nil:
		c.m.metrics.commands.WithLabelValues("duplicate").Inc()
		return nil
	case isTransient(err):
		c.m.metrics.commandRetries.Inc()
		return fmt.Errorf("store chat.send from %s: %w", userID, err)
	}
	p, _ := chat.ProblemOf(err) // an unexpected error is reported as 500 internal, and logged below
	p.ClientMessageID = req.ClientMessageID
	if p.Status >= 500 {
		c.log.Error("chat.send command failed; reported to the sender", "user_id", userID, "session_id", req.SessionID, "err", err)
	} else {
		c.log.Debug("chat.send command rejected", "user_id", userID, "session_id", req.SessionID, "code", p.Code)
	}
	ev := chat.Event{Type: chat.EventError, SessionID: req.SessionID, Participants: []string{userID}, Problem: &p}
	if err := c.report(ctx, ev); err != nil {
		return fmt.Errorf("report rejected chat.send to %s: %w", userID, err)
	}
	c.m.metrics.commands.WithLabelValues("rejected").Inc()
	return nil
}

// report writes the error event to the outbox, so that it reaches the
// sender's instance through the relay like every other event.
func (c *commandConsumer) report(ctx context.Context, ev chat.Event) error {
	tx, err := c.m.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := c.events.Stored(ctx, tx, ev); err != nil {
		_ = tx.Rollback() // the write error is the one to report
		return err
	}
	return tx.Commit()
}

// isTransient reports failures worth retrying: the database is unavailable,
// or the attempt ran out of time.
func isTransient(err error) bool {
	return errors.Is(err, chat.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled)
}
