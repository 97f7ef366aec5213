-- The transactional outbox (modules/messaging): watermill-sql's PostgreSQL
-- messages table for topic chat_message_outbox, and its consumer-group
-- offsets. A send writes its event here in the message's own transaction;
-- the forwarder (consumer group "forwarder") publishes it to the relay; the
-- janitor deletes acknowledged rows older than outbox.retention.
--
-- Rows are read in (transaction_id, offset) order and only below the oldest
-- running transaction, so a row committed late is never skipped.

-- +goose Up
CREATE TABLE chat_message_outbox (
    "offset"       BIGSERIAL,
    uuid           VARCHAR(36) NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    payload        BYTEA,
    metadata       JSON,
    transaction_id XID8 NOT NULL,
    PRIMARY KEY (transaction_id, "offset")
);

CREATE TABLE chat_message_outbox_offsets (
    consumer_group                VARCHAR(255) NOT NULL PRIMARY KEY,
    offset_acked                  BIGINT,
    last_processed_transaction_id XID8 NOT NULL
);

-- +goose Down
DROP TABLE chat_message_outbox_offsets;
DROP TABLE chat_message_outbox;
