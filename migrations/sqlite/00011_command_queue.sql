-- The chat.send command queue in the database (modules/messaging), used when
-- relay.driver is not amqp: topic chat_command_queue, consumer group
-- "chat_send". Same shape as the outbox.

-- +goose Up
CREATE TABLE chat_command_queue (
    "offset"   INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload    BLOB,
    metadata   TEXT
);

CREATE TABLE chat_command_queue_offsets (
    consumer_group TEXT NOT NULL PRIMARY KEY,
    offset_acked   INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE chat_command_queue_offsets;
DROP TABLE chat_command_queue;
