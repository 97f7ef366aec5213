-- The transactional outbox (modules/messaging): the messages table of the
-- watermill-sql topic chat_message_outbox (messaging.SQLiteSchema) and its
-- consumer-group offsets (messaging.SQLiteOffsets). AUTOINCREMENT: an
-- offset is never reused, even after the janitor deleted every row.
-- created_at is unix milliseconds, like every time in this schema.

-- +goose Up
CREATE TABLE chat_message_outbox (
    "offset"   INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload    BLOB,
    metadata   TEXT
);

CREATE TABLE chat_message_outbox_offsets (
    consumer_group TEXT NOT NULL PRIMARY KEY,
    offset_acked   INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE chat_message_outbox_offsets;
DROP TABLE chat_message_outbox;
