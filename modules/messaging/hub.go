// Package messaging moves events and commands between instances. Its jobs,
// each a part with its own files and a narrow interface, started and
// stopped in this order by Messaging (module.go):
//
//   - relay (relay.go; RabbitMQ connection in amqp.go, publisher in
//     amqppub.go, consumer in amqpsub.go): fans events out to every
//     instance (RabbitMQ topic exchange, a queue per instance) or within
//     one (gochannel), and hands each instance's events to its Hub through
//     a watermill router; when its consumer resumes after a possible loss,
//     the Hub recovers the missed messages from the store (Resyncer).
//   - outbox (outbox.go, forwarder.go, outboxread.go, outboxpg.go,
//     listen.go): Outbox is chat.Events, writing events in the sender's
//     transaction with the watermill-sql publisher; the forwarder reads
//     committed rows in batches and publishes them to the relay, woken by
//     commits (store hook, PostgreSQL notifications) rather than polls.
//   - command queue (commands.go, commands_amqp.go, commands_sql.go):
//     Commands.Submit accepts STOMP sends durably; consumers take them in
//     batches (RabbitMQ: one queue per shard, single active consumer each,
//     shared between instances) and store each batch through the Sender in
//     one transaction.
//   - SQL adapters (sqlbackend.go, sqlite.go): watermill-sql's schema and
//     offsets for PostgreSQL and SQLite, and the batch readers over them.
//   - janitor (janitor.go): lag metrics and pruning.
//
// Retries everywhere use one schedule (backoff.go).
package messaging

import (
	"time"

	"github.com/chat-service/chat/modules/chat"
)

// Hub receives every relay event that reaches this instance. The STOMP
// gateway implements it; Deliver must not block (it enqueues and returns).
// Events keep their routing fields (Participants, Except, Problem).
type Hub interface {
	Deliver(ev chat.Event)
}

// Resyncer is implemented by a Hub that can recover, from the store, the
// messages this instance's relay may have lost: those created at or after
// since. Resync is called before the relay hands on anything newer, must
// not block on the store, and makes every local subscriber get each missed
// message once, in seq order, or a resync event.
type Resyncer interface {
	Resync(since time.Time)
}
