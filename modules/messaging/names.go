package messaging

import "time"

// Topics, consumer groups, routing keys, metadata keys and handler names:
// every name messaging puts on the wire or in the database is here.
const (
	// OutboxTopic is the watermill-sql topic of the transactional outbox. Its
	// messages table is chat_message_outbox and its offsets table
	// chat_message_outbox_offsets (migrations 00010).
	OutboxTopic = "chat_message_outbox"
	// CommandTopic is the watermill-sql topic of the chat.send command queue
	// when the relay is not AMQP: tables chat_command_queue and
	// chat_command_queue_offsets (migrations 00011). With relay.driver amqp
	// the queue is the RabbitMQ queue commands.queue instead.
	CommandTopic = "chat_command_queue"

	// forwarderGroup is the consumer group every instance's forwarder shares,
	// so each outbox row is forwarded once per group, not once per instance.
	forwarderGroup = "forwarder"
	// commandGroup is the consumer group of the SQL command queue.
	commandGroup = "chat_send"

	// memoryTopic is the one gochannel topic of the in-process relay; the
	// routing key travels in metadata there.
	memoryTopic = "chat.events"

	// Routing key prefixes on the relay exchange.
	sessionKeyPrefix = "session."
	userKeyPrefix    = "user."

	// Binding keys of every instance's relay queue. Interest-based binding
	// (only the session.{id} and user.{id} keys with local subscribers) is
	// the next step.
	bindAllSessions = "session.#"
	bindAllUsers    = "user.#"

	// relayQueuePrefix names each instance's relay queue: prefix + instance id.
	relayQueuePrefix = "chat.relay."
	// relayQueueExpires deletes the queue of an instance that is gone (not
	// consuming) for this long. While an instance reconnects its queue keeps
	// collecting events, so a RabbitMQ connection loss loses none.
	relayQueueExpires = 5 * time.Minute

	// Metadata keys.
	metaRoutingKey = "routing_key" // relay routing key (memory relay only)
	metaRoute      = "route"       // outbox rows with one relay route: its key, so the forwarder need not decode the event
	metaEventType  = "event_type"  // chat.Event.Type, for logs and metrics
	metaStoredAt   = "stored_at"   // unix nanoseconds when the event was written to the outbox
	metaSentAt     = "sent_at"     // unix nanoseconds when the forwarder published the event to the relay
	metaUserID     = "user_id"     // the sender of a command
	metaOffset     = "sql_offset"  // SQLite row offset, set by SQLiteSchema.UnmarshalMessage (the batch reader drops it)

	// Handler names.
	handlerRelay    = "relay_to_hub"
	handlerCommands = "chat_send_consumer"
)

// SessionKey is the routing key of a session's events.
func SessionKey(sessionID string) string { return sessionKeyPrefix + sessionID }

// UserKey is the routing key of events for one user only.
func UserKey(userID string) string { return userKeyPrefix + userID }
